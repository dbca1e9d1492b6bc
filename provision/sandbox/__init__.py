"""Sandbox hosts: throwaway local Debian 12 (or 13) machines to provision and test against.

Each host runs systemd as PID 1 under ``systemd-nspawn`` on a copy-on-write overlay of one
shared image, in its own network namespace that can reach only the Debian mirror and DNS, and
is reached over SSH as ``rig`` (passwordless sudo) with host keys read from its disk, so no
trust-on-first-use is needed. Needs root.

    >>> from provision.sandbox import SandboxManager
    >>> mgr = SandboxManager()
    >>> host = mgr.up("rig1", progress=print)      # ~30 s the first time, ~1.5 s after
    >>> mgr.up("rig2", release="trixie")            # Debian 13 (its own image, cached too)
    >>> mgr.exec("rig1", ["systemctl", "is-system-running"])
    >>> mgr.down("rig1")
"""

from .backends import Backend, get_backend
from .host import SandboxHost
from .image import DEFAULT_RELEASE, RELEASES
from .manager import SandboxManager, validate_name

__all__ = [
    "DEFAULT_RELEASE",
    "RELEASES",
    "Backend",
    "SandboxHost",
    "SandboxManager",
    "get_backend",
    "validate_name",
]
