"""Container engines for sandbox hosts: Podman or Docker running systemd as PID 1.

A container host is the same host as an nspawn one for everything above this module: Debian
(or the user's ``--image``) with systemd as PID 1, sshd whose host keys are read from inside
the container (never trusted on first use), the ``rig`` sudo user logging in with the
sandbox key, and a record in ``hosts/<name>/state.json`` that outlives a killed rigforge.

* **podman** joins the host's own network namespace (``--network ns:``), so the bridge, the
  address and the nftables fence are the ones nspawn hosts get; netavark is never involved
  (its masquerade rule would open the host to everything).
* **docker** cannot join a namespace by path, so its hosts publish SSH on a fixed loopback
  port instead.

Containers are privileged: Docker and the NVIDIA toolkit inside need writable cgroups and
every capability the host has, exactly as nspawn hosts get with their flags. Where this
machine's bounding set lacks a capability (CAP_SYS_RESOURCE on the machines rigforge is
developed on), Docker's ``--privileged`` asks runc for it anyway and every run fails with
"unable to apply caps"; there a Docker host gets what ``--privileged`` grants, spelled out,
less the capabilities the machine does not have. Podman leaves those out by itself.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from provision.errors import SandboxError, SandboxSetupError

from .system import run, which

ENGINES = ("podman", "docker")
#: The label on every container and image rigforge makes: ``down`` and the tests find them by it.
LABEL = "io.rigforge.sandbox"
CONTAINER_PREFIX = "rigforge-"
IMAGE_REPO = "localhost/rigforge-sandbox"
STOP_GRACE_S = 15
# The default RLIMIT_NOFILE that Podman asks for is above what these machines permit.
ULIMITS = ("nofile=20000:20000", "nproc=32768:32768")
INSTALL_HINT = {
    "podman": "install it: apt-get install podman runc",
    "docker": "install it: apt-get install docker.io (or Docker's own docker-ce)",
}
#: Capability names as Docker spells them, by number (``linux/capability.h``).
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)
HOSTKEY_FILES = ("ssh_host_ed25519_key.pub", "ssh_host_ecdsa_key.pub", "ssh_host_rsa_key.pub")
_NEEDED_IN_IMAGE = {
    "systemd": "test -x /lib/systemd/systemd || test -x /usr/lib/systemd/systemd",
    "sshd": "test -x /usr/sbin/sshd",
    "sudo": "test -x /usr/bin/sudo",
    "python3": "command -v python3",
    "apt-get": "command -v apt-get",
}


_WORKS: dict[str, bool] = {}


def container_name(host: str) -> str:
    return f"{CONTAINER_PREFIX}{host}"


def unified_cgroups(root: Path = Path("/sys/fs/cgroup")) -> bool:
    """Whether this machine has the unified (v2) cgroup hierarchy only."""
    return (root / "cgroup.controllers").exists()


def lacking_capabilities(proc: Path = Path("/proc")) -> tuple[str, ...]:
    """The capabilities this kernel has that this process's bounding set lacks (and so every
    container started on this machine lacks); () if that cannot be read."""
    try:
        last = int((proc / "sys/kernel/cap_last_cap").read_text())
        status = (proc / "self/status").read_text().splitlines()
        bounding = int(next(ln.split()[1] for ln in status if ln.startswith("CapBnd:")), 16)
    except (OSError, ValueError, IndexError, StopIteration):
        return ()
    return tuple(cap for bit, cap in enumerate(CAPABILITIES[: last + 1]) if not bounding >> bit & 1)


@dataclass(frozen=True)
class Engine:
    """One container engine's command lines; ``binary`` is the podman or docker to run."""

    name: str
    binary: str
    cgroup_v2: bool = True
    #: capabilities this machine cannot give a container (Docker only: see ``privileges``)
    lacking_caps: tuple[str, ...] = ()

    # --- command lines ------------------------------------------------------------------

    def base(self) -> list[str]:
        if self.name != "podman":
            return [self.binary]
        argv = [self.binary, "--cgroup-manager", "cgroupfs"]
        if not self.cgroup_v2:
            # crun refuses a hybrid (v1 + v2) cgroup layout; runc boots systemd on it
            argv += ["--runtime", "runc"]
        return argv

    def run_argv(self, host: str, image: str, *, netns: str | None, port: int | None,
                 dns: str | None, docker_dir: Path) -> list[str]:
        """``run`` for host ``host``: detached, privileged, systemd as PID 1."""
        argv = [*self.base(), "run", "--detach", "--name", container_name(host),
                "--hostname", host, "--label", f"{LABEL}={host}", *self.privileges(),
                "--stop-signal", "SIGRTMIN+3",  # what systemd takes as "power off"
                "--tmpfs", "/run", "--tmpfs", "/run/lock",
                "--volume", f"{docker_dir}:/var/lib/docker"]
        for limit in ULIMITS:
            argv += ["--ulimit", limit]
        if self.name == "podman":
            # a namespace joined by path gets no /etc/hosts line for the name (sudo warns)
            argv += ["--systemd", "always", "--network", f"ns:/run/netns/{netns}",
                     "--add-host", f"{host}:127.0.1.1"]
        else:
            # systemd needs the host's cgroup tree writable inside (Docker has no --systemd)
            argv += ["--cgroupns", "host", "--volume", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
                     "--publish", f"127.0.0.1:{port}:22"]
        if dns:
            argv += ["--dns", dns]
        return [*argv, image, "/sbin/init"]

    def privileges(self) -> list[str]:
        """``--privileged``; for Docker on a machine whose bounding set lacks capabilities,
        what ``--privileged`` grants, spelled out, less those."""
        if self.name != "docker" or not self.lacking_caps:
            return ["--privileged"]
        argv = ["--cap-add", "ALL"]
        for cap in self.lacking_caps:
            argv += ["--cap-drop", cap]
        for opt in ("seccomp=unconfined", "apparmor=unconfined", "label=disable", "systempaths=unconfined"):
            argv += ["--security-opt", opt]
        return [*argv, "--device-cgroup-rule", "a *:* rwm"]

    def inspect_argv(self, container: str, template: str) -> list[str]:
        return [*self.base(), "container", "inspect", "--format", template, container]

    # --- queries ------------------------------------------------------------------------

    def _query(self, argv: list[str]) -> str | None:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    def state(self, container: str) -> tuple[bool, int | None]:
        """(running, the PID of its init as seen from here); (False, None) if it is gone."""
        out = self._query(self.inspect_argv(container, "{{.State.Running}} {{.State.Pid}}"))
        if not out:
            return False, None
        running, _, pid = out.partition(" ")
        alive = running == "true" and pid.isdigit() and int(pid) > 0
        return alive, int(pid) if alive else None

    def answers(self) -> bool:
        """Whether the engine works here (Docker: whether its daemon answers)."""
        return self._query([*self.base(), "info", "--format", "{{.Host.Arch}}" if self.name == "podman"
                            else "{{.ServerVersion}}"]) not in (None, "")

    def exists(self, container: str) -> bool:
        return self._query(self.inspect_argv(container, "{{.Id}}")) is not None

    def image_exists(self, ref: str) -> bool:
        return self._query([*self.base(), "image", "inspect", "--format", "{{.Id}}", ref]) is not None

    def host_keys(self, container: str, pid: int | None = None) -> tuple[str, ...]:
        """The container's public host keys as "type base64", strongest first: read through
        its init's root (``pid``, as this machine sees it: no process started), else with one
        ``exec``."""
        texts: list[str] = []
        if pid:
            for name in HOSTKEY_FILES:
                with contextlib.suppress(OSError):
                    texts.append(Path(f"/proc/{pid}/root/etc/ssh/{name}").read_text())
        else:
            paths = " ".join(f"/etc/ssh/{name}" for name in HOSTKEY_FILES)
            out = self._query([*self.base(), "exec", container, "sh", "-c", f"cat {paths} 2>/dev/null; true"])
            texts = (out or "").splitlines()
        keys = []
        for text in texts:
            fields = text.split()
            if len(fields) >= 2:
                keys.append(f"{fields[0]} {fields[1]}")
        return tuple(keys)

    def missing_in_image(self, image: str) -> list[str] | None:
        """What of systemd, sshd, sudo, python3 and apt-get ``image`` lacks (None: it cannot
        run /bin/sh, or it is not in the local store)."""
        script = "; ".join(f"{test} >/dev/null 2>&1 || echo {what}"
                           for what, test in _NEEDED_IN_IMAGE.items())
        out = self.shell_in_image(image, script)
        return None if out is None else out.split()

    def shell_in_image(self, image: str, script: str) -> str | None:
        """``script``'s output in a throwaway container of ``image`` with no network (None:
        it failed, or the image cannot run /bin/sh)."""
        limits = [arg for limit in ULIMITS for arg in ("--ulimit", limit)]
        return self._query([*self.base(), "run", "--rm", *limits, "--network", "none",
                            "--entrypoint", "/bin/sh", image, "-c", script])

    # --- actions ------------------------------------------------------------------------

    def start(self, container: str) -> None:
        run([*self.base(), "start", container], what=f"starting container {container}")

    def stop(self, container: str, grace: int = STOP_GRACE_S) -> None:
        if self.state(container)[0]:
            # -t: Docker 28 calls the long form --timeout, Docker 20.10 and Podman --time
            run([*self.base(), "stop", "-t", str(grace), container], check=False)

    def remove(self, container: str) -> None:
        if self.exists(container):
            run([*self.base(), "rm", "--force", "--volumes", container],
                what=f"removing container {container}")

    def logs(self, container: str) -> str:
        return self._query([*self.base(), "logs", "--tail", "40", container]) or ""

    def import_rootfs(self, rootfs: Path, ref: str, timeout: float = 600) -> None:
        """Import an unpacked root filesystem as image ``ref`` (no registry involved)."""
        argv = [*self.base(), "import", "--change", f"LABEL {LABEL}=image",
                "--change", 'CMD ["/sbin/init"]', "-", ref]
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            done = subprocess.run(argv, stdin=tar.stdout, capture_output=True, text=True,
                                  timeout=timeout, check=False)
        finally:
            if tar.stdout:
                tar.stdout.close()
            tar.wait()
        if done.returncode != 0 or tar.returncode != 0:
            detail = (done.stderr.strip().splitlines() or ["tar failed"])[-1]
            raise SandboxError(f"importing {rootfs} as image {ref} failed: {detail}")

    def remove_image(self, ref: str) -> None:
        if self.image_exists(ref):
            run([*self.base(), "rmi", "--force", ref], check=False)

    def containers_using(self, ref: str) -> list[str]:
        out = self._query([*self.base(), "ps", "--all", "--filter", f"label={LABEL}",
                           "--format", "{{.Names}} {{.Image}}"]) or ""
        return [line.split()[0] for line in out.splitlines() if line.split()[1:] == [ref]]


def engine(name: str) -> Engine:
    """The engine called ``name`` on this machine; exit 2 with the install command if absent."""
    if name not in ENGINES:
        raise SandboxSetupError(f"unknown container engine {name!r}", hint=f"use one of {', '.join(ENGINES)}")
    binary = which(name)
    if not binary:
        raise SandboxSetupError(f"the {name} backend needs `{name}`, which is not installed",
                                hint=INSTALL_HINT[name])
    found = Engine(name, binary, unified_cgroups(), lacking_capabilities() if name == "docker" else ())
    # asked once per process: every look at a container host goes through here
    if binary not in _WORKS:
        _WORKS[binary] = found.answers()
    if not _WORKS[binary]:
        raise SandboxSetupError(
            f"`{binary} info` fails: {name} is installed but does not work here",
            hint=_not_working_hint(name, binary),
        )
    return found


def _not_working_hint(name: str, binary: str) -> str:
    if name != "docker":
        return f"run `{binary} info` to see why"
    hint = "start its daemon: systemctl start docker"
    if os.environ.get("DOCKER_HOST"):
        hint += f", or check DOCKER_HOST ({os.environ['DOCKER_HOST']})"
    return hint
