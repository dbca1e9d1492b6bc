"""Roles cuda and cudnn on real sandbox hosts (Debian 12), with plain ansible-playbook.

* On the session's shared host: the refusals (before any change), then Debian's REAL
  nvidia-cuda-toolkit 11.8 from the Debian archive (about 2 GB to download, 7 GB installed,
  so once, with every assertion about it in one test).
* On a host of its own, in a workspace of its own: cuda-repo CUDA 12.8 and cuDNN 9 from the
  STAND-IN for NVIDIA's CUDA apt repository (not NVIDIA's packages; tests/standins/apt_repo.py),
  served on the sandbox bridge.

The tests in each group run in file order.
"""

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.conftest import Rig, new_rig
from tests.integration.standins import CudaStandin, shared_cuda_standin

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PLAYBOOKS = ("cuda.yml", "cudnn.yml")
HEADER = "/usr/include/x86_64-linux-gnu/cudnn_version_v9.h"

Play = Callable[..., tuple[subprocess.CompletedProcess, int | None]]


def _player(rig: Rig) -> Play:
    """``play(playbook, *args, **extra_vars)`` -> (process, changed count of the host)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "RIGFORGE_"))}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    extra = rig.workspace / ".rigforge" / f"cuda_test_vars_{rig.name}.json"

    def play(playbook: str, *args: str, **extra_vars):
        extra.write_text(json.dumps(extra_vars))
        proc = subprocess.run(
            ["ansible-playbook", f"playbooks/{playbook}", "--limit", rig.name, "-e", f"@{extra}", *args],
            cwd=rig.workspace, env=env, capture_output=True, text=True, timeout=1500, check=False,
        )
        recap = re.search(rf"^{re.escape(rig.name)}\s+: ok=\d+\s+changed=(\d+)", proc.stdout, re.M)
        return proc, int(recap.group(1)) if recap else None

    return play


def _ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]


def _state(rig: Rig) -> str:
    """What the roles could change, as one comparable text."""
    return rig.ssh(
        "dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}\\n'; ls -l /etc/apt/sources.list.d/"
        " /etc/profile.d/ /usr/share/keyrings/ /usr/local/; update-alternatives --query cuda 2>&1",
        check=False,
    ).stdout


# --- the session's host: refusals, then the distro toolkit ----------------------------------------

@pytest.fixture(scope="module")
def distro_play(rig) -> Play:
    play = _player(rig)
    _ok(play("base.yml", rigforge_components=["base"])[0])
    return play


@pytest.mark.parametrize(("playbook", "extra", "needles"), [
    pytest.param("cudnn.yml", {"cudnn_source": "distro"}, [
        "cudnn_source distro cannot install cuDNN: Debian's nvidia-cudnn (non-free; cuDNN 8.5 for CUDA 11.7)"
        " is only an installer script that downloads cuDNN from NVIDIA while the package is installed",
        "answered non-interactively it installs nothing",
        "Use cudnn_source: cuda-repo (or auto), which installs cudnn9-cuda-11",
    ], id="cudnn-distro"),
    pytest.param("cuda.yml", {"cuda_source": "distro", "cuda_version": "12.8"}, [
        "cuda_source distro gives CUDA 11.8 on Debian 12 (its nvidia-cuda-toolkit), not CUDA 12.8.",
        "Use cuda_source: cuda-repo for CUDA 12.8",
    ], id="cuda-distro-12.8"),
    pytest.param("cuda.yml", {"cuda_version": "12.8"}, [
        "cuda_source distro gives CUDA 11.8 on Debian 12",
    ], id="cuda-auto-12.8"),
    pytest.param("cuda.yml", {"cuda_source": "cuda-repo", "nvidia_driver_branch": "535",
                              "rigforge_components": ["base", "nvidia_driver", "cuda"]}, [
        "CUDA 12.8 needs driver >= 570; nvidia_driver_branch is 535. Use 580 or CUDA 12.2.",
    ], id="cuda-driver-too-old"),
    pytest.param("cuda.yml", {"cuda_version": 12}, [
        'cuda_version must be auto or a quoted "X.Y" CUDA release that rigforge knows (11.0, 11.1,',
        "got 12.",
    ], id="cuda-version-malformed"),
    pytest.param("cuda.yml", {"cuda_source": "cuda-repo", "cuda_version": "12.7"}, [
        "CUDA release that rigforge knows", "12.6, 12.8,", "got 12.7.",
    ], id="cuda-version-unknown"),
])
def test_refusals_come_before_any_change(rig, distro_play, playbook, extra, needles):
    component = playbook.removesuffix(".yml")
    before = _state(rig)
    proc, _ = distro_play(playbook, **{"rigforge_components": ["base", component], **extra})
    assert proc.returncode == 2, proc.stdout[-4000:]
    for needle in needles:
        assert needle in proc.stdout, proc.stdout[-4000:]
    assert "changed=0" in proc.stdout
    assert _state(rig) == before


def test_distro_toolkit_on_debian(rig, distro_play):
    """The REAL nvidia-cuda-toolkit 11.8 from Debian's archive: install, use, converge."""
    proc, changed = distro_play("cuda.yml", rigforge_components=["base", "cuda"])
    _ok(proc)
    assert changed and changed > 0
    assert "Cuda compilation tools, release 11.8, V11.8.89" in proc.stdout  # reported by the role

    assert "release 11.8," in rig.ssh("/usr/bin/nvcc --version").stdout
    login = rig.ssh("bash -lc 'echo $CUDA_HOME; command -v nvcc'").stdout.split()
    assert login == ["/usr", "/usr/bin/nvcc"]
    assert rig.ssh("stat -c '%a %U' /etc/profile.d/cuda.sh").stdout.split() == ["644", "root"]
    assert "There is no /usr/local/cuda" in rig.ssh("cat /etc/profile.d/cuda.sh").stdout
    assert rig.ssh("test ! -e /usr/local/cuda", check=False).returncode == 0
    # Without the Recommends (docs, profilers), and with base's compilers, nvcc still compiles.
    packages = rig.ssh("dpkg-query -W -f='${Package} ${db:Status-Abbrev}\\n'").stdout
    assert re.search(r"^nvidia-cuda-toolkit ii", packages, re.M)
    recommends = r"^(nvidia-cuda-toolkit-doc|nsight-systems|nvidia-visual-profiler) ii"
    assert not re.search(recommends, packages, re.M)
    assert not re.search(r"^cuda-toolkit-", packages, re.M)
    rig.ssh("printf '__global__ void k(){}\\nint main(){k<<<1,1>>>();return 0;}\\n' > /tmp/rf.cu"
            " && nvcc -o /tmp/rf /tmp/rf.cu && test -x /tmp/rf")

    proc, changed = distro_play("cuda.yml", rigforge_components=["base", "cuda"])
    _ok(proc)
    assert changed == 0, proc.stdout[-4000:]
    proc, changed = distro_play("cuda.yml", "--check", "--diff", rigforge_components=["base", "cuda"])
    _ok(proc)
    assert changed == 0, proc.stdout[-4000:]


# --- a host of its own: cuda-repo against the stand-in ---------------------------------------------

@pytest.fixture(scope="module")
def standin(rig) -> CudaStandin:
    """The process-wide stand-in (served on the bridge, which exists while ``rig`` is up)."""
    return shared_cuda_standin()


@pytest.fixture(scope="module")
def repo_rig(tmp_path_factory, rig):
    """A host of its own (``rig`` first: the stand-in is served on its bridge)."""
    yield from new_rig(tmp_path_factory, "cr")


@pytest.fixture(scope="module")
def repo_play(repo_rig, standin) -> Callable[..., tuple[subprocess.CompletedProcess, int | None]]:
    play = _player(repo_rig)
    _ok(play("base.yml", rigforge_components=["base"])[0])

    def run(playbook: str, *args: str, **extra):
        return play(playbook, *args, **{
            "rigforge_components": ["base", "cuda", "cudnn"], "cuda_source": "cuda-repo",
            "cuda_version": "12.8", **standin.role_vars, **extra,
        })

    return run


def test_check_mode_on_a_host_without_the_repository(repo_rig, repo_play):
    before = _state(repo_rig)
    for playbook in PLAYBOOKS:
        proc, changed = repo_play(playbook, "--check", "--diff")
        _ok(proc)
        assert changed and changed > 0
        assert "would be installed from NVIDIA's CUDA repository once it is configured" in proc.stdout
    assert _state(repo_rig) == before


def test_cuda_repo_toolkit_and_cudnn(repo_rig, repo_play):
    output = {}
    for playbook in PLAYBOOKS:
        proc, changed = repo_play(playbook)
        _ok(proc)
        assert changed and changed > 0
        output[playbook] = proc.stdout
    assert "Cuda compilation tools, release 12.8, V12.8.93" in output["cuda.yml"]
    assert f"cuDNN 9.26.1 for CUDA 12 ({HEADER}, libcudnn9-dev-cuda-12)" in output["cudnn.yml"]

    packages = repo_rig.ssh("dpkg-query -W -f='${Package} ${db:Status-Abbrev}\\n'").stdout
    for package in ("cuda-keyring", "cuda-toolkit-12-8", "cudnn9-cuda-12", "libcudnn9-dev-cuda-12"):
        assert re.search(rf"^{package} ii", packages, re.M), package
    # Never the driver: no bare "cuda" metapackage, no cuda-drivers, no other cuDNN build.
    for package in ("cuda", "cuda-drivers", "cuda-drivers-570", "nvidia-open", "cudnn9-cuda-11"):
        assert not re.search(rf"^{package} ii", packages, re.M), package

    assert repo_rig.ssh("readlink -f /usr/local/cuda").stdout.strip() == "/usr/local/cuda-12.8"
    query = repo_rig.ssh("update-alternatives --query cuda").stdout
    assert "Value: /usr/local/cuda-12.8" in query and "Status: manual" in query
    login = repo_rig.ssh("bash -lc 'echo $CUDA_HOME; command -v nvcc; nvcc --version'").stdout
    assert login.startswith("/usr/local/cuda-12.8\n/usr/local/cuda-12.8/bin/nvcc\n")
    assert "release 12.8, V12.8.93" in login

    header = repo_rig.ssh(f"grep -E '^#define CUDNN_MAJOR' {HEADER}").stdout
    assert header.split() == ["#define", "CUDNN_MAJOR", "9"]
    owner = repo_rig.ssh(f"dpkg-query -S {HEADER}").stdout
    assert owner.startswith("libcudnn9-dev-cuda-12:")


def test_cuda_repo_second_run_and_check_mode_change_nothing(repo_rig, repo_play):
    for playbook in PLAYBOOKS:
        for args in ((), ("--check", "--diff")):
            proc, changed = repo_play(playbook, *args)
            _ok(proc)
            assert changed == 0, (playbook, args, proc.stdout[-4000:])


def test_a_newer_toolkit_beside_it_does_not_move_the_pinned_link(repo_rig, repo_play):
    """cuda-toolkit-12-9 registers a higher alternatives priority; the pin holds until asked."""
    repo_rig.ssh("sudo -n DEBIAN_FRONTEND=noninteractive apt-get install -y -q cuda-toolkit-12-9")
    assert repo_rig.ssh("readlink -f /usr/local/cuda").stdout.strip() == "/usr/local/cuda-12.8"
    proc, changed = repo_play("cuda.yml")
    _ok(proc)
    assert changed == 0, proc.stdout[-4000:]

    proc, changed = repo_play("cuda.yml", cuda_version="12.9")
    _ok(proc)
    assert changed and changed > 0
    assert repo_rig.ssh("readlink -f /usr/local/cuda").stdout.strip() == "/usr/local/cuda-12.9"
    assert "release 12.9," in repo_rig.ssh("bash -lc 'nvcc --version'").stdout
    assert repo_play("cuda.yml", cuda_version="12.9")[1] == 0
    proc, changed = repo_play("cudnn.yml", cuda_version="12.9")
    _ok(proc)
    assert changed == 0, "cuDNN 9 for CUDA 12 serves 12.9 as well"
