"""Sandbox backends: how a throwaway test host is made.

``nspawn`` (systemd-nspawn + mmdebstrap) boots the host on an overlay of the cached Debian
root; ``podman`` and ``docker`` run it as a systemd container (see ``container``). All three
are :class:`SandboxManager` with another ``backend``: a host's record names its backend, so
``halt``, ``boot``, ``down`` and ``list`` act on every host whichever backend made it.
rigforge's commands use only the :class:`Backend` protocol and :func:`get_backend`.
"""

import os
from collections.abc import Callable
from typing import Protocol

from provision.errors import SandboxSetupError, UsageError

from .host import SandboxHost
from .image import DEFAULT_RELEASE
from .manager import SandboxManager
from .system import which

ENV_BACKEND = "RIGFORGE_SANDBOX_BACKEND"
DEFAULT_BACKEND = "nspawn"


class Backend(Protocol):
    """A source of sandbox hosts: Debian with systemd as PID 1, reachable over SSH as a
    sudo user, with its host keys known out of band.

    ``up`` makes a host of Debian ``release``, a key of ``image.RELEASES`` (a backend refuses
    another with a ``UsageError`` before it creates anything); ``boot`` boots a halted host
    with the release it was made with, and the hosts it returns carry their ``release``.
    """

    def preflight(self) -> None: ...
    def up(
        self,
        name: str,
        progress: Callable[[str], None] | None = None,
        release: str = DEFAULT_RELEASE,
    ) -> SandboxHost: ...
    def down(self, name: str) -> None: ...
    def halt(self, name: str) -> SandboxHost: ...
    def boot(self, name: str, progress: Callable[[str], None] | None = None) -> SandboxHost: ...
    def list(self) -> list[SandboxHost]: ...


#: Where the default looks, in order: the first whose tools are on this machine wins.
ORDER = ("nspawn", "podman", "docker")
_TOOLS = {"nspawn": ("systemd-nspawn", "mmdebstrap"), "podman": ("podman",), "docker": ("docker",)}


def _container(engine: str) -> Callable[[str | None], Backend]:
    return lambda image=None: SandboxManager(backend=engine, image=image)


BACKENDS: dict[str, Callable[..., Backend]] = {
    "nspawn": lambda image=None: SandboxManager(),
    "podman": _container("podman"),
    "docker": _container("docker"),
}


def choose(name: str | None = None) -> tuple[str, str]:
    """(the backend to use, why): ``name``, ``$RIGFORGE_SANDBOX_BACKEND``, or the first of
    ``ORDER`` whose tools are installed (nspawn when none is, so that its preflight says
    what to install)."""
    if name:
        return name, "chosen with --backend"
    if os.environ.get(ENV_BACKEND):
        return os.environ[ENV_BACKEND], f"set in {ENV_BACKEND}"
    for candidate in ORDER:
        if all(which(tool) for tool in _TOOLS[candidate]):
            return candidate, f"the first available of {', '.join(ORDER)}"
    return DEFAULT_BACKEND, f"none of {', '.join(ORDER)} is installed"


def get_backend(name: str | None = None, image: str | None = None) -> Backend:
    """The backend named by ``name``, ``$RIGFORGE_SANDBOX_BACKEND``, or the first available;
    ``image`` (a container backend's ``--image``) is what its new hosts are made from."""
    name = choose(name)[0]
    if name not in BACKENDS:
        raise SandboxSetupError(
            f"unknown sandbox backend {name!r}",
            hint=f"available: {', '.join(sorted(BACKENDS))} (set {ENV_BACKEND})",
        )
    if image is not None and name == "nspawn":
        raise UsageError("--image needs a container backend (podman or docker), not nspawn",
                         hint="add --backend podman (or docker), or leave --image out")
    return BACKENDS[name](image) if image is not None else BACKENDS[name]()
