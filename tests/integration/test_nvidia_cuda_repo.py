"""Role nvidia_cuda_repo on a real sandbox host, against the STAND-IN for NVIDIA's CUDA apt
repository (not NVIDIA's packages) served from this machine on the sandbox bridge.

The tests share one host and run in file order: start clean, refuse a missing or wrong
keyring checksum before installing anything, configure, converge (no change, no download),
check mode, install and switch driver branches from the stand-in, refuse a repository signed
by another key, remove, check mode on the clean host. Other test modules may share the host,
so the checks look only at what this role and these packages own.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import new_rig
from tests.integration.standins import CudaStandin, shared_cuda_standin
from tests.standins.apt_repo import KEYRING_DEB, RepoServer, build_deb, build_flat_repo, cuda_repo_packages

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    """A host of its own: the stand-in's pinning packages would block Debian's driver on a shared host."""
    yield from new_rig(tmp_path_factory, "nc")

ROLE = Path(__file__).resolve().parents[2] / "roles" / "nvidia_cuda_repo"
SOURCE = "/etc/apt/sources.list.d/nvidia-cuda.sources"
LEGACY = "/etc/apt/sources.list.d/cuda-debian12-x86_64.list"
CACHED = f"/var/cache/rigforge/nvidia_cuda_repo/{KEYRING_DEB}"
PLAYBOOK = """\
- name: Apply role nvidia_cuda_repo (rigforge test against the CUDA repository STAND-IN).
  hosts: {host}
  become: true
  gather_facts: true
  gather_subset: ["!all", "min"]
  roles:
    - role: nvidia_cuda_repo
"""


@pytest.fixture(scope="module")
def standin(rig) -> CudaStandin:
    return shared_cuda_standin()


@pytest.fixture(scope="module")
def play(rig, standin):
    """Run the role with the given variables through plain ansible-playbook in the workspace."""
    shutil.copytree(ROLE, rig.workspace / "roles" / ROLE.name, dirs_exist_ok=True)
    playbook = rig.workspace / "nvidia_cuda_repo_standin.yml"
    playbook.write_text(PLAYBOOK.format(host=rig.name))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "RIGFORGE_"))}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    extra = rig.workspace / ".rigforge" / "nvidia_cuda_repo_test_vars.json"

    def run(*args: str, **role_vars) -> tuple[subprocess.CompletedProcess, int | None]:
        extra.write_text(json.dumps({**standin.role_vars, **role_vars}))
        proc = subprocess.run(
            ["ansible-playbook", playbook.name, "--limit", rig.name, "-e", f"@{extra}", *args],
            cwd=rig.workspace, env=env, capture_output=True, text=True, timeout=900, check=False,
        )
        recap = re.search(rf"^{re.escape(rig.name)}\s+: ok=\d+\s+changed=(\d+)", proc.stdout, re.M)
        return proc, int(recap.group(1)) if recap else None

    yield run
    playbook.unlink(missing_ok=True)
    extra.unlink(missing_ok=True)


def _ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def _state(rig) -> str:
    """What the role may touch on the host, as one comparable text."""
    return rig.ssh(
        "dpkg-query -W -f='${Status}' cuda-keyring 2>/dev/null; echo;"
        f" ls -1 /etc/apt/sources.list.d/; ls -l {CACHED} 2>&1; ls /usr/share/keyrings/", check=False,
    ).stdout


def test_starts_from_a_host_without_the_repository(rig, play):
    proc, _ = play(nvidia_cuda_repo_state="absent")
    _ok(proc)
    assert "install ok installed" not in _state(rig)
    assert rig.ssh(f"test ! -e {SOURCE} && test ! -e {LEGACY}", check=False).returncode == 0


def test_a_keyring_url_without_a_checksum_is_refused_before_any_change(rig, play):
    before = _state(rig)
    proc, _ = play(nvidia_cuda_repo_keyring_sha256="")
    assert proc.returncode != 0
    assert "rigforge does not install an unpinned download" in proc.stdout
    assert "set nvidia_cuda_repo_keyring_sha256" in proc.stdout
    assert _state(rig) == before


def test_a_keyring_checksum_mismatch_fails_before_anything_is_installed(rig, play, standin):
    before = _state(rig)
    proc, _ = play(nvidia_cuda_repo_keyring_sha256="0" * 64)
    assert proc.returncode != 0
    assert "Download the CUDA keyring package and check its SHA-256." in proc.stdout
    assert re.search(r"checksum mismatch|does not match", proc.stdout, re.I), proc.stdout[-3000:]
    assert _state(rig) == before
    assert f"GET /{KEYRING_DEB} " in " ".join(standin.server.requests)


def test_configures_the_repository_once_as_deb822_with_signed_by(rig, play, standin):
    proc, changed = play()
    _ok(proc)
    assert changed and changed > 0
    source = rig.ssh(f"cat {SOURCE}").stdout
    assert "Types: deb\n" in source and f"URIs: {standin.url}\n" in source and "Suites: /\n" in source
    assert "Signed-By: /usr/share/keyrings/cuda-archive-keyring.gpg\n" in source
    assert "Components" not in source
    sources = rig.ssh(f"grep -l -r -F {standin.url.rstrip('/')} /etc/apt/sources.list.d/").stdout.split()
    assert sources == [SOURCE]
    listed = rig.ssh("ls /etc/apt/sources.list.d/").stdout.split()
    assert not [name for name in listed if re.fullmatch(r"cuda-.*\.list", name)], listed
    # cuda-keyring's one-line source is gone, but dpkg still knows it as a conffile.
    assert LEGACY in rig.ssh("dpkg-query -W -f='${Conffiles}' cuda-keyring").stdout
    assert rig.ssh(f"test ! -e {LEGACY}", check=False).returncode == 0
    policy = rig.ssh("LC_ALL=C apt-cache policy cuda-toolkit-12-8").stdout
    assert "Candidate: 12.8.93-1" in policy
    assert re.search(rf"500 {re.escape(standin.url.rstrip('/'))}\s+Packages", policy), policy


def test_a_second_run_changes_nothing_and_downloads_nothing(rig, play, standin):
    downloads = standin.server.requests.count(f"GET /{KEYRING_DEB} HTTP/1.1")
    proc, changed = play()
    _ok(proc)
    assert changed == 0, proc.stdout[-4000:]
    assert standin.server.requests.count(f"GET /{KEYRING_DEB} HTTP/1.1") == downloads


def test_check_mode_on_the_converged_host_reports_no_change(rig, play):
    proc, changed = play("--check", "--diff")
    _ok(proc)
    assert changed == 0, proc.stdout[-4000:]


def _apt_get(rig, args: str) -> str:
    proc = rig.ssh(f"sudo -n env DEBIAN_FRONTEND=noninteractive LC_ALL=C apt-get -y -q {args}", check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return proc.stdout


def _installed(rig, *packages: str) -> set[str]:
    out = rig.ssh("dpkg-query -W -f='${db:Status-Abbrev} ${Package}\\n' " + " ".join(packages),
                  check=False).stdout
    return {line.split()[-1] for line in out.splitlines() if line.startswith("ii ")}


def _versions(rig, *packages: str) -> dict[str, str]:
    out = rig.ssh("dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Version}\\n' " + " ".join(packages),
                  check=False).stdout
    return {line.split()[1]: line.split()[2] for line in out.splitlines() if line.startswith("ii ")}


def test_the_stand_in_packages_install_switch_branch_and_purge(rig):
    """The stand-in behaves like the real repository where the other roles depend on it, with
    NVIDIA's Debian shape (from the facts table): one nvidia-driver name for every branch."""
    # Without a pinning package, cuda-drivers-570 would pull the newest nvidia-driver: 580.
    simulated = _apt_get(rig, "install --simulate cuda-drivers-570")
    assert "Inst nvidia-driver (580." in simulated, simulated[-2000:]

    _apt_get(rig, "install cuda-toolkit-12-8 cudnn9-cuda-12 nvidia-driver-pinning-570")
    banner = rig.ssh("/usr/local/cuda/bin/nvcc --version").stdout
    assert "Cuda compilation tools, release 12.8, V12.8.93" in banner
    header = rig.ssh("cat /usr/include/x86_64-linux-gnu/cudnn_version_v9.h").stdout
    # 9.26.1: the facts table's current line for CUDA 12.
    assert "#define CUDNN_MAJOR 9" in header and "#define CUDNN_MINOR 26" in header

    _apt_get(rig, "install nvidia-driver nvidia-kernel-dkms")
    drivers = ("nvidia-driver", "nvidia-kernel-dkms", "libcuda1")
    branches = {name: v.split(".")[0] for name, v in _versions(rig, *drivers).items()}
    assert branches == dict.fromkeys(drivers, "570")
    assert "Candidate: (none)" in rig.ssh("LC_ALL=C apt-cache policy cuda-drivers-575").stdout

    _apt_get(rig, "install nvidia-driver-pinning-575")
    pins = rig.ssh("ls /etc/apt/preferences.d/").stdout.split()
    assert "nvidia-driver-pinning-575" in pins and "nvidia-driver-pinning-570" not in pins
    _apt_get(rig, "install nvidia-driver nvidia-kernel-dkms")
    branches = {name: v.split(".")[0] for name, v in _versions(rig, *drivers).items()}
    assert branches == dict.fromkeys(drivers, "575")

    _apt_get(rig, "purge cuda-toolkit-12-8 cuda-nvcc-12-8 cuda-toolkit-12-8-config-common cudnn9-cuda-12"
                  " libcudnn9-cuda-12 libcudnn9-dev-cuda-12 nvidia-driver-pinning-575"
                  " nvidia-driver nvidia-kernel-dkms libcuda1")
    gone = ("/usr/local/cuda", "/usr/local/cuda-12.8/bin/nvcc",
            "/etc/apt/preferences.d/nvidia-driver-pinning-575")
    assert rig.ssh(" && ".join(f"test ! -e {path}" for path in gone), check=False).returncode == 0


@pytest.fixture
def foreign_repo(tmp_path, rig):
    """The toolkit packages in a repository signed by another throwaway key, on another port."""
    with RepoServer(tmp_path / "repo", port=8651) as server:
        specs = cuda_repo_packages(branches=(), cudnn_cuda_majors=())
        debs = [build_deb(spec, tmp_path / "debs") for spec in specs if spec.name != "cuda-keyring"]
        yield build_flat_repo(tmp_path / "repo", debs, server.url, tmp_path / "gnupg")


def test_a_repository_signed_by_another_key_is_refused(rig, play, standin, foreign_repo):
    assert foreign_repo.fingerprint != standin.repo.fingerprint
    proc, _ = play(nvidia_cuda_repo_url=foreign_repo.base_url)
    assert proc.returncode != 0
    assert re.search(r"NO_PUBKEY|signature|not signed", proc.stdout), proc.stdout[-4000:]
    update = rig.ssh("sudo -n LC_ALL=C apt-get update", check=False)
    assert update.returncode != 0
    assert "NO_PUBKEY" in update.stdout + update.stderr
    assert f"{foreign_repo.base_url.rstrip('/')}  Packages" not in rig.ssh("apt-cache policy").stdout
    _ok(play()[0])  # back to the trusted stand-in


def test_absent_removes_the_repository_the_key_and_the_download(rig, play, standin):
    proc, changed = play(nvidia_cuda_repo_state="absent")
    _ok(proc)
    assert changed and changed > 0
    assert rig.ssh(f"test ! -e {SOURCE} && test ! -e {CACHED} && test ! -e {LEGACY}"
                   " && test ! -e /usr/share/keyrings/cuda-archive-keyring.gpg", check=False).returncode == 0
    assert "install ok installed" not in _state(rig)
    assert "Candidate: 12.8.93-1" not in rig.ssh("apt-cache policy cuda-toolkit-12-8").stdout


def test_check_mode_on_a_host_without_the_repository_changes_nothing(rig, play):
    before = _state(rig)
    proc, changed = play("--check")
    _ok(proc)
    assert changed and changed > 0, "check mode must report the changes a real run would make"
    assert _state(rig) == before
