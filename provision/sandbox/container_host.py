"""The lifecycle of a sandbox host that runs in a Podman or Docker container.

``SandboxManager`` does what every host needs (name, address, namespace, record, network);
this module does what differs for a container: its image, its start, the wait for its SSH
login with host keys read from inside it, its stop, and its removal with the image rigforge
built for it once no other host uses that image.

The default image is the cached Debian root filesystem that nspawn hosts boot, imported
into the engine's local store under ``localhost/rigforge-sandbox:<image dir name>``: nothing
is pulled from a registry. ``--image REF`` takes any image with apt; what a host needs and
the image lacks (systemd, sshd, sudo, python3) is added in a build step, with the ``rig``
user, the sandbox key and host keys made at the container's first boot.
"""

from __future__ import annotations

import hashlib
import shlex
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from provision.errors import SandboxError, SandboxSetupError, UsageError

from . import mirrors
from .container import IMAGE_REPO, LABEL, Engine, container_name, engine
from .host import HostState, SandboxHost, wait_for_ssh
from .system import run

Progress = Callable[[str], None]
BUILD_TIMEOUT_S = 1800
GUEST_PACKAGES = ("systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "sudo",
                  "iproute2", "ca-certificates")
# ssh.service may be socket-activated (Ubuntu 24.04): keys made by its ExecStartPre would
# appear only at the first connection, so a unit of our own makes them at boot.
_HOSTKEY_UNIT = """[Unit]
Description=rigforge: SSH host keys made by this container itself
Before=ssh.service ssh.socket
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
"""


class UnusableImageError(SandboxSetupError, UsageError):
    """An ``--image`` that cannot become a sandbox host: exit 2, nothing was created."""


def default_image_ref(rootfs: Path) -> str:
    """The local tag of the imported default image: one per cached root filesystem."""
    return f"{IMAGE_REPO}:{rootfs.parent.name}"


def custom_image_ref(image: str, pubkey: str) -> str:
    digest = hashlib.sha256(f"{image}\n{pubkey}".encode()).hexdigest()[:12]
    return f"{IMAGE_REPO}:custom-{digest}"


def containerfile(image: str, pubkey: str, missing: list[str], user: str = "rig") -> str:
    """The build that turns ``image`` into a sandbox host image."""
    lines = [f"FROM {image}", f"LABEL {LABEL}=image"]
    if missing:
        pkgs = " ".join(GUEST_PACKAGES)
        lines.append("RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "
                     f"--no-install-recommends {pkgs} && rm -rf /var/lib/apt/lists/*")
    # a Containerfile instruction is one line: the unit goes in as printf's escaped format
    unit = shlex.quote(_HOSTKEY_UNIT.replace("\n", "\\n"))
    key = shlex.quote(pubkey.strip())
    lines += [
        f"RUN id -u {user} >/dev/null 2>&1 || useradd -m -s /bin/bash {user}; "
        f"install -d -m 0700 -o {user} -g {user} /home/{user}/.ssh; "
        f"printf '%s\\n' {key} > /home/{user}/.ssh/authorized_keys; "
        f"chown {user}:{user} /home/{user}/.ssh/authorized_keys; "
        f"chmod 0600 /home/{user}/.ssh/authorized_keys; "
        f"printf '%s\\n' '{user} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/{user}; "
        f"chmod 0440 /etc/sudoers.d/{user}; visudo -c -q -f /etc/sudoers.d/{user}; "
        # an image's baked-in host keys would be every container's: each makes its own
        "rm -f /etc/ssh/ssh_host_*; "
        f"printf {unit} > /etc/systemd/system/rigforge-hostkeys.service; "
        "systemctl enable rigforge-hostkeys.service ssh.service",
        'CMD ["/sbin/init"]',
    ]
    return "\n".join(lines) + "\n"


def ensure_default_image(eng: Engine, rootfs: Path, progress: Progress | None) -> str:
    ref = default_image_ref(rootfs)
    if not eng.image_exists(ref):
        if progress:
            progress(f"importing {rootfs.parent.name} into {eng.name} as {ref}")
        eng.import_rootfs(rootfs, ref)
    return ref


def check_image(backend: str, image: str) -> list[str]:
    """Refuse (exit 2) an ``--image`` that cannot become a host, before anything is made;
    return the archives its own apt sources name (its host's firewall lets it reach them)."""
    eng = engine(backend)
    _usable(eng, image)
    return image_archives(eng, image)


# Each file behind a marker line, so that one container run reads them all.
_SOURCES_SCRIPT = ('for f in /etc/apt/sources.list /etc/apt/sources.list.d/*; do '
                   '[ -f "$f" ] && { echo "### $f"; cat "$f"; echo; }; done; true')


def image_archives(eng: Engine, image: str) -> list[str]:
    """The http(s) archives in ``image``'s ``/etc/apt/sources.list{,.d/*}``."""
    out = eng.shell_in_image(image, _SOURCES_SCRIPT) or ""
    files: list[tuple[str, list[str]]] = []
    for line in out.splitlines():
        if line.startswith("### /"):
            files.append((line[4:], []))
        elif files:
            files[-1][1].append(line)
    return mirrors.archives(mirrors.uris_of_files((name, "\n".join(body)) for name, body in files))


def _usable(eng: Engine, image: str) -> list[str]:
    """What the build must add to ``image``; ``UnusableImageError`` if it cannot."""
    lacking = eng.missing_in_image(image)
    if lacking is None:
        raise UnusableImageError(
            f"image {image} cannot run /bin/sh here (is it in {eng.name}'s local store?)",
            hint=f"fetch it first: {eng.name} pull {image}; sandbox hosts need a Linux image with a shell",
        )
    missing = [what for what in lacking if what != "apt-get"]
    if missing and "apt-get" in lacking:
        raise UnusableImageError(
            f"image {image} has no {', '.join(missing)}, and no apt-get to add them",
            hint="use an image of Debian or Ubuntu, or one with systemd, sshd, sudo and python3",
        )
    return missing


def ensure_custom_image(eng: Engine, image: str, pubkey: str, netns: str | None,
                        progress: Progress | None) -> str:
    """Build (once per image and key) the sandbox image from ``--image``."""
    ref = custom_image_ref(image, pubkey)
    if eng.image_exists(ref):
        return ref
    missing = _usable(eng, image)
    if progress:
        progress(f"building {ref} from {image}" + (f" (adding {', '.join(missing)})" if missing else ""))
    with tempfile.TemporaryDirectory(prefix="rigforge-build-") as ctx:
        (Path(ctx) / "Containerfile").write_text(containerfile(image, pubkey, missing))
        network = ["--network", f"ns:/run/netns/{netns}"] if eng.name == "podman" and netns else []
        run([*eng.base(), "build", *network, "--tag", ref, "--file", f"{ctx}/Containerfile", ctx],
            timeout=BUILD_TIMEOUT_S, what=f"building the sandbox image from {image}")
    return ref


def prepare_image(backend: str, rootfs: Path | None, image: str | None, key_path: Path,
                  netns: str | None, progress: Progress | None) -> str:
    """The local image a new host runs: the imported default (``rootfs``) or one built from
    ``image``."""
    eng = engine(backend)
    if image is None:
        assert rootfs is not None
        return ensure_default_image(eng, rootfs, progress)
    pubkey = Path(f"{key_path}.pub").read_text()
    return ensure_custom_image(eng, image, pubkey, netns, progress)


def free_port() -> int:
    """A loopback TCP port that nothing listens on now (Docker hosts publish SSH there)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bootable(state: HostState) -> bool:
    """Whether a halted host can boot again: its root (nspawn) or its container is there."""
    if state.backend == "nspawn":
        return Path(state.image).is_dir()
    eng = _engine_or_none(state.backend)
    return eng is not None and bool(state.container) and eng.exists(state.container)


def start(state: HostState, hdir: Path, describe: Callable[[], SandboxHost],
          dns: str | None, fresh: bool, timeout: float) -> SandboxHost:
    """Run (``fresh``) or start the host's container and wait for the SSH login."""
    eng = engine(state.backend)
    name, container = state.name, container_name(state.name)
    if fresh:
        eng.remove(container)  # a crashed earlier run may have left one of that name
        netns = state.netns if eng.name == "podman" else None
        argv = eng.run_argv(name, state.image_ref, netns=netns, port=state.port,
                            dns=dns, docker_dir=hdir / "docker")
        run(argv, what=f"starting container {container}", timeout=120)
    else:
        eng.start(container)
    state.container = container
    state.host_keys = list(_host_keys_once_made(eng, container, time.monotonic() + timeout))
    deadline = time.monotonic() + timeout
    log = hdir / "console.log"

    def alive() -> bool:
        if eng.state(container)[0]:
            return True
        log.write_text(eng.logs(container))  # wait_for_ssh quotes its tail at once
        return False

    try:
        left = max(deadline - time.monotonic(), 5)
        wait_for_ssh(describe, alive, log, left)
    except SandboxError:
        log.write_text(eng.logs(container))
        raise
    # sshd starts after every key is made: the ones that were still being written count too
    state.host_keys = list(eng.host_keys(container, eng.state(container)[1]) or state.host_keys)
    return describe()


def _host_keys_once_made(eng: Engine, container: str, deadline: float) -> tuple[str, ...]:
    """The host keys the container makes at its first boot, as soon as they are there (or
    none, once it stopped or the deadline passed)."""
    while True:
        running, pid = eng.state(container)
        keys = eng.host_keys(container, pid) if running else ()
        if keys or not running or time.monotonic() > deadline:
            return keys
        time.sleep(0.1)


def stop(state: HostState) -> None:
    eng = _engine_or_none(state.backend)
    if eng is not None and state.container:
        eng.stop(state.container)


def remove(state: HostState) -> None:
    """The container, then the image rigforge made for it if no other container uses it."""
    eng = _engine_or_none(state.backend)
    if eng is None:
        return
    eng.remove(container_name(state.name))
    if state.image_ref.startswith(IMAGE_REPO + ":") and not eng.containers_using(state.image_ref):
        eng.remove_image(state.image_ref)


def running(state: HostState) -> tuple[bool, int | None]:
    eng = _engine_or_none(state.backend)
    if eng is None or not state.container:
        return False, None
    return eng.state(state.container)


def _engine_or_none(name: str) -> Engine | None:
    try:
        return engine(name)
    except SandboxSetupError:
        return None
