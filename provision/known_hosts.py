"""The workspace's ``known_hosts``: fetch a host's key, show its fingerprint, record it.

Ansible, testinfra and plain ``ssh`` all check host keys against this one file.
"""

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

from provision import fsutil
from provision.errors import HostFailedError, UsageError

#: Key types in the order we prefer to record them.
PREFERRED_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "ssh-rsa")


@dataclass(frozen=True)
class HostKey:
    key_type: str
    blob: str  # base64

    @classmethod
    def parse(cls, line: str) -> "HostKey":
        """``"ssh-ed25519 AAAA... comment"`` -> HostKey."""
        parts = line.split()
        if len(parts) < 2:
            raise UsageError(f"not an SSH public key: {line!r}")
        base64.b64decode(parts[1], validate=True)
        return cls(parts[0], parts[1])

    @property
    def fingerprint(self) -> str:
        """OpenSSH-style ``SHA256:...`` fingerprint."""
        digest = hashlib.sha256(base64.b64decode(self.blob)).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def host_pattern(address: str, port: int) -> str:
    """How OpenSSH names a host in known_hosts: ``addr`` or ``[addr]:port``."""
    return address if port == 22 else f"[{address}]:{port}"


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def recorded(path: Path, address: str, port: int) -> list[HostKey]:
    pattern = host_pattern(address, port)
    keys = []
    for line in _lines(path):
        parts = line.split()
        if len(parts) >= 3 and not line.startswith("#") and pattern in parts[0].split(","):
            keys.append(HostKey(parts[1], parts[2]))
    return keys


def check_consistent(path: Path, address: str, port: int, keys: list[HostKey]) -> None:
    """Refuse to record a key that contradicts one already recorded for the same host."""
    old = {k.key_type: k for k in recorded(path, address, port)}
    for key in keys:
        if key.key_type in old and old[key.key_type] != key:
            raise UsageError(
                f"the {key.key_type} host key of {host_pattern(address, port)} is "
                f"{key.fingerprint}, but known_hosts records {old[key.key_type].fingerprint}",
                hint="if the host was reinstalled, delete its line from known_hosts and "
                "add it again; otherwise do not connect: someone may be intercepting",
            )


def record(path: Path, address: str, port: int, keys: list[HostKey]) -> None:
    """Replace the host's lines with ``keys`` (atomic write)."""
    pattern = host_pattern(address, port)
    kept = [ln for ln in _lines(path) if not _names(ln, pattern)]
    kept += [f"{pattern} {k.key_type} {k.blob}" for k in keys]
    fsutil.write_text(path, "\n".join(kept) + "\n", mode=0o600)


def forget(path: Path, address: str, port: int) -> None:
    pattern = host_pattern(address, port)
    lines = _lines(path)
    kept = [ln for ln in lines if not _names(ln, pattern)]
    if kept != lines:
        fsutil.write_text(path, "\n".join(kept) + ("\n" if kept else ""), mode=0o600)


def _names(line: str, pattern: str) -> bool:
    parts = line.split()
    return bool(parts) and not line.startswith("#") and pattern in parts[0].split(",")


def fetch(address: str, port: int, timeout: float = 10.0) -> HostKey:
    """Ask the SSH server for its host key (no authentication, nothing trusted yet)."""
    import socket

    import paramiko

    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except OSError as exc:
        raise HostFailedError(
            f"cannot reach {address}:{port} to read its host key: {exc.strerror or exc}",
            hint="check that the host is up and sshd listens there, then try again",
        ) from None
    transport = paramiko.Transport(sock)
    try:
        transport.get_security_options().key_types = [
            t for t in PREFERRED_TYPES if t in transport.get_security_options().key_types
        ]
        transport.start_client(timeout=timeout)
        key = transport.get_remote_server_key()
        return HostKey(key.get_name(), key.get_base64())
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise HostFailedError(
            f"{address}:{port} did not complete an SSH handshake: {exc}",
            hint="is this an SSH server? check the address and --port",
        ) from None
    finally:
        transport.close()
