"""``HostStore``: the ``hosts/`` directory of the sandbox state, one directory per host.

It finds a host by name, reads and writes its record, mounts its copy-on-write root, and
turns a record into what callers see of the host (``SandboxHost``, its keys read off its
disk). The layout of one host's directory is described in ``provision.sandbox.host``.

A directory without a readable record is a host whose creation crashed before the record
was written: it is still listed (so that ``down`` can find it), but it cannot be booted.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from provision.errors import SandboxError, SandboxSetupError

from . import container_host
from .host import SSH_PORT, HostState, SandboxHost, leader_of, nspawn_alive, read_host_keys
from .image import USER
from .system import is_mounted, run

HOST_SUBDIRS = ("upper", "work", "merged", "docker")


class HostStore:
    """The hosts under ``hosts_dir``; every one logs in with the key at ``key_path``."""

    def __init__(self, hosts_dir: Path, key_path: Path):
        self.dir = hosts_dir
        self.key_path = key_path

    def host_dir(self, name: str) -> Path:
        return self.dir / name

    def state_path(self, name: str) -> Path:
        return self.host_dir(name) / "state.json"

    def create(self, state: HostState) -> None:
        """The host's directories, then its record: from here on ``down`` can remove it."""
        hdir = self.host_dir(state.name)
        for sub in HOST_SUBDIRS:
            (hdir / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(hdir, 0o700)
        state.save(self.state_path(state.name))

    def load_partial(self, name: str) -> HostState | None:
        """The host's record, or None if it is missing or unreadable."""
        try:
            return HostState.load(self.state_path(name))
        except (OSError, ValueError, TypeError):
            return None

    def load(self, name: str) -> HostState:
        """The host's record; a missing host or record is an error that says what to do."""
        if not self.host_dir(name).is_dir():
            raise SandboxSetupError(
                f"there is no sandbox host named {name}",
                hint=f"create it: rigforge sandbox up {name}",
            )
        state = self.load_partial(name)
        if state is None:
            raise SandboxError(
                f"the state file of sandbox host {name} is missing or unreadable: {self.state_path(name)}",
                hint=f"remove what is left of it: rigforge sandbox down {name}",
            )
        return state

    def states(self) -> dict[str, HostState | None]:
        """Every host directory's record (None where it is lost), sorted by name."""
        if not self.dir.is_dir():
            return {}
        return {p.name: self.load_partial(p.name) for p in sorted(self.dir.iterdir()) if p.is_dir()}

    def exists_error(self, name: str) -> SandboxError:
        """Why ``up`` refuses a name that is taken, and how to get out of it."""
        state = self.load_partial(name)
        if state is not None and self.runs(state)[0]:
            return SandboxError(
                f"sandbox host {name} already exists and is running at {state.address}",
                hint=f"remove it first: rigforge sandbox down {name}",
            )
        return SandboxError(
            f"sandbox host {name} already exists but is not running "
            "(halted, or left over from a crashed run)",
            hint=f"boot it with `rigforge sandbox boot {name}`, "
            f"or remove it with `rigforge sandbox down {name}`",
        )

    @staticmethod
    def runs(state: HostState) -> tuple[bool, int | None]:
        """(whether the host runs, the PID of its init as seen from here)."""
        if state.backend != "nspawn":
            return container_host.running(state)
        if not nspawn_alive(state.nspawn_pid, state.name):
            return False, None
        return True, leader_of(state.nspawn_pid) if state.nspawn_pid else None

    def host(self, state: HostState) -> SandboxHost:
        """What a caller sees of the host: its address, login and the host keys on its disk
        (a container's, as read from inside it at its first boot)."""
        running, leader = self.runs(state)
        if state.backend != "nspawn":
            keys = tuple(state.host_keys)
        else:
            hdir = self.host_dir(state.name)
            merged = hdir / "merged"
            # the host's keys are made at its first boot, so they live in the overlay's upper layer
            keys = read_host_keys(merged if is_mounted(merged) else hdir / "upper")
        return SandboxHost(
            name=state.name,
            address=state.address,
            port=state.port,
            user=state.user,
            key_path=self.key_path,
            host_keys=keys,
            running=running,
            leader_pid=leader,
            release=state.release,
            backend=state.backend,
        )

    def lost_host(self, name: str) -> SandboxHost:
        """A host without a record: nothing is known of it but its name."""
        return SandboxHost(name, "", SSH_PORT, USER, self.key_path, (), False, None, "")

    def mount_root(self, state: HostState) -> Path:
        """Mount the host's copy-on-write root (image below, its own upper dir on top)."""
        hdir = self.host_dir(state.name)
        merged = hdir / "merged"
        if not is_mounted(merged):
            layers = f"lowerdir={state.image},upperdir={hdir / 'upper'},workdir={hdir / 'work'}"
            run(
                ["mount", "-t", "overlay", "overlay", "-o", layers, str(merged)],
                what=f"mounting the overlay root of {state.name}",
            )
        return merged


NAME_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,19}")


def validate_name(name: str) -> str:
    """A host name: a lower-case letter, then up to 19 of ``a-z``, ``0-9`` and ``-``."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise SandboxSetupError(
            f"invalid sandbox host name {name!r}",
            hint="use 1-20 characters: a lower-case letter first, then a-z, 0-9 or '-' (e.g. rig1)",
        )
    return name
