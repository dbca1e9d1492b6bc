"""A whole rig as a new user gets it: `rigforge init`, `host add`, `provision --yes`, nothing
looked up by hand.

The host is a fresh sandbox host added by address like any rig (not in group ``sandbox``, so
no sandbox profile): its components are ``auto``, and with no NVIDIA GPU on its PCI bus that is
base, docker, conda and ollama. What these machines cannot download is replaced, as a user
with a local mirror would, in ``group_vars/all.yml``: Miniforge and Ollama come from STAND-IN
releases (tests/standins) served on the sandbox bridge, their checksums pinned the way
`rigforge pins update` writes them; Docker comes from Debian's docker.io (Docker's repository
is out of reach). Everything else is the workspace exactly as `rigforge init` wrote it.
"""

import json
import re
from pathlib import Path

import pytest
import yaml

from provision.inventory import Inventory
from tests.conftest import snapshot
from tests.integration.conftest import new_rig, rigforge
from tests.standins.apt_repo import RepoServer
from tests.standins.miniforge import build_installer
from tests.standins.ollama import build_tarball

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OLLAMA, MINIFORGE, CONDA = "0.33.3", "26.3.2-3", "26.3.2"  # the defaults' releases
CPU_STACK = ["base", "docker", "conda", "ollama"]


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    """A fresh sandbox host (made in a workspace of its own) and a new user's workspace that
    knows it only by `host add`."""
    rigs = new_rig(tmp_path_factory, "wr")
    made = next(rigs)
    try:
        host = Inventory(made.workspace / "inventory" / "hosts.yml").get(made.name)
        ws = tmp_path_factory.mktemp("whole-rig") / "ws"
        rigforge(ws, "init", str(ws))
        assert yaml.safe_load((ws / "inventory" / "group_vars" / "all.yml").read_text()) == {
            "rigforge_components": "auto"}
        rigforge(ws, "host", "add", host.name, "--address", host.address, "--user", host.user,
                 "--port", str(host.port), "--key", host.key, "--accept-host-key")
        www = tmp_path_factory.mktemp("whole-rig-www")
        tarball, ollama_sha = build_tarball(www / "ollama", OLLAMA)
        installer, conda_sha = build_installer(www / "miniforge", MINIFORGE, CONDA)
        with RepoServer(www) as server:
            yield ws, host.name, {
                "docker_source": "distro",
                "ollama_url": f"{server.url}ollama/{tarball.name}",
                "ollama_sha256_pins": {OLLAMA: {"amd64": ollama_sha}},
                "conda_installer_url": f"{server.url}miniforge/{installer.name}",
                "conda_installer_sha256_pins": {MINIFORGE: {"x86_64": conda_sha}},
            }
    finally:
        rigs.close()


def _mirror(ws: Path, settings: dict) -> None:
    path = ws / "inventory" / "group_vars" / "all.yml"
    path.write_text(path.read_text() + "\n# Local mirrors (STAND-INS in this test).\n"
                    + yaml.safe_dump(settings, sort_keys=False))


def test_a_gpu_component_on_a_host_without_a_gpu_is_refused_and_nothing_runs(rig):
    ws, name, settings = rig
    _mirror(ws, settings)
    before = snapshot(ws)
    proc = rigforge(ws, "provision", "--yes", "--components", "nvidia_driver", check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert (f"{name} does not select nvidia_driver (its components: base, docker, conda, ollama)"
            in proc.stderr)
    assert "add it to rigforge_components" in proc.stderr
    assert {k: v for k, v in snapshot(ws).items() if not k.startswith(".rigforge")} == {
        k: v for k, v in before.items() if not k.startswith(".rigforge")}


def test_provision_chooses_the_cpu_stack_from_the_host_and_installs_it(rig):
    ws, name, _ = rig
    proc = rigforge(ws, "provision", "--yes", "--json", timeout=1800, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # Chosen and said before anything ran.
    assert re.search(rf"^{name}: components base, docker, conda, ollama \(auto: no NVIDIA GPU",
                     proc.stderr, re.M)
    report = json.loads(proc.stdout)
    assert report["components"][name]["components"] == CPU_STACK
    assert "no NVIDIA GPU on the PCI bus" in report["components"][name]["reason"]
    (entry,) = report["report"]
    assert entry["status"] == "changed" and entry["errors"] == []
    assert set(entry["has"]) == set(CPU_STACK), entry["has"]
    assert "distro" in entry["has"]["docker"]
    assert OLLAMA in entry["has"]["ollama"] and "127.0.0.1" in entry["has"]["ollama"]


def test_the_rig_verifies(rig):
    ws, name, _ = rig
    proc = rigforge(ws, "verify", "--json", check=False, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    checks = [c for c in json.loads(proc.stdout)["checks"] if c["host"] == name]
    assert {c["component"] for c in checks} == set(CPU_STACK), checks
    assert all(c["outcome"] in ("passed", "skipped") for c in checks), checks
