"""One sandbox host: its recorded state, its nspawn process, and the wait for its SSH login.

A host lives in ``<state_dir>/hosts/<name>/``::

    state.json    release, address, veth, netns, image, nspawn pid, cgroups (see HostState)
    upper/ work/  the overlay's writable layer: the host's "disk"
    merged/       the overlay mount = the host's root filesystem
    docker/       bind-mounted to /var/lib/docker (overlay2 cannot sit on overlayfs)
    console.log   nspawn's output, appended on every boot

Processes are only ever addressed by pid, and a recorded pid is trusted only if
``/proc/<pid>/cmdline`` is still our ``systemd-nspawn --machine=<name>``: after a reboot of
this machine the number may belong to anything.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from provision.errors import SandboxError

from . import cgroups
from .image import DEFAULT_RELEASE
from .system import atomic_write, tail, tool_env

SSH_PORT = 22
HOSTKEY_ORDER = ("ssh_host_ed25519_key.pub", "ssh_host_ecdsa_key.pub", "ssh_host_rsa_key.pub")
PROPAGATE_DIR = Path("/run/systemd/nspawn/propagate")

# nspawn processes started by this Python process; they must be reaped by us, or they
# would linger as zombies that still look alive to kill(pid, 0).
_CHILDREN: dict[int, subprocess.Popen] = {}


@dataclass(frozen=True)
class SandboxHost:
    """What a caller needs to reach a sandbox host over SSH without trusting on first use."""

    name: str
    address: str
    port: int
    user: str
    key_path: Path
    host_keys: tuple[str, ...]
    running: bool
    leader_pid: int | None
    release: str = DEFAULT_RELEASE  # the Debian suite it runs ("" when its state is lost)
    backend: str = "nspawn"

    def known_hosts(self) -> str:
        """``known_hosts`` lines for this host, built from the keys read off its disk."""
        target = self.address if self.port == SSH_PORT else f"[{self.address}]:{self.port}"
        return "".join(f"{target} {key}\n" for key in self.host_keys)


@dataclass
class HostState:
    """The JSON record of a host, enough to find and remove every piece of it."""

    name: str
    address: str
    veth: str
    netns: str
    image: str
    port: int = SSH_PORT
    user: str = "rig"
    nspawn_pid: int | None = None
    cgroups: list[str] = field(default_factory=list)
    created: float = 0.0
    # the Debian suite of its image; records written before there was a choice are bookworm
    release: str = DEFAULT_RELEASE
    # what runs it: "nspawn", or a container engine ("podman", "docker") with the container,
    # the image it was made from, and the host keys read from inside it at its first boot
    backend: str = "nspawn"
    container: str = ""
    image_ref: str = ""
    host_keys: list[str] = field(default_factory=list)
    # the http(s) archives an --image host's own apt sources name: the firewall lets it reach them
    archives: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> HostState:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):  # a record overwritten with other JSON is a lost record
            raise ValueError(f"{path} holds no object")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self, path: Path) -> None:
        atomic_write(path, json.dumps(asdict(self), indent=2, sort_keys=True) + "\n", 0o600)


def read_host_keys(root: Path) -> tuple[str, ...]:
    """The guest's public host keys as "type base64" (comment dropped), strongest first."""
    keys = []
    for name in HOSTKEY_ORDER:
        try:
            fields = (root / "etc/ssh" / name).read_text().split()
        except OSError:
            continue
        if len(fields) >= 2:
            keys.append(f"{fields[0]} {fields[1]}")
    return tuple(keys)


# --- processes ---------------------------------------------------------------------------


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")


def nspawn_alive(pid: int | None, name: str) -> bool:
    """Whether ``pid`` is a live ``systemd-nspawn`` for machine ``name``."""
    if not pid:
        return False
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        del _CHILDREN[pid]
        return False
    argv = _cmdline(pid)
    if not argv or os.path.basename(argv[0]) != "systemd-nspawn":
        return False
    return f"--machine={name}" in argv and not _is_zombie(pid)


def leader_of(nspawn_pid: int) -> int | None:
    """The container's PID 1 as seen from here: the nspawn child whose inner pid is 1."""
    try:
        kids = Path(f"/proc/{nspawn_pid}/task/{nspawn_pid}/children").read_text().split()
    except OSError:
        return None
    for kid in kids:
        try:
            status = Path(f"/proc/{kid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("NSpid:") and line.split()[-1] == "1" and len(line.split()) > 2:
                return int(kid)
    return None


def nspawn_argv(name: str, merged: Path, netns: str, docker_dir: Path) -> list[str]:
    """The nspawn command line; the comments say why each flag is there."""
    return [
        "systemd-nspawn",
        "--boot",  # systemd as PID 1
        # this machine may have no systemd, machined or D-Bus: register nowhere and stay in
        # our own cgroup ("Failed to open system bus" without --keep-unit)
        "--register=no",
        "--keep-unit",
        f"--machine={name}",
        f"--directory={merged}",
        f"--network-namespace-path=/run/netns/{netns}",
        # Docker inside the host needs CAP_NET_ADMIN (not granted with a netns path) and the
        # keyring syscalls runc uses; overlay2 needs /var/lib/docker off the overlayfs
        "--capability=CAP_NET_ADMIN",
        "--system-call-filter=add_key",
        "--system-call-filter=keyctl",
        f"--bind={docker_dir}:/var/lib/docker",
        "--console=read-only",
    ]


def start_nspawn(argv: list[str], console_log: Path, cgroup_dirs: list[Path]) -> int:
    """Start nspawn in a new session, in its own cgroups, output appended to the console log."""
    targets = [str(d) for d in cgroup_dirs]
    with open(console_log, "ab") as log:
        log.write(f"\n=== rigforge: boot at {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n".encode())
        log.flush()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd="/",
            env=tool_env(),
            start_new_session=True,
            preexec_fn=lambda: cgroups.enter(targets),
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


def _wait_gone(pid: int, name: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.1) + 1):
        if not nspawn_alive(pid, name):
            return True
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return not nspawn_alive(pid, name)


def stop_nspawn(pid: int, name: str, grace: float = 15.0) -> None:
    """SIGTERM (the guest's systemd powers off), then SIGKILL after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if not nspawn_alive(pid, name):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if _wait_gone(pid, name, wait):
            return
    if nspawn_alive(pid, name):
        raise SandboxError(
            f"systemd-nspawn (pid {pid}) for {name} survived SIGKILL",
            hint=f"it may be stuck in the kernel (D state); check `ps -o pid,stat,cmd -p {pid}`",
        )


# --- waiting for SSH ----------------------------------------------------------------------


def _port_open(address: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def ssh_login_works(host: SandboxHost, timeout: float = 5.0) -> bool:
    """Log in as ``host.user`` with the sandbox key, trusting only ``host.host_keys``.

    A key mismatch is an error, not a "not yet": it means something else answers on the
    address, and no amount of waiting makes that right.
    """
    import paramiko  # deferred: the pure parts of the package must import fast

    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    target = host.address if host.port == SSH_PORT else f"[{host.address}]:{host.port}"
    for line in host.host_keys:
        entry = paramiko.hostkeys.HostKeyEntry.from_line(f"{target} {line}")
        if entry is not None and entry.key is not None:
            client.get_host_keys().add(target, entry.key.get_name(), entry.key)
    try:
        client.connect(
            host.address,
            port=host.port,
            username=host.user,
            key_filename=str(host.key_path),
            look_for_keys=False,
            allow_agent=False,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
        )
        _, stdout, _ = client.exec_command("sudo -n true", timeout=timeout)
        channel = stdout.channel
        return channel.status_event.wait(timeout) and channel.recv_exit_status() == 0
    except paramiko.BadHostKeyException as exc:
        raise SandboxError(
            f"{host.address} answered with a host key that is not {host.name}'s",
            hint=f"another machine may use the address; remove {host.name} and create it again",
        ) from exc
    except (paramiko.SSHException, OSError, EOFError):
        return False
    finally:
        client.close()


def wait_for_ssh(
    make_host: Callable[[], SandboxHost],
    alive: Callable[[], bool],
    console_log: Path,
    timeout: float = 60.0,
) -> SandboxHost:
    """Wait until sshd answers and the login works with the on-disk host keys.

    ``make_host`` re-reads the host (its keys appear on disk only when sshd starts);
    ``alive`` says whether nspawn still runs, so that a failed boot is reported at once.
    """
    deadline = time.monotonic() + timeout
    host = make_host()
    for _ in range(int(timeout / 0.2) + 1):
        if not alive():
            raise SandboxError(
                f"{host.name} stopped while booting:\n{tail(console_log)}",
                hint=f"see the console log {console_log}",
            )
        if _port_open(host.address, host.port):
            host = make_host()
            if host.host_keys and ssh_login_works(host):
                return host
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    raise SandboxError(
        f"{host.name} did not answer on ssh://{host.user}@{host.address} within {timeout:g} s",
        hint=f"see the console log {console_log}",
    )
