"""Real sandbox hosts: boot, SSH with strict host keys, halt/boot, crash leftovers, the fence.

Needs root and the sandbox tools. The state directory (and with it the ~270 MB image) is
shared between runs: ``$RIGFORGE_SANDBOX_DIR`` or ``/var/lib/rigforge/sandbox``. Host names
carry this process's pid so that parallel runs do not collide.
"""

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from provision.errors import SandboxError, SandboxSetupError
from provision.sandbox import SandboxHost, SandboxManager
from provision.sandbox.network import (
    BRIDGE,
    NFT_TABLE,
    allocate_address,
    subnet_from_env,
    veth_name,
)
from tests.integration.conftest import Rig, rigforge

pytestmark = pytest.mark.integration

STATE_DIR = Path(os.environ.get("RIGFORGE_SANDBOX_DIR") or "/var/lib/rigforge/sandbox")
TAG = f"t{os.getpid() % 10000}"


def _down_quietly(manager: SandboxManager, name: str) -> None:
    with contextlib.suppress(SandboxSetupError):  # already gone
        manager.down(name)


def _ssh(host: SandboxHost, known_hosts: Path, command: str) -> subprocess.CompletedProcess:
    """The real OpenSSH client, trusting nothing but ``known_hosts``."""
    return subprocess.run(
        [
            "ssh", "-F", "/dev/null", "-i", str(host.key_path), "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=10", "-p", str(host.port),
            f"{host.user}@{host.address}", command,
        ],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


def _link_exists(name: str) -> bool:
    cmd = ["ip", "link", "show", "dev", name]
    return subprocess.run(cmd, capture_output=True, timeout=15).returncode == 0


def _mounted_under(path: Path) -> list[str]:
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in points if p == str(path) or p.startswith(f"{path}/")]


def _state(manager: SandboxManager, name: str) -> dict:
    return json.loads((manager.state_dir / "hosts" / name / "state.json").read_text())


@pytest.fixture(scope="module")
def manager() -> SandboxManager:
    return SandboxManager(STATE_DIR)


@pytest.fixture(scope="module")
def host_a(manager):
    name = f"{TAG}a"
    try:
        yield manager.up(name, progress=print)
    finally:
        _down_quietly(manager, name)


@pytest.fixture(scope="module")
def host_b(manager, host_a):
    """A second host, with a record of the image before it was made and of its progress."""
    image = manager.ensure_image()
    before = (_stamp(image.parent), _stamp(image))
    said: list[str] = []
    name = f"{TAG}b"
    try:
        host = manager.up(name, progress=said.append)
        yield {"host": host, "image": image, "before": before, "progress": said}
    finally:
        _down_quietly(manager, name)


def test_rig_logs_in_with_strict_host_key_checking(host_a, tmp_path):
    assert host_a.running and host_a.user == "rig" and host_a.port == 22
    assert any(k.startswith("ssh-ed25519 ") for k in host_a.host_keys)
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(host_a.known_hosts())
    proc = _ssh(host_a, known_hosts, "id -un && sudo -n true && sudo -n id -un")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["rig", "root"]


def test_systemd_is_running(manager, host_a):
    proc = manager.exec(
        host_a.name, ["systemctl", "is-system-running", "--wait"],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert proc.stdout.strip() in ("running", "degraded"), proc


def test_a_wrong_host_key_fails_verification(host_a, tmp_path):
    other = tmp_path / "other"
    keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)]
    subprocess.run(keygen, check=True, timeout=30)
    key = " ".join(other.with_suffix(".pub").read_text().split()[:2])
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"{host_a.address} {key}\n")
    proc = _ssh(host_a, known_hosts, "true")
    assert proc.returncode != 0
    assert "Host key verification failed" in proc.stderr


def test_a_second_host_reuses_the_image(manager, host_b):
    image = host_b["image"]
    assert manager.ensure_image() == image
    assert (_stamp(image.parent), _stamp(image)) == host_b["before"]
    assert not [line for line in host_b["progress"] if "building" in line]
    assert any("booting" in line for line in host_b["progress"])


def test_list_shows_both_hosts(manager, host_a, host_b):
    listed = {h.name: h for h in manager.list()}
    a, b = listed[host_a.name], listed[host_b["host"].name]
    assert a.running and b.running
    assert a.address != b.address
    assert a.leader_pid and b.leader_pid and a.leader_pid != b.leader_pid


def test_up_of_an_existing_name_raises(manager, host_a):
    with pytest.raises(SandboxError, match="already exists") as err:
        manager.up(host_a.name)
    assert f"sandbox down {host_a.name}" in err.value.hint


def test_unknown_and_invalid_names_are_usage_errors(manager):
    with pytest.raises(SandboxSetupError, match="no sandbox host"):
        manager.down(f"{TAG}-never-made")
    with pytest.raises(SandboxSetupError, match="invalid"):
        manager.up("Not_Valid")


def test_halt_and_boot_keep_the_disk(manager, host_b):
    name = host_b["host"].name
    manager.exec(name, ["sh", "-c", "echo kept > /root/marker"], check=True, timeout=30)
    halted = manager.halt(name)
    assert not halted.running and halted.leader_pid is None
    with pytest.raises(SandboxError, match="not running"):
        manager.exec(name, ["true"])
    booted = manager.boot(name)
    assert booted.running and booted.address == host_b["host"].address
    assert booted.host_keys == host_b["host"].host_keys
    proc = manager.exec(name, ["cat", "/root/marker"], capture_output=True, text=True, timeout=30)
    assert proc.stdout.strip() == "kept"


def test_the_guest_cannot_reach_other_addresses(manager, host_a):
    probe = "import socket; socket.create_connection(('192.0.2.1', 80), timeout=2)"
    proc = manager.exec(host_a.name, ["python3", "-c", probe], capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert "timed out" in proc.stderr or "unreachable" in proc.stderr


def test_the_guest_can_reach_the_mirror(manager, host_a):
    proc = manager.exec(host_a.name, ["apt-get", "update"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_down_removes_everything(manager):
    name = f"{TAG}c"
    try:
        manager.up(name)
        state = _state(manager, name)
        hdir = manager.state_dir / "hosts" / name
        assert Path("/run/netns", state["netns"]).exists() and _link_exists(state["veth"])
        assert _mounted_under(hdir)
        manager.down(name)
        assert not Path("/run/netns", state["netns"]).exists()
        assert not _link_exists(state["veth"])
        assert not _mounted_under(hdir)
        assert not hdir.exists()
        assert not any(Path(d).exists() for d in state["cgroups"])
        assert name not in {h.name for h in manager.list()}
        with pytest.raises(SandboxSetupError):
            manager.down(name)
    finally:
        _down_quietly(manager, name)


def test_a_crashed_host_is_reported_and_down_cleans_it(manager):
    name = f"{TAG}d"
    try:
        manager.up(name)
        state = _state(manager, name)
        os.kill(state["nspawn_pid"], signal.SIGKILL)  # the container's systemd lives on
        for _ in range(50):
            if not manager.get(name).running:
                break
            time.sleep(0.1)
        assert not manager.get(name).running
        with pytest.raises(SandboxError, match="not running") as err:
            manager.up(name)
        assert f"sandbox down {name}" in err.value.hint
        manager.down(name)
        assert not any(Path(d).exists() for d in state["cgroups"])
        assert not Path("/run/netns", state["netns"]).exists()
        assert not (manager.state_dir / "hosts" / name).exists()
    finally:
        _down_quietly(manager, name)


@pytest.mark.exclusive  # it predicts the next free address: no other host may take it meanwhile
def test_leftover_namespace_and_veth_do_not_block_up(manager):
    """A crashed run's namespace and veth, with no state left, are replaced by `up`."""
    name = f"{TAG}e"
    netns = f"rigforge-{name}"
    subnet = subnet_from_env(os.environ)
    addr = allocate_address(subnet, [h.address for h in manager.list()])
    veth = veth_name(subnet, addr)
    subprocess.run(["ip", "netns", "add", netns], check=True, timeout=15)
    add_veth = ["ip", "link", "add", veth, "type", "veth", "peer", "name", f"{veth}x"]
    subprocess.run(add_veth, check=True, timeout=15)
    try:
        host = manager.up(name)
        assert host.running and host.address == str(addr)
        assert not _link_exists(f"{veth}x")
    finally:
        _down_quietly(manager, name)
        for cmd in (["ip", "netns", "del", netns], ["ip", "link", "del", veth]):
            subprocess.run(cmd, capture_output=True, timeout=15)


def test_a_trixie_host_boots_halts_and_boots_again(manager, tmp_path):
    """One Debian 13 host through the CLI: its own image, its release on record, strict SSH
    through the workspace's ssh_config, its security suite through the fence, halt and boot."""
    workspace = tmp_path / "ws"
    rigforge(workspace, "init", str(workspace))
    name = f"{TAG}t"
    rig = Rig(workspace, name)
    check = "grep '^VERSION_ID=' /etc/os-release && id -un && sudo -n id -un"

    def listed() -> dict:
        hosts = json.loads(rigforge(workspace, "sandbox", "list", "--json").stdout)
        return {h["name"]: h for h in hosts}.get(name, {})

    try:
        up = rigforge(workspace, "sandbox", "up", name, "--release", "trixie", timeout=900)
        assert "Debian 13 (trixie)" in up.stdout, up.stdout
        assert f"booting {name}, Debian 13 (trixie)" in up.stderr, up.stderr
        assert Path(_state(manager, name)["image"]).parent.name.startswith("trixie-")
        entry = listed()
        assert (entry["release"], entry["running"]) == ("trixie", True), entry
        proc = rig.ssh(check, check=False)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ['VERSION_ID="13"', "rig", "root"]
        apt = rig.ssh("sudo -n apt-get update", check=False)
        assert apt.returncode == 0, apt.stdout + apt.stderr
        assert "trixie-security" in apt.stdout and "Err:" not in apt.stdout, apt.stdout

        rigforge(workspace, "sandbox", "halt", name)
        entry = listed()
        assert (entry["release"], entry["running"]) == ("trixie", False), entry
        booted = rigforge(workspace, "sandbox", "boot", name, timeout=300)
        assert "Debian 13 (trixie)" in booted.stdout, booted.stdout
        proc = rig.ssh(check, check=False)  # the same host keys: strict checking still passes
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ['VERSION_ID="13"', "rig", "root"]
    finally:
        rigforge(workspace, "sandbox", "down", name, check=False)
    assert listed() == {}
    assert not (manager.state_dir / "hosts" / name).exists()


def test_the_last_down_removes_bridge_and_firewall(manager, host_a, host_b):
    """Runs last in this file: removes this module's hosts, then checks the shared pieces:
    gone with the last host, kept while another host of the state directory runs."""
    manager.down(host_b["host"].name)
    manager.down(host_a.name)
    nft = subprocess.run(["nft", "list", "table", "inet", NFT_TABLE], capture_output=True, timeout=15)
    if manager.list():
        # Other hosts of this state directory (the test session's shared host, in CI) still
        # use the bridge and the firewall table: this down must have left them in place.
        assert _link_exists(BRIDGE) and nft.returncode == 0
        return
    assert not _link_exists(BRIDGE)
    assert nft.returncode != 0
