"""The docker sandbox backend against a private dockerd that this module starts and stops.

The daemon cannot disturb this machine or the other tests: no iptables rules, no ip_forward
change, no masquerade, its own bridge (with forwarding off, so a container reaches only this
machine), its own data root, exec root, socket and cgroup parent, all removed at the end.
Published ports work without iptables: docker-proxy serves them on 127.0.0.1.

What runs: rigforge's Engine against the daemon (import, image lookup, a plain container), the
refusals (an image without systemd or sshd, no docker binary, a daemon that does not answer),
and a Debian host from the cached root: systemd boots, ``rig`` logs in over the published port
with host keys read from inside the container; halt and boot; a host whose init exits is
reported at once; down leaves nothing behind.
"""

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from provision.sandbox import container
from provision.sandbox.container import IMAGE_REPO, LABEL, engine, lacking_capabilities
from provision.sandbox.system import tool_env
from tests.integration.conftest import Rig, rigforge
from tests.integration.standins import shell_only_root
from tests.workspaces import select_base_only

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (shutil.which("dockerd") and shutil.which("docker")),
                       reason="dockerd is not installed (apt-get install docker.io)"),
]

TAG = f"rfdk{os.getpid() % 100000}"  # bridge, cgroup parent and /run names: at most 15 chars
RIGFORGE_TABLE = "rigforge_sandbox"


@dataclass
class Dockerd:
    host: str  # the DOCKER_HOST that reaches it
    bridge: str
    gateway: str
    firewall_before: set[str]

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host, **extra}

    def docker(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60,
                              env=self.env(), check=check, stdin=subprocess.DEVNULL)
        return done.stdout.strip()

    def ours(self) -> tuple[list[str], list[str]]:
        """(rigforge's containers, rigforge's images) in this daemon."""
        names = self.docker("ps", "--all", "--filter", f"label={LABEL}", "--format", "{{.Names}}").split()
        images = [i for i in self.docker("images", "--format", "{{.Repository}}:{{.Tag}}").split()
                  if i.startswith(IMAGE_REPO)]
        return names, images


def _out(*argv: str) -> str:
    if not shutil.which(argv[0]):
        return f"({argv[0]} is not installed)"
    return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout


def _firewall() -> set[str]:
    """Every iptables rule and nft table line, without counters, but rigforge's own: other
    tests add and remove those (`sandbox down` of a last host removes its table)."""
    tables = [line.split()[1:] for line in _out("nft", "list", "tables").splitlines() if line.strip()]
    lines = {f"{tool}: {rule}" for tool in ("iptables", "ip6tables")
             for rule in _out(tool, "-S").splitlines()}
    for table in (t for t in tables if t[-1] != RIGFORGE_TABLE):
        listed = _out("nft", "-s", "list", "table", *table)
        lines |= {f"{' '.join(table)}: {line.strip()}" for line in listed.splitlines()}
    return {line for line in lines if "rigforge" not in line}


def _forwarding() -> tuple[str, str]:
    return tuple(Path(f"/proc/sys/net/ipv{v}").read_text().strip()
                 for v in ("4/ip_forward", "6/conf/all/forwarding"))


def _free_subnet() -> str:
    used = _out("ip", "-4", "route", "show", "table", "all") + _out("ip", "-4", "addr")
    return next(f"172.31.{n}" for n in range(77, 250) if f"172.31.{n}." not in used)


def _make_bridge(name: str) -> str:
    subprocess.run(["ip", "link", "del", name], capture_output=True, timeout=15)  # an earlier run's
    subnet = _free_subnet()
    for argv in (["ip", "link", "add", name, "type", "bridge"],
                 ["ip", "addr", "add", f"{subnet}.1/24", "dev", name],
                 ["ip", "link", "set", name, "up"]):
        subprocess.run(argv, check=True, capture_output=True, timeout=15)
    # packets from the containers are never forwarded: they reach this machine and nothing else
    Path(f"/proc/sys/net/ipv4/conf/{name}/forwarding").write_text("0\n")
    return subnet


def _dockerd_argv(data: Path, config: Path, sock: Path, run_dir: Path) -> list[str]:
    return [shutil.which("dockerd"), "--config-file", str(config), "--host", f"unix://{sock}",
            "--data-root", str(data), "--exec-root", str(run_dir), "--pidfile", f"{run_dir}.pid",
            "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
            "--bridge", TAG, "--cgroup-parent", f"/{TAG}"]


def _wait_for(proc: subprocess.Popen, host: str, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dockerd exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        done = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                              text=True, timeout=15, env={**os.environ, "DOCKER_HOST": host})
        if done.returncode == 0:
            return
        time.sleep(0.2)
    pytest.fail(f"dockerd did not answer within {timeout:g} s:\n{log.read_text()[-3000:]}")


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(c) for c in task.read_text().split()]
    return found


def _stop(proc: subprocess.Popen, dockerd: Dockerd) -> None:
    """Remove every container, then stop dockerd and its containerd, each by its PID."""
    ids = dockerd.docker("ps", "--all", "--quiet", check=False).split()
    if ids:
        dockerd.docker("rm", "--force", "--volumes", *ids, check=False)
    children = _children(proc.pid)
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    for pid in children:  # containerd goes with dockerd; make sure of it
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def _remove_leftovers(data: Path, sock: Path, run_dir: Path) -> None:
    for mount in reversed(Path("/proc/mounts").read_text().splitlines()):
        target = mount.split()[1]
        if target.startswith((f"{data}/", f"{run_dir}/")):
            subprocess.run(["umount", "--lazy", target], capture_output=True, timeout=15)
    for path in (data, run_dir):
        shutil.rmtree(path, ignore_errors=True)
    for path in (sock, Path(f"{run_dir}.pid")):
        path.unlink(missing_ok=True)
    subprocess.run(["ip", "link", "del", TAG], capture_output=True, timeout=15)
    for group in Path("/sys/fs/cgroup").glob(f"*/{TAG}"):
        for top, _, _ in os.walk(group, topdown=False):  # a cgroup goes after its children
            with contextlib.suppress(OSError):  # still has a process: the last check says so
                os.rmdir(top)


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory):
    """A private dockerd on /run/<TAG>.sock, stopped and removed with all it made at the end."""
    base = tmp_path_factory.mktemp("dockerd")
    data, config, log = base / "data", base / "daemon.json", base / "dockerd.log"
    sock, run_dir = Path(f"/run/{TAG}.sock"), Path(f"/run/{TAG}")
    config.write_text("{}\n")  # never this machine's /etc/docker/daemon.json
    before, forwarding = _firewall(), _forwarding()
    _remove_leftovers(data, sock, run_dir)
    subnet = _make_bridge(TAG)
    with open(log, "wb") as out:
        proc = subprocess.Popen(_dockerd_argv(data, config, sock, run_dir), stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    daemon = Dockerd(f"unix://{sock}", TAG, f"{subnet}.1", before)
    try:
        _wait_for(proc, daemon.host, log)
        assert _forwarding() == forwarding, "dockerd changed IP forwarding"
        yield daemon
    finally:
        _stop(proc, daemon)
        _remove_leftovers(data, sock, run_dir)
    assert not Path(f"/sys/class/net/{TAG}").exists() and not run_dir.exists() and not data.exists()
    assert not list(Path("/sys/fs/cgroup").glob(f"*/{TAG}"))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    ws = tmp_path_factory.mktemp("docker") / "ws"
    rigforge(ws, "init", str(ws))
    select_base_only(ws)
    return ws


@pytest.fixture
def tiny_root(tmp_path) -> Path:
    """A root filesystem with only a shell: enough for a plain container, not for a host."""
    return shell_only_root(tmp_path / "root")


def _listed(workspace: Path, env: dict | None = None) -> dict:
    hosts = json.loads(rigforge(workspace, "sandbox", "list", "--json", env=env).stdout)
    return {h["name"]: h for h in hosts}


def test_the_engine_imports_a_root_and_runs_a_plain_container(dockerd, tiny_root, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", dockerd.host)
    monkeypatch.setattr(container, "_WORKS", {})
    eng = engine("docker")  # `docker info` answers
    assert eng.lacking_caps == lacking_capabilities()
    ref = f"{IMAGE_REPO}:test-tiny"
    assert not eng.image_exists(ref)
    eng.import_rootfs(tiny_root, ref)
    assert eng.image_exists(ref)
    label = dockerd.docker("image", "inspect", "--format", f'{{{{index .Config.Labels "{LABEL}"}}}}', ref)
    assert label == "image"
    # a real `docker run --rm --network none ... /bin/sh -c ...` through rigforge's own argv
    assert eng.missing_in_image(ref) == ["systemd", "sshd", "sudo", "python3", "apt-get"]
    assert eng.missing_in_image("localhost/rf-not-here:1") is None
    eng.remove_image(ref)
    assert not eng.image_exists(ref) and dockerd.ours() == ([], [])


def test_an_image_without_systemd_or_sshd_is_refused_and_nothing_is_left(dockerd, workspace, tiny_root):
    ref = "localhost/rf-test-nosystemd:1"
    tar = subprocess.Popen(["tar", "-C", str(tiny_root), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(["docker", "import", "-", ref], stdin=tar.stdout, env=dockerd.env(), check=True,
                   capture_output=True, timeout=60)
    tar.wait()
    try:
        done = rigforge(workspace, "sandbox", "up", "dknosd", "--backend", "docker", "--image", ref,
                        check=False, env=dockerd.env())
    finally:
        dockerd.docker("rmi", "--force", ref)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"image {ref} has no systemd, sshd, sudo, python3, and no apt-get to add them" in done.stderr
    assert "dknosd" not in _listed(workspace)
    assert dockerd.ours() == ([], [])


@pytest.fixture(scope="module")
def docker_host(dockerd, workspace):
    name = f"dk{os.getpid() % 100000}"
    try:
        up = rigforge(workspace, "sandbox", "up", name, "--backend", "docker", timeout=600, env=dockerd.env())
        yield Rig(workspace, name), up
    finally:
        rigforge(workspace, "sandbox", "down", name, check=False, env=dockerd.env())


def test_a_debian_host_boots_systemd_and_logs_in_with_its_own_host_keys(dockerd, docker_host):
    rig, up = docker_host
    assert "backend: docker (chosen with --backend)" in up.stderr
    assert "recorded host key ssh-ed25519" in up.stdout
    # the workspace's ssh_config checks host keys strictly: a login proves the recorded keys
    done = rig.ssh("systemctl is-system-running; sudo -n true && echo sudo-ok; hostname")
    assert done.stdout.split() == ["running", "sudo-ok", rig.name]
    listed = _listed(rig.workspace, dockerd.env())[rig.name]
    assert (listed["backend"], listed["address"], listed["running"]) == ("docker", "127.0.0.1", True)
    box = f"rigforge-{rig.name}"
    published = dockerd.docker("port", box, "22").splitlines()
    assert published and all(p.startswith("127.0.0.1:") for p in published)  # on loopback only
    config = "{{.HostConfig.Privileged}} {{.HostConfig.CapDrop}}"
    privileged, dropped = dockerd.docker("inspect", "--format", config, box).split(" ", 1)
    assert privileged == str(not lacking_capabilities()).lower()
    assert all(cap in dropped for cap in lacking_capabilities())
    # its address is routed to this machine, never beyond it
    ip = dockerd.docker("inspect", "--format", "{{.NetworkSettings.IPAddress}}", box)
    assert ip.startswith(dockerd.gateway.rsplit(".", 1)[0] + ".")
    beyond = subprocess.run(["ip", "route", "get", "192.0.2.1", "from", ip, "iif", dockerd.bridge],
                            capture_output=True, text=True, timeout=15)
    assert beyond.returncode != 0, beyond.stdout


def test_halt_and_boot_keep_the_disk_and_the_host_keys(dockerd, docker_host):
    rig, _ = docker_host
    keys = (rig.workspace / "known_hosts").read_text()
    rig.ssh("sudo touch /var/lib/rf-kept")
    rigforge(rig.workspace, "sandbox", "halt", rig.name, env=dockerd.env())
    assert _listed(rig.workspace, dockerd.env())[rig.name]["running"] is False
    rigforge(rig.workspace, "sandbox", "boot", rig.name, timeout=300, env=dockerd.env())
    assert rig.ssh("test -e /var/lib/rf-kept && echo kept").stdout.strip() == "kept"
    assert (rig.workspace / "known_hosts").read_text() == keys


def test_down_removes_the_container_its_image_and_its_record(dockerd, docker_host):
    rig, _ = docker_host
    rigforge(rig.workspace, "sandbox", "down", rig.name, env=dockerd.env())
    assert dockerd.ours() == ([], [])
    assert rig.name not in _listed(rig.workspace)


def test_a_host_whose_init_exits_is_reported_at_once_and_down_removes_it(dockerd, docker_host, tiny_root,
                                                                        monkeypatch):
    rig, up = docker_host
    ref = re.search(rf"from ({IMAGE_REPO}:\S+)", up.stderr).group(1)  # the default image's tag
    (tiny_root / "sbin").mkdir()
    (tiny_root / "sbin" / "init").write_text("#!/bin/sh\necho 'rf-test: this init gives up'\nexit 3\n")
    (tiny_root / "sbin" / "init").chmod(0o755)
    monkeypatch.setenv("DOCKER_HOST", dockerd.host)
    container.Engine("docker", "docker").import_rootfs(tiny_root, ref)  # `up` takes it as imported
    name = f"dkx{os.getpid() % 100000}"
    done = rigforge(rig.workspace, "sandbox", "up", name, "--backend", "docker", check=False,
                    env=dockerd.env())
    try:
        assert done.returncode == 1, done.stdout + done.stderr
        # seen when it stops, not after the boot timeout: the message says which
        assert f"{name} stopped while booting" in done.stderr, done.stderr
        assert "rf-test: this init gives up" in done.stderr
        log = Path(re.search(r"see the console log ([^\s;]+)", done.stderr).group(1))
        assert "rf-test: this init gives up" in log.read_text()
    finally:
        rigforge(rig.workspace, "sandbox", "down", name, env=dockerd.env())
    containers, images = dockerd.ours()
    assert f"rigforge-{name}" not in containers and ref not in images and name not in _listed(rig.workspace)


def _docker_binaries() -> list[str]:
    """Every docker that rigforge could find (it searches the system directories too)."""
    dirs = tool_env()["PATH"].split(":")
    return sorted({os.path.realpath(p) for d in dirs if os.access(p := os.path.join(d, "docker"), os.X_OK)})


def test_no_docker_binary_is_exit_2_with_the_install_command(workspace):
    # PATH alone cannot hide it; /dev/null over each binary, in a mount namespace of its own, can
    hide = ('n=$1; shift; while [ "$n" -gt 0 ]; do mount --bind /dev/null "$1" || exit 97; '
            'shift; n=$((n-1)); done; exec "$@"')
    binaries = _docker_binaries()
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", hide, "hide", str(len(binaries)),
         *binaries, sys.executable, "-m", "provision", "--workspace", str(workspace),
         "sandbox", "up", "dkabsent", "--backend", "docker"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "the docker backend needs `docker`, which is not installed" in done.stderr
    assert "apt-get install docker.io" in done.stderr
    assert "dkabsent" not in _listed(workspace)


def test_a_dockerd_that_does_not_answer_is_exit_2_naming_how_to_start_it(workspace):
    env = {**os.environ, "DOCKER_HOST": f"unix:///run/{TAG}-nobody.sock"}
    done = rigforge(workspace, "sandbox", "up", "dkdead", "--backend", "docker", check=False, env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "docker info` fails: docker is installed but does not work here" in done.stderr
    assert "systemctl start docker" in done.stderr and f"/run/{TAG}-nobody.sock" in done.stderr
    assert "dkdead" not in _listed(workspace)


def test_the_private_dockerd_changed_no_firewall_rule_and_no_forwarding(dockerd):
    # after it ran containers and published a port: still the machine's own rules only
    gained = _firewall() - dockerd.firewall_before
    assert gained == set()  # Docker's own setup would add DOCKER chains and a FORWARD policy DROP
    if "iptables: -P FORWARD ACCEPT" in dockerd.firewall_before:
        assert "iptables: -P FORWARD ACCEPT" in _firewall()
    assert Path(f"/proc/sys/net/ipv4/conf/{dockerd.bridge}/forwarding").read_text().strip() == "0"
