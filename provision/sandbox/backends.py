"""Sandbox backends: how a throwaway test host is made. One is implemented and tested here.

``nspawn`` (systemd-nspawn + mmdebstrap, :class:`SandboxManager`) is the backend that works
on the machines this project is developed on. The :class:`Backend` protocol is what another
backend (Docker or Podman running systemd inside a container, for CI runners that have
them) must provide; rigforge's commands use only this protocol and :func:`get_backend`.
"""

import os
from collections.abc import Callable
from typing import Protocol

from provision.errors import SandboxSetupError

from .host import SandboxHost
from .image import DEFAULT_RELEASE
from .manager import SandboxManager

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


BACKENDS: dict[str, Callable[[], Backend]] = {"nspawn": SandboxManager}


def get_backend(name: str | None = None) -> Backend:
    """The backend named by ``name``, ``$RIGFORGE_SANDBOX_BACKEND``, or the default."""
    name = name or os.environ.get(ENV_BACKEND) or DEFAULT_BACKEND
    if name not in BACKENDS:
        raise SandboxSetupError(
            f"unknown sandbox backend {name!r}",
            hint=f"available: {', '.join(sorted(BACKENDS))} (set {ENV_BACKEND})",
        )
    return BACKENDS[name]()
