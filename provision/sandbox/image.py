"""The sandbox image: one unpacked Debian root filesystem per release, built once and shared.

Every sandbox host runs on an overlay whose read-only lower layer is its release's image
(Debian 12 "bookworm" by default, or Debian 13 "trixie"), so an image is built once with
``mmdebstrap`` (~30 s, ~270 MB) and then reused. Its directory name
carries a short hash of the *recipe* (suite, packages, customize hooks, sources, login key),
so changing any of those makes a new image instead of silently reusing a stale one, while an
unchanged recipe never rebuilds.

A build goes into a temporary directory and is renamed into place only when complete, and
concurrent builders are serialised by an ``flock``: whoever waits for the lock finds the
finished image and returns it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from provision.errors import SandboxError, SandboxSetupError, UsageError

from .mirrors import Mirrors
from .system import file_lock, remove_tree, run, tail, tool_env

#: The Debian releases a sandbox host can run: suite name -> version number. Each is built
#: from the suite, its -updates and its -security suite of the mirror this machine's apt uses
#: (Debian 12's archive keyring also verifies Debian 13).
RELEASES = {"bookworm": "12", "trixie": "13"}
DEFAULT_RELEASE = "bookworm"
SUITE = DEFAULT_RELEASE  # the default suite, kept for callers of the one-release API
VARIANT = "apt"
COMPONENTS = ("main", "contrib", "non-free", "non-free-firmware")
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "python3-apt",
    "sudo",
    "iproute2",
    "ca-certificates",
)
# Bump when the meaning of the hooks changes without their text changing.
HOOK_VERSION = 1
USER = "rig"
BUILD_TIMEOUT_S = 1800

Progress = Callable[[str], None]

_HOSTKEYS_DROPIN = (
    "[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n"
)


class UnknownReleaseError(SandboxSetupError, UsageError):
    """A release that is not in ``RELEASES``: bad input, exit 2, nothing was created."""


def check_release(release: str) -> str:
    """``release`` if it is one of ``RELEASES``, else ``UnknownReleaseError`` naming them."""
    if not isinstance(release, str) or release not in RELEASES:
        allowed = ", ".join(RELEASES)
        raise UnknownReleaseError(
            f"unknown Debian release {release!r} for a sandbox host (allowed: {allowed})",
            hint=f"pick one of {allowed} (default {DEFAULT_RELEASE})",
        )
    return release


def describe_release(release: str) -> str:
    """``Debian 13 (trixie)``; an unknown release (an old or odd state file) as itself."""
    version = RELEASES.get(release)
    return f"Debian {version} ({release})" if version else release


def customize_hooks(pubkey: str, user: str = USER) -> list[str]:
    """The ``mmdebstrap --customize-hook`` shell snippets; ``$1`` is the new root.

    * the sandbox key may log in as root and as ``user``;
    * ``user`` gets passwordless sudo from a checked ``/etc/sudoers.d`` file; its password
      field is ``*`` ("no password") rather than ``!`` ("locked"), which sshd may refuse;
    * the image carries no SSH host keys: each host makes its own at first boot.
    """
    key = shlex.quote(pubkey.strip())
    ssh_dir = f'"$1/home/{user}/.ssh"'
    sudoers = f'"$1/etc/sudoers.d/{user}"'
    dropin = '"$1/etc/systemd/system/ssh.service.d/hostkeys.conf"'
    return [
        'mkdir -p -m 0700 "$1/root/.ssh"',
        f'printf "%s\\n" {key} > "$1/root/.ssh/authorized_keys"',
        'chmod 0600 "$1/root/.ssh/authorized_keys"',
        f'chroot "$1" useradd --create-home --shell /bin/bash --password "*" {user}',
        f"mkdir -p -m 0700 {ssh_dir}",
        f'cp -p "$1/root/.ssh/authorized_keys" "$1/home/{user}/.ssh/authorized_keys"',
        f'chroot "$1" chown -R {user}:{user} /home/{user}/.ssh',
        f'printf "%s\\n" "{user} ALL=(ALL) NOPASSWD:ALL" > {sudoers}',
        f"chmod 0440 {sudoers}",
        f'chroot "$1" visudo -c -q -f /etc/sudoers.d/{user}',
        'rm -f "$1"/etc/ssh/ssh_host_*',
        'mkdir -p "$1/etc/systemd/system/ssh.service.d"',
        f"printf %s {shlex.quote(_HOSTKEYS_DROPIN)} > {dropin}",
    ]


def build_recipe(mirrors: Mirrors, pubkey: str, suite: str = DEFAULT_RELEASE) -> dict:
    """Everything that determines the image of release ``suite``, as plain data.

    Bookworm's recipe is the same as before releases were selectable, so its cached image
    stays valid.
    """
    check_release(suite)
    return {
        "suite": suite,
        "variant": VARIANT,
        "components": list(COMPONENTS),
        "packages": list(PACKAGES),
        "hook_version": HOOK_VERSION,
        "hooks": customize_hooks(pubkey),
        "sources": mirrors.sources_lines(suite, COMPONENTS),
    }


def recipe_hash(recipe: dict) -> str:
    """A short, stable fingerprint of a recipe (key order does not matter)."""
    blob = json.dumps(recipe, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def mmdebstrap_argv(recipe: dict, target: Path) -> list[str]:
    """The ``mmdebstrap`` command line that builds ``recipe`` into ``target``."""
    argv = [
        "mmdebstrap",
        f"--variant={recipe['variant']}",
        f"--components={','.join(recipe['components'])}",
        f"--include={','.join(recipe['packages'])}",
    ]
    argv += [f"--customize-hook={hook}" for hook in recipe["hooks"]]
    return [*argv, recipe["suite"], str(target), *recipe["sources"]]


def ensure_key(path: Path) -> str:
    """Create the sandbox login key (ed25519, no passphrase) once; return its public line."""
    pub = path.with_name(path.name + ".pub")
    if not (path.is_file() and pub.is_file()):
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in (path, pub):
            stale.unlink(missing_ok=True)
        run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "rigforge-sandbox",
                "-f",
                str(path),
            ],
            what="creating the sandbox SSH key",
        )
    return pub.read_text().strip()


class ImageStore:
    """The images under ``<state_dir>/images``: ``<suite>-<hash>/rootfs`` plus its recipe."""

    def __init__(self, images_dir: Path):
        self.dir = images_dir

    def path_for(self, recipe: dict) -> Path:
        """The image directory for ``recipe`` (which may not exist yet)."""
        return self.dir / f"{recipe['suite']}-{recipe_hash(recipe)}"

    def ensure(self, recipe: dict, progress: Progress | None = None) -> Path:
        """The rootfs of ``recipe``'s image, building it first if it does not exist."""
        final = self.path_for(recipe)
        if (final / "rootfs").is_dir():
            return final / "rootfs"
        with file_lock(self.dir / ".build.lock", BUILD_TIMEOUT_S + 60, "building the image"):
            if (final / "rootfs").is_dir():  # another builder finished while we waited
                return final / "rootfs"
            self._remove_stale_builds()
            if final.exists():  # an image dir without its rootfs is not an image
                remove_tree(final)
            if progress:
                version = RELEASES.get(recipe["suite"], recipe["suite"])
                progress(f"building Debian {version} image (once, ~30 s)")
            started = time.monotonic()
            self._build(recipe, final)
            if progress:
                progress(f"image ready: {final} ({time.monotonic() - started:.0f} s)")
        return final / "rootfs"

    def _remove_stale_builds(self) -> None:
        """Temporary build dirs can only be left by a crashed builder: we hold the lock."""
        for stale in self.dir.glob(".build-*"):
            if stale.is_dir():
                remove_tree(stale)

    def _build(self, recipe: dict, final: Path) -> None:
        tmp = self.dir / f".build-{final.name}-{os.getpid()}"
        tmp.mkdir(parents=True)
        log = tmp / "build.log"
        rootfs = tmp / "rootfs"
        try:
            rc = _run_logged(mmdebstrap_argv(recipe, rootfs), log, BUILD_TIMEOUT_S)
        except BaseException:
            remove_tree(tmp)
            raise
        if rc != 0:
            kept = self.dir / f"{final.name}.failed.log"
            os.replace(log, kept)
            remove_tree(tmp)
            raise SandboxError(
                f"building the sandbox image failed (mmdebstrap exit {rc}):\n{tail(kept)}",
                hint=f"the full log is {kept}; check that the Debian mirror is reachable",
            )
        # mmdebstrap empties the package lists last; date the empty directory back to 1970 so
        # that apt's cache_valid_time (Ansible) does not take it for a fresh cache.
        os.utime(rootfs / "var/lib/apt/lists", (0, 0))
        (tmp / "recipe.json").write_text(json.dumps(recipe, indent=2, sort_keys=True) + "\n")
        os.rename(tmp, final)


def _run_logged(argv: list[str], log: Path, timeout: float) -> int:
    """Run a long build with its output in ``log``; on timeout kill its whole process group."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=tool_env(),
            start_new_session=True,
        )
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise SandboxError(
                f"{argv[0]} did not finish within {timeout:g} s",
                hint="check that the Debian mirror is reachable and fast enough",
            ) from None
        except BaseException:
            _kill_group(proc)
            raise


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill our own child's process group: apt and dpkg below mmdebstrap go with it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
