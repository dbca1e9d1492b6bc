"""A cgroup of its own for each sandbox host, in every hierarchy.

``systemd-nspawn --keep-unit`` runs the container in the cgroup it was started from and creates
its ``payload`` and ``supervisor`` cgroups there. Two hosts started from the same cgroup would
share those and their systemds would collide, so each nspawn process first moves itself to
``<its cgroup>/rigforge-sandbox/<name>`` in every hierarchy listed in ``/proc/self/cgroup``
(v1 controllers, the ``name=systemd`` hierarchy and the unified v2 one).

The directories are created by the parent; the child only writes its pid (``enter``), which
is all that is safe to do between ``fork`` and ``exec``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from provision.errors import SandboxError

from .system import rmdir_quiet

GROUP = "rigforge-sandbox"
_CPUSET_FILES = ("cpuset.cpus", "cpuset.mems")


def parse_proc_cgroup(text: str) -> list[tuple[frozenset[str], str]]:
    """``/proc/PID/cgroup`` as (controllers, path); the v2 hierarchy has no controllers."""
    entries = []
    for line in text.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) == 3:
            controllers = frozenset(c for c in parts[1].split(",") if c)
            entries.append((controllers, parts[2]))
    return entries


def parse_cgroup_mounts(mountinfo: str) -> list[tuple[frozenset[str], str, str]]:
    """The cgroup mounts of a mountinfo as (super options, root, mount point).

    For v2 the options set is empty, matching the empty controller list of ``0::/path``.
    """
    mounts = []
    for line in mountinfo.splitlines():
        if " - " not in line:
            continue
        head, tail = line.split(" - ", 1)
        head_f, tail_f = head.split(), tail.split()
        if len(head_f) < 5 or len(tail_f) < 3:
            continue
        fstype, options = tail_f[0], frozenset(tail_f[2].split(","))
        if fstype == "cgroup2":
            mounts.append((frozenset(), head_f[3], head_f[4]))
        elif fstype == "cgroup":
            mounts.append((options, head_f[3], head_f[4]))
    return mounts


def current_cgroup_dirs(proc_cgroup: str, mountinfo: str) -> list[Path]:
    """The directory of the current cgroup in each mounted hierarchy.

    A hierarchy is matched to its mount by its controllers (``cpu,cpuacct``,
    ``name=systemd``, or none for v2); a mount whose root is not ``/`` (a container's view)
    has that root cut off the front of the path.
    """
    mounts = parse_cgroup_mounts(mountinfo)
    dirs = []
    for controllers, path in parse_proc_cgroup(proc_cgroup):
        for options, root, point in mounts:
            if controllers and not controllers <= options:
                continue
            if not controllers and options:
                continue
            if root != "/" and (path == root or path.startswith(root + "/")):
                path = path[len(root) :] or "/"
            dirs.append(Path(point + path.rstrip("/")) if path != "/" else Path(point))
            break
    return dirs


def _copy_cpuset(parent: Path, child: Path) -> None:
    """A new v1 cpuset cgroup has no CPUs or memory nodes; give it its parent's."""
    for name in _CPUSET_FILES:
        if not (parent / name).exists() or not (child / name).exists():
            continue
        value = (parent / name).read_text().strip()
        if value and not (child / name).read_text().strip():
            (child / name).write_text(value + "\n")


def prepare(name: str) -> list[Path]:
    """Create ``rigforge-sandbox/<name>`` below our cgroup in every hierarchy; return them."""
    here = current_cgroup_dirs(
        Path("/proc/self/cgroup").read_text(), Path("/proc/self/mountinfo").read_text()
    )
    leaves = []
    for parent in here:
        if not parent.is_dir():
            continue
        group, leaf = parent / GROUP, parent / GROUP / name
        for child, above in ((group, parent), (leaf, group)):
            child.mkdir(exist_ok=True)
            if (above / "cpuset.cpus").exists():
                _copy_cpuset(above, child)
        leaves.append(leaf)
    return leaves


def enter(dirs: list[str]) -> None:
    """Move the calling process into ``dirs``. Runs between fork and exec: keep it tiny."""
    pid = str(os.getpid())
    for d in dirs:
        with open(d + "/cgroup.procs", "w") as fh:
            fh.write(pid)


def pids_in(dirs: list[Path]) -> set[int]:
    """Every process in ``dirs`` and the cgroups below them."""
    pids: set[int] = set()
    for top in dirs:
        for root, _subdirs, _files in os.walk(top):
            try:
                text = Path(root, "cgroup.procs").read_text()
            except OSError:
                continue
            pids.update(int(p) for p in text.split() if p.isdigit())
    return pids


def kill_all(dirs: list[Path], timeout: float = 5.0) -> None:
    """SIGKILL whatever still runs in a host's cgroups (a container whose nspawn died)."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.1) + 1):
        pids = pids_in(dirs)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if pids_in(dirs):
        raise SandboxError(
            f"processes in {dirs[0]} survived SIGKILL",
            hint="they may be stuck in the kernel (D state); check `ps -eo pid,stat,cmd`",
        )


def remove(dirs: list[Path], timeout: float = 5.0) -> list[Path]:
    """``rmdir`` each tree deepest first; return the directories that would not go away.

    A cgroup can only be removed once its last process has been reaped, which can lag a
    moment behind that process's death, hence the bounded retries.
    """
    deadline = time.monotonic() + timeout
    left: list[Path] = []
    for _ in range(int(timeout / 0.1) + 1):
        left = []
        for top in dirs:
            if not top.exists():
                continue
            for root, _subdirs, _files in os.walk(top, topdown=False):
                if not rmdir_quiet(Path(root)):
                    left.append(Path(root))
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return left


def remove_groups(leaves: list[Path]) -> None:
    """Remove the shared ``rigforge-sandbox`` parents once they are empty."""
    for leaf in leaves:
        if leaf.parent.name == GROUP:
            rmdir_quiet(leaf.parent)
