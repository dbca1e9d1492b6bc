"""The podman sandbox backend on this machine: a systemd container built by rigforge from
the cached Debian 12 root, provisioned, checked for idempotence and verified by `rigforge ci`;
halt, boot and down; and the fault cases (a container killed under a run, an image without
systemd, an engine that does not answer). Every test leaves no container, image or namespace.
"""

import json
import os
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from provision.sandbox.container import IMAGE_REPO, LABEL
from provision.sandbox.network import netns_name
from tests.integration.conftest import Rig, rigforge
from tests.integration.faults import host_entry
from tests.integration.standins import shell_only_root
from tests.workspaces import select_base_only

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("podman"), reason="podman is not installed"),
]

PODMAN = ["podman", "--cgroup-manager", "cgroupfs"]
if not Path("/sys/fs/cgroup/cgroup.controllers").exists():
    PODMAN += ["--runtime", "runc"]


def _podman(*args: str) -> str:
    return subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=60, check=True).stdout


def _ours() -> tuple[list[str], list[str]]:
    """(rigforge's containers, rigforge's images) in podman's store."""
    names = _podman("ps", "--all", "--filter", f"label={LABEL}", "--format", "{{.Names}}").split()
    images = [i for i in _podman("images", "--format", "{{.Repository}}:{{.Tag}}").split()
              if i.startswith(IMAGE_REPO)]
    return names, images


def _netns() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=15).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    ws = tmp_path_factory.mktemp("podman") / "ws"
    rigforge(ws, "init", str(ws))
    select_base_only(ws)
    return ws


@pytest.fixture(scope="module")
def pod(workspace):
    name = f"pm{os.getpid() % 100000}"
    try:
        up = rigforge(workspace, "sandbox", "up", name, "--backend", "podman", timeout=600)
        yield Rig(workspace, name), up
    finally:
        rigforge(workspace, "sandbox", "down", name, check=False)


def _listed(workspace: Path, name: str) -> dict:
    hosts = json.loads(rigforge(workspace, "sandbox", "list", "--json").stdout)
    return next(h for h in hosts if h["name"] == name)


def test_up_says_the_backend_and_the_host_logs_in_with_its_own_host_keys(pod):
    rig, up = pod
    assert "backend: podman (chosen with --backend)" in up.stderr
    assert "recorded host key ssh-ed25519" in up.stdout
    # the workspace's ssh_config checks host keys strictly: a login proves the recorded keys
    done = rig.ssh("systemctl is-system-running; sudo -n true && echo sudo-ok; hostname")
    assert done.stdout.split() == ["running", "sudo-ok", rig.name]
    assert "unable to resolve host" not in done.stderr
    assert _listed(rig.workspace, rig.name)["backend"] == "podman"


def test_halt_and_boot_keep_the_disk_and_the_host_keys(pod):
    rig, _ = pod
    keys = (rig.workspace / "known_hosts").read_text()
    rig.ssh("sudo touch /var/lib/rf-kept")
    rigforge(rig.workspace, "sandbox", "halt", rig.name)
    assert _listed(rig.workspace, rig.name)["running"] is False
    assert rig.ssh("true", check=False, timeout=60).returncode != 0
    rigforge(rig.workspace, "sandbox", "boot", rig.name, timeout=300)
    assert rig.ssh("test -e /var/lib/rf-kept && echo kept").stdout.strip() == "kept"
    assert (rig.workspace / "known_hosts").read_text() == keys


@pytest.mark.exclusive  # the DROP policy holds for every host on this machine while it runs
@pytest.mark.skipif(not shutil.which("iptables"), reason="iptables is not installed")
def test_a_forward_policy_of_drop_as_docker_sets_it_still_lets_the_host_reach_its_mirror(pod):
    """GitHub's runners run Docker, which sets iptables' FORWARD policy to DROP: the host's
    boot lets the bridge through it (the nftables fence still decides what may leave)."""
    rig, _ = pod
    rigforge(rig.workspace, "sandbox", "halt", rig.name)
    subprocess.run(["iptables", "-P", "FORWARD", "DROP"], check=True, timeout=30)
    try:
        rigforge(rig.workspace, "sandbox", "boot", rig.name, timeout=300)
        done = rig.ssh("sudo apt-get -o Acquire::Retries=0 update", check=False)
        assert done.returncode == 0 and "Err:" not in done.stdout, done.stdout + done.stderr
    finally:
        subprocess.run(["iptables", "-P", "FORWARD", "ACCEPT"], check=True, timeout=30)


def test_a_container_killed_under_a_run_is_reported_unreachable(pod):
    rig, _ = pod
    _podman("kill", f"rigforge-{rig.name}")
    assert _listed(rig.workspace, rig.name)["running"] is False
    done = rigforge(rig.workspace, "provision", "--yes", "--json", "--components", "base", check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    entry = host_entry(json.loads(done.stdout), rig.name)
    assert entry["status"] == "unreachable", entry
    rigforge(rig.workspace, "sandbox", "boot", rig.name, timeout=300)


def test_an_image_without_systemd_is_refused_and_nothing_is_made(workspace, tmp_path):
    root = shell_only_root(tmp_path / "root")
    ref = "localhost/rf-test-nosystemd:1"
    tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run([*PODMAN, "import", "-", ref], stdin=tar.stdout, check=True, capture_output=True,
                   timeout=60)
    tar.wait()
    try:
        done = rigforge(workspace, "sandbox", "up", "nosd", "--backend", "podman", "--image", ref,
                        check=False)
    finally:
        _podman("rmi", "--force", ref)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"image {ref} has no systemd, sshd, sudo, python3, and no apt-get" in done.stderr
    assert "nosd" not in json.dumps(json.loads(rigforge(workspace, "sandbox", "list", "--json").stdout))
    assert "network:" not in done.stderr  # refused before the host's network was made


def test_an_image_without_sshd_and_sudo_gets_them_in_a_build_step_and_goes_with_down(workspace, pod):
    """--image REF with apt: what it lacks is installed from the archives its own apt sources
    name, through the host's firewall, and the host logs in like any other."""
    default = next(i for i in _ours()[1] if not i.split(":")[-1].startswith("custom-"))
    ref = "localhost/rf-test-nossh:1"
    with tempfile.TemporaryDirectory() as ctx:
        Path(ctx, "Containerfile").write_text(
            f"FROM {default}\nRUN SUDO_FORCE_REMOVE=yes dpkg --purge openssh-server sudo"
            " && rm -rf /etc/ssh /etc/sudoers.d\n")
        _podman("build", "--network", "none", "--tag", ref, ctx)
    name = f"im{os.getpid() % 100000}"
    try:
        up = rigforge(workspace, "sandbox", "up", name, "--backend", "podman", "--image", ref, timeout=900)
        assert "(adding sshd, sudo)" in up.stderr, up.stderr
        done = Rig(workspace, name).ssh("sudo -n true && echo sudo-ok; systemctl is-system-running")
        assert done.stdout.split()[0] == "sudo-ok", done.stdout + done.stderr
        built = [i for i in _ours()[1] if i.split(":")[-1].startswith("custom-")]
        assert len(built) == 1
    finally:
        rigforge(workspace, "sandbox", "down", name, check=False)
        _podman("rmi", "--force", ref)
    assert not [i for i in _ours()[1] if i.split(":")[-1].startswith("custom-")]
    assert f"rigforge-{name}" not in _ours()[0]


def test_an_engine_that_does_not_work_is_exit_2_with_the_fix(workspace):
    done = rigforge(workspace, "sandbox", "up", "dk1", "--backend", "docker", check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert ("docker" in done.stderr) and ("apt-get install docker.io" in done.stderr
                                          or "systemctl start docker" in done.stderr)


def test_ci_with_podman_proves_base_and_docker_and_leaves_nothing_behind(tmp_path, pod):
    ws = tmp_path / "ws"
    rigforge(ws, "init", str(ws))
    names_before, images_before = _ours()
    junit = tmp_path / "ci.xml"
    done = rigforge(ws, "ci", "--backend", "podman", "--components", "base,docker", "--junit", str(junit),
                    timeout=1800)
    assert "backend: podman" in done.stderr and "idempotence  ok" in done.stdout
    root = ET.fromstring(junit.read_text())
    steps = {c.get("name"): c for c in root.find("testsuite").findall("testcase")}
    assert list(steps) == ["provision", "idempotence", "verify"]
    assert all(c.find("failure") is None for c in steps.values())
    checks = [c.get("name") for s in root.findall("testsuite")[1:] for c in s.iter("testcase")]
    assert any(n.startswith("test_docker_daemon_answers") for n in checks)
    assert _ours() == (names_before, images_before)  # the module's own host is still up


def test_down_removes_the_container_its_image_and_its_namespace(pod):
    rig, _ = pod
    rigforge(rig.workspace, "sandbox", "down", rig.name)
    names, images = _ours()
    assert f"rigforge-{rig.name}" not in names
    assert not images or names, "the image goes with the last container made from it"
    assert netns_name(rig.name) not in _netns()
