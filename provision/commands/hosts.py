"""``rigforge host add|list|remove`` and ``rigforge sandbox up|down``: the inventory's hosts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from provision import hosts
from provision.errors import UsageError
from provision.inventory import Host
from provision.known_hosts import HostKey
from provision.workspace import Workspace


def add(workspace: Workspace, trust: Callable[[HostKey], bool], name: str, address: str,
        user: str | None = None, port: int = 22, key: str | None = None,
        groups: list[str] | None = None) -> Host:
    """Fetch the host's key, ask ``trust`` about it, record host and key."""
    host = Host(name, address, user, port, key, list(groups or []))
    hosts.add_host(workspace, host, trust)
    return host


def list_all(workspace: Workspace) -> list[Host]:
    return hosts.list_hosts(workspace)


def remove(workspace: Workspace, name: str) -> Host:
    return hosts.remove_host(workspace, name)


@dataclass
class Booted:
    name: str
    address: str
    user: str
    release: str
    keys: list[HostKey]
    #: Newly created and added to the inventory (``sandbox up``), not booted again.
    registered: bool = True


def sandbox_up(workspace: Workspace, name: str, release: str, progress: Callable[[str], None],
               backend: str | None = None, image: str | None = None) -> Booted:
    """Boot a sandbox host and register it (group ``sandbox``, its host keys read from it)."""
    from provision.sandbox import backends, get_backend
    from provision.sandbox.image import describe_release

    hosts.check_can_add(workspace, name)
    chosen, why = backends.choose(backend)
    manager = get_backend(chosen, image)
    manager.preflight()
    progress(f"backend: {chosen} ({why})")
    booted = manager.up(name, progress=progress, release=release)
    keys = [HostKey.parse(line) for line in booted.host_keys]
    hosts.register(
        workspace,
        Host(name, booted.address, booted.user, booted.port, str(booted.key_path), [hosts.SANDBOX_GROUP]),
        keys,
    )
    return Booted(name, booted.address, booted.user, describe_release(booted.release), keys)


def sandbox_down(workspace: Workspace, name: str) -> str:
    """Destroy a sandbox host and remove it from the inventory; what to tell the user."""
    from provision.sandbox import get_backend

    manager = get_backend()
    known = {h.name for h in manager.list()}
    in_inventory = any(h.name == name for h in hosts.list_hosts(workspace))
    if name not in known and not in_inventory:
        raise UsageError(f"no sandbox host {name!r}", hint="`rigforge sandbox list` shows them")
    if name in known:
        manager.down(name)
    if in_inventory:
        hosts.remove_host(workspace, name)
    return f"sandbox {name} removed"


def sandbox_halt(name: str) -> str:
    from provision.sandbox import get_backend

    get_backend().halt(name)
    return f"sandbox {name} halted"


def sandbox_boot(name: str, progress: Callable[[str], None]) -> Booted:
    from provision.sandbox import get_backend
    from provision.sandbox.image import describe_release

    booted = get_backend().boot(name, progress=progress)
    return Booted(name, booted.address, booted.user, describe_release(booted.release), [], registered=False)


def sandbox_list() -> list[dict]:
    from provision.sandbox import get_backend

    return [{"name": h.name, "address": h.address, "running": h.running, "user": h.user,
             "release": h.release, "backend": h.backend} for h in get_backend().list()]
