"""``SandboxManager``: create, boot, halt, list and remove sandbox hosts.

A sandbox host is a throwaway Debian 12 (or 13) machine on this one: systemd as PID 1 under
``systemd-nspawn``, in its own network namespace behind the ``rigforge0`` bridge, reached
over SSH as the sudo user ``rig``. The pieces live in the sibling modules:

* ``image``    the shared root filesystem, built once with mmdebstrap;
* ``network``  bridge, namespaces, veths, and the nftables fence;
* ``cgroups``  one cgroup per host in every hierarchy;
* ``host``     the state record, the nspawn process and the wait for SSH;
* ``hoststore`` the ``hosts/`` directory: finding, loading and mounting each host.

Everything here is written to survive a crash at any step: the host's state file is written
before anything is created, every creation step accepts what an earlier run left behind, and
``down`` removes whatever pieces exist.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from provision.errors import SandboxError, SandboxSetupError

from . import cgroups, container_host
from .host import (
    PROPAGATE_DIR,
    HostState,
    SandboxHost,
    nspawn_alive,
    nspawn_argv,
    start_nspawn,
    stop_nspawn,
    wait_for_ssh,
)
from .hoststore import HostStore, validate_name
from .image import (
    DEFAULT_RELEASE,
    USER,
    ImageStore,
    build_recipe,
    check_release,
    describe_release,
    ensure_key,
)
from .mirrors import Mirrors, fence, find_mirrors, host_nameservers
from .network import (
    SandboxNetwork,
    allocate_address,
    netns_name,
    subnet_from_env,
    veth_name,
)
from .system import (
    APT_HINT,
    file_lock,
    remove_tree,
    rmdir_quiet,
    run,
    umount_below,
    which,
    write_guest_identity,
)

ENV_STATE_DIR = "RIGFORGE_SANDBOX_DIR"
DEFAULT_STATE_DIR = Path("/var/lib/rigforge/sandbox")
BOOT_TIMEOUT_S = 60.0
HALT_GRACE_S = 15.0
HOSTS_LOCK_TIMEOUT_S = 120.0
CONTAINER_TOOLS = ("mmdebstrap", "nft", "ip", "ssh", "ssh-keygen", "nsenter")
REQUIRED_TOOLS = ("mmdebstrap", "systemd-nspawn", "nft", "ip", "ssh", "ssh-keygen", "nsenter", "mount")
GUEST_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/root",
    "TERM": "dumb",
}
# nspawn mounts the v1 controllers read-only; runc (Docker) inside needs them writable. Only
# the per-mount flag can change: a plain "remount,rw" fails with "mount point is busy".
_REMOUNT_CGROUPS = 'for c in /sys/fs/cgroup/*/; do mount -o remount,bind,rw "$c" 2>/dev/null || true; done'

Progress = Callable[[str], None]


def _say(progress: Progress | None, message: str) -> None:
    if progress:
        progress(message)


class SandboxManager:
    """Sandbox hosts under one state directory (default ``/var/lib/rigforge/sandbox``)::

    id_ed25519(.pub)   the key that logs in as root and as ``rig`` on every host
    images/            the shared root filesystems, one per recipe (release, hash)
    net/               what the network setup must restore (ip_forward)
    hosts/<name>/      one host (see ``provision.sandbox.host`` and ``hoststore``)
    """

    def __init__(self, state_dir: Path | None = None, backend: str = "nspawn", image: str | None = None):
        """``backend`` and ``image`` (container backends only) are what ``up`` makes new
        hosts with; every other call acts on a host by the backend in its record."""
        self.backend, self.image = backend, image
        default = os.environ.get(ENV_STATE_DIR) or DEFAULT_STATE_DIR
        self.state_dir = Path(state_dir or default).absolute()
        self.key_path = self.state_dir / "id_ed25519"
        self.hosts_dir = self.state_dir / "hosts"
        self.store = HostStore(self.hosts_dir, self.key_path)
        self._mirrors: Mirrors | None = None

    # --- checks ---------------------------------------------------------------------------

    def preflight(self) -> None:
        """Raise ``SandboxSetupError`` unless this machine can run sandbox hosts."""
        self._require_root()
        if self.backend != "nspawn":
            container_host.engine(self.backend)  # absent: exit 2 with the install command
        tools = REQUIRED_TOOLS if self.backend == "nspawn" else CONTAINER_TOOLS
        if self.image:  # mmdebstrap and a Debian archive build the default image only
            tools = tuple(tool for tool in tools if tool != "mmdebstrap")
        missing = [tool for tool in tools if not which(tool)]
        if missing:
            raise SandboxSetupError(f"missing tools for sandbox hosts: {', '.join(missing)}", hint=APT_HINT)
        if not self.image:
            self.mirrors()
        if not host_nameservers():
            raise SandboxSetupError(
                "no IPv4 DNS resolver in /etc/resolv.conf that a sandbox host could reach",
                hint="add a non-loopback IPv4 'nameserver' line to /etc/resolv.conf",
            )
        subnet_from_env(os.environ)
        if re.search(r"[,:\s]", str(self.state_dir)):
            raise SandboxSetupError(
                f"the sandbox directory {self.state_dir} contains ',', ':' or whitespace",
                hint=f"set {ENV_STATE_DIR} to a plain path (overlayfs options cannot quote)",
            )

    def _require_root(self) -> None:
        if os.geteuid() != 0:
            raise SandboxSetupError(
                "sandbox hosts need root (namespaces, mounts, nftables)",
                hint="run it as root, for example with sudo",
            )

    def mirrors(self) -> Mirrors:
        """The Debian archives this machine's apt uses (or the environment's override)."""
        if self._mirrors is None:
            self._mirrors = find_mirrors()
        return self._mirrors

    def _fence(self) -> Mirrors:
        """What the firewall lets every host reach (see ``mirrors.fence``)."""
        return fence(self.mirrors, [s.archives for s in self.store.states().values() if s])

    # --- image ----------------------------------------------------------------------------

    def ensure_image(self, progress: Progress | None = None, release: str = DEFAULT_RELEASE) -> Path:
        """The root filesystem of ``release``'s image, built on first use and cached (see ``image``)."""
        check_release(release)
        self.preflight()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)  # it holds the private login key
        with file_lock(self.state_dir / ".key.lock", 60, "creating the sandbox key"):
            pubkey = ensure_key(self.key_path)
        recipe = build_recipe(self.mirrors(), pubkey, release)
        return ImageStore(self.state_dir / "images").ensure(recipe, progress)

    # --- lifecycle ------------------------------------------------------------------------

    def up(
        self, name: str, progress: Progress | None = None, release: str = DEFAULT_RELEASE
    ) -> SandboxHost:
        """Create and boot host ``name`` running Debian ``release`` (a key of ``image.RELEASES``);
        return once ``rig`` can log in over SSH."""
        validate_name(name)
        check_release(release)
        self.preflight()
        if self.store.host_dir(name).exists():
            raise self.store.exists_error(name)
        archives: list[str] = []
        if self.image:  # an --image that cannot become a host changes nothing
            archives, image = container_host.check_image(self.backend, self.image), ""
        else:
            image = str(self.ensure_image(progress, release))
        subnet = subnet_from_env(os.environ)
        with self._hosts_lock():
            if self.store.host_dir(name).exists():
                raise self.store.exists_error(name)
            used = [s.address for s in self.store.states().values() if s]
            addr = allocate_address(subnet, used)
            state = HostState(
                name=name,
                address=str(addr),
                veth=veth_name(subnet, addr),
                netns=netns_name(name),
                image=image,
                user=USER,
                created=time.time(),
                release=release,
                backend=self.backend,
                port=container_host.free_port() if self.backend == "docker" else 22,
                archives=archives,
            )
            if self.backend == "docker":  # no veth: the freed address's veth name is the next host's
                state.address, state.veth = "127.0.0.1", ""
            self.store.create(state)
        return self._start_or_stop(state, progress, fresh=True)

    def boot(self, name: str, progress: Progress | None = None) -> SandboxHost:
        """Boot a halted host again, with the disk (and release) it had; a running host is
        returned as is."""
        validate_name(name)
        self.preflight()
        state = self.store.load(name)
        if self.store.runs(state)[0]:
            return self.store.host(state)
        if not container_host.bootable(state):
            raise SandboxError(
                f"the image of {name} ({state.image}) is gone",
                hint=f"recreate it: rigforge sandbox down {name} && "
                f"rigforge sandbox up {name} --release {state.release}",
            )
        self._stop(state)  # clear what a crashed run may have left in its cgroups
        return self._start_or_stop(state, progress, fresh=False)

    def halt(self, name: str) -> SandboxHost:
        """Power a host off, keeping its disk, address and network for ``boot``."""
        validate_name(name)
        self._require_root()
        state = self.store.load(name)
        self._stop(state)
        return self.store.host(state)

    def down(self, name: str) -> None:
        """Power off and delete everything of host ``name``; the network goes with the last host."""
        validate_name(name)
        self._require_root()
        hdir = self.store.host_dir(name)
        if not hdir.is_dir():
            raise SandboxSetupError(
                f"there is no sandbox host named {name}",
                hint="`rigforge sandbox list` shows the existing hosts",
            )
        state = self.store.load_partial(name)
        if state is not None:
            self._stop(state)
            container_host.remove(state)
        else:
            rmdir_quiet(PROPAGATE_DIR / name)
        network = self._network()
        with self._hosts_lock():
            umount_below(hdir)
            network.detach(netns_name(name), state.veth if state else None)
            remove_tree(hdir)
            if not any(p.is_dir() for p in self.hosts_dir.iterdir()):
                network.down()

    # --- queries --------------------------------------------------------------------------

    def list(self) -> list[SandboxHost]:
        """Every host in the state directory, running or not, sorted by name."""
        try:
            states = self.store.states()
        except PermissionError as exc:
            raise SandboxSetupError(
                f"cannot read {self.hosts_dir}", hint="run it as root, for example with sudo"
            ) from exc
        # a host without a record crashed before it was written: only `down` helps it
        return [self.store.host(s) if s is not None else self.store.lost_host(n) for n, s in states.items()]

    def get(self, name: str) -> SandboxHost:
        """One host by name (``SandboxSetupError`` if there is none)."""
        validate_name(name)
        return self.store.host(self.store.load(name))

    def exec(self, name: str, argv: list[str], **kw: Any) -> subprocess.CompletedProcess:
        """Run ``argv`` inside a running host (all its namespaces), without SSH.

        Keyword arguments go to ``subprocess.run``; the guest gets a plain root environment
        unless ``env`` is given, so that this machine's variables do not leak in.
        """
        host = self.get(name)
        if not host.running or host.leader_pid is None:
            raise SandboxError(
                f"sandbox host {name} is not running", hint=f"boot it: rigforge sandbox boot {name}"
            )
        kw.setdefault("env", dict(GUEST_ENV))
        nsenter = which("nsenter") or "nsenter"
        return subprocess.run([nsenter, "-t", str(host.leader_pid), "-a", *argv], **kw)

    # --- internals ------------------------------------------------------------------------

    def _hosts_lock(self):
        return file_lock(self.state_dir / ".hosts.lock", HOSTS_LOCK_TIMEOUT_S, "changing sandbox hosts")

    def _network(self) -> SandboxNetwork:
        return SandboxNetwork(self.state_dir / "net", subnet_from_env(os.environ))

    def _start_or_stop(self, state: HostState, progress: Progress | None, fresh: bool) -> SandboxHost:
        """Start the host; if that fails, leave it halted (its console log kept) and say so."""
        try:
            return self._start(state, progress, fresh)
        except BaseException as exc:
            # the original failure is the one worth reporting
            with contextlib.suppress(Exception):
                self._stop(state)
            if isinstance(exc, SandboxError):
                hint = f"{exc.hint}; " if exc.hint else ""
                raise type(exc)(
                    exc.message, hint + f"remove it with `rigforge sandbox down {state.name}`"
                ) from exc
            raise

    def _start(self, state: HostState, progress: Progress | None, fresh: bool) -> SandboxHost:
        name, hdir = state.name, self.store.host_dir(state.name)
        if state.backend != "docker":  # Docker hosts publish SSH on loopback instead
            self._attach(state, progress, fresh)
        if state.backend != "nspawn":
            return self._start_container(state, progress, fresh)
        merged = self.store.mount_root(state)
        if fresh:
            self._write_guest_identity(merged, name)
        _say(progress, f"booting {name}, {describe_release(state.release)}")
        started = time.monotonic()
        dirs = cgroups.prepare(name)
        state.cgroups = [str(d) for d in dirs]
        state.save(self.store.state_path(name))  # before the start: a crash must not lose them
        argv = nspawn_argv(name, merged, state.netns, hdir / "docker")
        state.nspawn_pid = start_nspawn(argv, hdir / "console.log", dirs)
        state.save(self.store.state_path(name))
        pid = state.nspawn_pid
        host = wait_for_ssh(
            lambda: self.store.host(state),
            lambda: nspawn_alive(pid, name),
            hdir / "console.log",
            BOOT_TIMEOUT_S,
        )
        if host.leader_pid:
            run(
                ["nsenter", "-t", str(host.leader_pid), "-a", "sh", "-c", _REMOUNT_CGROUPS],
                check=False,
            )
        _say(progress, f"{name} is up at {host.address} ({time.monotonic() - started:.1f} s)")
        return host

    def _write_guest_identity(self, root: Path, name: str) -> None:
        write_guest_identity(root, name, host_nameservers()[0])  # this machine's first resolver

    def _attach(self, state: HostState, progress: Progress | None, fresh: bool) -> None:
        network = self._network()
        with self._hosts_lock():
            if fresh:  # an earlier crashed run may have left a namespace or veth of that name
                network.detach(state.netns, state.veth)
            _say(progress, f"network: {state.address} on bridge rigforge0")
            network.up(self._fence(), host_nameservers())
            network.attach(state.netns, state.veth, state.address)

    def _start_container(self, state: HostState, progress: Progress | None, fresh: bool) -> SandboxHost:
        if fresh:
            rootfs = None if self.image else Path(state.image)  # up() made or found it
            state.image_ref = container_host.prepare_image(
                self.backend, rootfs, self.image, self.key_path, state.netns, progress)
            state.save(self.store.state_path(state.name))
        _say(progress, f"booting {state.name} in {state.backend} from {state.image_ref}")
        started = time.monotonic()
        hdir, dns = self.store.host_dir(state.name), host_nameservers()[0]
        host = container_host.start(state, hdir, lambda: self.store.host(state), dns, fresh, BOOT_TIMEOUT_S)
        state.save(self.store.state_path(state.name))
        elapsed = time.monotonic() - started
        _say(progress, f"{state.name} is up at {host.address}:{host.port} ({elapsed:.1f} s)")
        return host

    def _stop(self, state: HostState) -> None:
        """Halt nspawn, kill what is left in the host's cgroups, and remove those cgroups."""
        name = state.name
        if state.backend != "nspawn":
            container_host.stop(state)
            return
        if state.nspawn_pid:
            stop_nspawn(state.nspawn_pid, name, HALT_GRACE_S)
        # only directories of the form .../rigforge-sandbox/<name>: never act on a corrupt record
        dirs = [Path(d) for d in state.cgroups]
        dirs = [d for d in dirs if d.name == name and d.parent.name == cgroups.GROUP]
        cgroups.kill_all([d for d in dirs if d.exists()])
        left = cgroups.remove(dirs)
        cgroups.remove_groups(dirs)
        # /run is no tmpfs on some machines, and then nspawn leaves this behind
        rmdir_quiet(PROPAGATE_DIR / name)
        state.nspawn_pid = None
        state.cgroups = [str(d) for d in dirs if d in left or d.exists()]
        if self.store.host_dir(name).is_dir():
            state.save(self.store.state_path(name))
