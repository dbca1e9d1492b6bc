"""Small, careful wrappers around the operating system: running tools, locks, mounts, files.

Everything in the sandbox package goes through these helpers, so that every external
command has a timeout, every failure becomes a ``SandboxError`` with a hint, and nothing
is ever deleted through a mount point.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from provision.errors import SandboxError, SandboxSetupError

APT_PACKAGES = ("mmdebstrap", "systemd-container", "nftables", "iproute2", "openssh-client")
APT_HINT = "install the host tools: apt-get install " + " ".join(APT_PACKAGES)

# root reached through `su` or `sudo` often has no sbin directories on PATH, yet ip, nft
# and chroot live there.
_SYSTEM_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def tool_env() -> dict[str, str]:
    """The caller's environment with the system directories appended to ``PATH``."""
    env = dict(os.environ)
    parts = [p for p in env.get("PATH", "").split(":") if p]
    parts += [p for p in _SYSTEM_PATH if p not in parts]
    env["PATH"] = ":".join(parts)
    return env


def which(tool: str) -> str | None:
    """Where ``tool`` is, searching the system directories too."""
    return shutil.which(tool, path=tool_env()["PATH"])


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    # docker ends each error with "Run 'docker run --help' ..." (20.10: "See '...--help'."): skip it
    lines = [ln for ln in lines if not re.match(r"(Run|See) '[^']*--help'", ln)] or lines
    return lines[-1] if lines else ""


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float = 60,
    input: str | None = None,
    what: str | None = None,
    hint: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a tool with an argument list and a timeout; capture its output as text.

    With ``check`` a non-zero exit becomes a ``SandboxError`` that quotes the tool's last
    line of stderr. ``what`` names the step for the message ("creating the bridge").
    """
    cmd = " ".join(argv)
    try:
        cp = subprocess.run(
            list(argv),
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=tool_env(),
        )
    except FileNotFoundError as exc:
        raise SandboxSetupError(f"{argv[0]} is not installed", hint=APT_HINT) from exc
    except subprocess.TimeoutExpired as exc:
        raise SandboxError(f"{what or cmd}: no answer within {timeout:g} s", hint=hint) from exc
    if check and cp.returncode != 0:
        detail = _last_line(cp.stderr) or _last_line(cp.stdout)
        raise SandboxError(
            f"{what or cmd} failed (exit {cp.returncode}): {detail}",
            hint=hint or f"the command was: {cmd}",
        )
    return cp


@contextmanager
def file_lock(path: Path, timeout: float, what: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` for the ``with`` block.

    The wait is bounded: after ``timeout`` seconds a ``SandboxError`` says which lock
    another rigforge process is holding. The lock dies with its holder, so a crashed
    process never leaves it behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        attempts = max(1, int(timeout / 0.2))
        deadline = time.monotonic() + timeout
        for attempt in range(attempts + 1):
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == attempts or time.monotonic() > deadline:
                    raise SandboxError(
                        f"another rigforge process has been {what} for over {timeout:g} s",
                        hint=f"wait for it to finish; the lock file is {path}",
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def atomic_write(path: Path, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def write_in_root(root: Path, relpath: str, text: str, mode: int = 0o644) -> None:
    """Write a file inside a guest root without following a symlink out of it.

    A guest's ``/etc/resolv.conf`` may be a symlink to an absolute path; writing through it
    from the host would change the host's own file, so an existing symlink is replaced.
    """
    target = root / relpath
    if target.is_symlink():
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, text, mode)


def _unescape_mountinfo(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes (``\\040``)."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def mount_points(mountinfo: str | None = None) -> list[str]:
    """All mount points of this mount namespace, in mount order."""
    if mountinfo is None:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    points = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4:
            points.append(_unescape_mountinfo(fields[4]))
    return points


def mounts_below(path: Path, mountinfo: str | None = None) -> list[str]:
    """Mount points at or below ``path``, deepest first (the order to unmount them)."""
    base = str(path).rstrip("/")
    found = {p for p in mount_points(mountinfo) if p == base or p.startswith(base + "/")}
    return sorted(found, key=lambda p: p.count("/"), reverse=True)


def is_mounted(path: Path) -> bool:
    """Whether ``path`` itself is a mount point."""
    return str(path).rstrip("/") in mount_points()


def umount_below(path: Path) -> None:
    """Unmount everything at or below ``path``; lazily if a mount is busy."""
    for point in mounts_below(path):
        cp = run(["umount", point], check=False, timeout=30)
        if cp.returncode != 0:
            run(["umount", "--lazy", point], check=False, timeout=30)
    left = mounts_below(path)
    if left:
        raise SandboxError(
            f"cannot unmount {left[0]}",
            hint=f"find what still uses it (fuser -vm {left[0]}), stop that, and retry",
        )


def remove_tree(path: Path) -> None:
    """Delete a directory tree, but only after making sure no mount lives inside it.

    ``rm -rf`` through a bind mount of ``/dev`` or an overlay would delete the files of
    whatever is mounted there, so mounts are taken down first and their absence checked.
    """
    if not path.exists() and not path.is_symlink():
        return
    umount_below(path)
    shutil.rmtree(path)


def rmdir_quiet(path: Path) -> bool:
    """``rmdir`` that reports success instead of raising for missing or busy directories."""
    try:
        os.rmdir(path)
        return True
    except FileNotFoundError:
        return True
    except OSError as exc:
        if exc.errno in (errno.EBUSY, errno.ENOTEMPTY, errno.EEXIST, errno.EACCES, errno.EPERM):
            return False
        raise


def tail(path: Path, lines: int = 8) -> str:
    """The last ``lines`` lines of a text file, or "" if it cannot be read."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8192))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def write_guest_identity(root: Path, name: str, nameserver: str) -> None:
    """Hostname, /etc/hosts and a resolver the host can reach (this machine's first)."""
    write_in_root(root, "etc/hostname", f"{name}\n")
    write_in_root(
        root,
        "etc/hosts",
        f"127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "ff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    )
    write_in_root(root, "etc/resolv.conf", f"nameserver {nameserver}\n")
