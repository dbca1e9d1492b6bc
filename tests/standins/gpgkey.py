"""Throwaway OpenPGP keys that sign the stand-in apt repositories.

Part of the STAND-IN for NVIDIA's CUDA apt repository (not NVIDIA's packages): each key is
generated here without a passphrase in a GnuPG home of the test's own, signs only stand-in
repositories, and is never NVIDIA's key. Needs ``gpg`` (Debian package ``gnupg``).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

UID = "rigforge STAND-IN CUDA repository signing key (tests only) <standin@rigforge.invalid>"


@dataclass(frozen=True)
class SigningKey:
    gpg_home: Path
    fingerprint: str


def _gpg(home: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["gpg", "--batch", "--no-tty", "--quiet", "--homedir", str(home), *args],
        check=True, capture_output=True, timeout=120, **kw,
    )


@contextmanager
def agent(home: Path) -> Iterator[None]:
    """Stop the gpg-agent that signing starts, so that no test leaves one behind."""
    try:
        yield
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                       capture_output=True, check=False, timeout=30)


def _fingerprint(home: Path) -> str | None:
    out = _gpg(home, "--with-colons", "--list-secret-keys").stdout.decode()
    fprs = [line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:")]
    return fprs[0] if fprs else None


def ensure_key(home: Path) -> SigningKey:
    """The signing key in ``home``; generated (ed25519, no passphrase) when there is none."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    home.chmod(0o700)
    with agent(home):  # listing secret keys starts the agent too
        fingerprint = _fingerprint(home)
        if fingerprint is None:
            _gpg(home, "--pinentry-mode", "loopback", "--passphrase", "",
                 "--quick-generate-key", UID, "ed25519", "sign", "never")
            fingerprint = _fingerprint(home)
    assert fingerprint, f"gpg made no key in {home}"
    return SigningKey(home, fingerprint)


def export_keyring(key: SigningKey, dest: Path) -> Path:
    """The public key as a binary OpenPGP keyring, the format of apt's ``*.gpg`` keyrings."""
    dest.write_bytes(_gpg(key.gpg_home, "--export", key.fingerprint).stdout)
    return dest


def sign_release(key: SigningKey, release: Path) -> tuple[Path, Path]:
    """``InRelease`` (clear-signed) and ``Release.gpg`` (detached, armored) beside ``release``."""
    inrelease, detached = release.with_name("InRelease"), release.with_name("Release.gpg")
    for path in (inrelease, detached):
        path.unlink(missing_ok=True)
    common = ("--pinentry-mode", "loopback", "--passphrase", "", "--digest-algo", "SHA512",
              "--local-user", key.fingerprint)
    _gpg(key.gpg_home, *common, "--clearsign", "--output", str(inrelease), str(release))
    _gpg(key.gpg_home, *common, "--armor", "--detach-sign", "--output", str(detached), str(release))
    return inrelease, detached
