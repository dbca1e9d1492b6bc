"""Role nvidia_driver on real sandbox hosts (Debian 12, no GPU), with plain ansible-playbook.

The shared ``rig`` gets Debian's REAL nvidia-driver 535 from the archive (sandbox profile:
nvidia_driver_require_gpu false, nvidia_driver_skip_reboot true). The refusals run first, while
no driver is installed, and prove that nothing changed. A host of its own then takes the
cuda-repo source from the STAND-IN for NVIDIA's CUDA apt repository (not NVIDIA's packages),
including a switch of branch under holds and the branch pin.

The tests of each host run in file order.
"""

import re
import subprocess
import time

import pytest

from tests.integration.conftest import Rig, new_rig
from tests.integration.plays import Play, player
from tests.integration.plays import ok as _ok
from tests.integration.standins import CudaStandin, shared_cuda_standin

pytestmark = [pytest.mark.integration, pytest.mark.slow]

COMPONENTS = ["base", "nvidia_driver"]
UU_CONF = "/etc/apt/apt.conf.d/51rigforge-unattended-upgrades"



def _player(rig: Rig) -> Play:
    return player(rig, COMPONENTS, "nvidia_driver", timeout=1500)




def _failed(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0, proc.stdout[-4000:]
    return " ".join(proc.stdout.split())


def _state(rig: Rig) -> str:
    """Everything the role could change, as one comparable text."""
    return rig.ssh(
        "dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}\\n'; apt-mark showhold;"
        " ls -1 /etc/modprobe.d /etc/apt/sources.list.d /etc/apt/preferences.d", check=False,
    ).stdout


def _installed(rig: Rig) -> dict[str, str]:
    out = rig.ssh("dpkg-query -W -f='${db:Status-Abbrev}|${Package}|${Version}\\n'").stdout
    return {name: version for abbrev, name, version in (line.split("|") for line in out.splitlines())
            if abbrev.startswith("ii") or abbrev.startswith("hi")}


def _held(rig: Rig) -> set[str]:
    return set(rig.ssh("apt-mark showhold").stdout.split())


def _task_result(stdout: str, task: str) -> str:
    """The first result line (ok/changed/skipping/failed) of the task named ``task``."""
    block = stdout.split(f"TASK [nvidia_driver : {task}]", 1)[1]
    return re.search(r"^(ok|changed|skipping|failed|fatal):.*$", block, re.M).group(0)


# --- the shared rig: Debian's own driver -----------------------------------------------------

@pytest.fixture(scope="module")
def play(rig) -> Play:
    run = _player(rig)
    _ok(run(playbook="base.yml")[0])
    return run


def test_no_gpu_is_refused_before_any_change(rig, play):
    before = _state(rig)
    assert "nvidia-driver" not in _installed(rig)
    proc, _ = play(nvidia_driver_require_gpu=True)
    out = _failed(proc)
    assert "No NVIDIA GPU (PCI class 0300 or 0302, vendor 10de) was found" in out
    assert "nvidia_driver_require_gpu" in out
    assert _state(rig) == before
    assert not {"nvidia-driver", "nvidia-kernel-dkms", "nvidia-smi"} & set(_installed(rig))


def test_enforcing_secure_boot_is_refused_before_any_change(rig, play):
    before = _state(rig)
    proc, _ = play(nvidia_driver_source="debian",
                   __nvidia_driver_mokutil_command="printf 'SecureBoot enabled\\n'")
    out = _failed(proc)
    assert "Secure Boot is enforcing" in out and "Nothing was changed" in out
    assert "nvidia_driver_source: ubuntu" in out and "linux-modules-nvidia" in out
    assert "Machine Owner Key (MOK)" in out and "cannot be done over SSH" in out
    assert _state(rig) == before


def test_debian_refuses_another_branch_and_points_to_cuda_repo(rig, play):
    before = _state(rig)
    out = _failed(play(nvidia_driver_branch="570")[0])
    assert "packages only the driver branch 535" in out and "nvidia_driver_source: cuda-repo" in out
    assert _state(rig) == before


def test_missing_unattended_upgrades_blacklist_is_refused(rig, play):
    rig.ssh(f"sudo -n mv {UU_CONF} /root/uu.conf")
    try:
        before = _state(rig)
        out = _failed(play()[0])
    finally:
        rig.ssh(f"sudo -n mv /root/uu.conf {UU_CONF}")
    assert 'does not blacklist "nvidia-" and "libnvidia-"' in out and "Apply the base component" in out
    assert _state(rig) == before


def test_check_mode_on_a_fresh_host_changes_nothing(rig, play):
    before = _state(rig)
    proc, changed = play("--check", "--diff")
    _ok(proc)
    assert changed and changed > 0
    assert "changed" in _task_result(proc.stdout, "Install the NVIDIA driver packages.")
    assert _state(rig) == before


def test_debian_driver_installs_without_gpu_or_reboot(rig, play):
    started = time.monotonic()
    proc, changed = play()
    elapsed = time.monotonic() - started
    _ok(proc)
    assert changed and changed > 0
    print(f"nvidia_driver on Debian 12 (real nvidia-driver 535, no recommends): {elapsed:.0f} s")
    out = " ".join(proc.stdout.split())
    assert "no GPU: installing userspace only, no module will load" in out
    assert "source debian, branch 535, flavor proprietary" in out

    installed = _installed(rig)
    for package in ("nvidia-driver", "nvidia-kernel-dkms", "nvidia-smi", "nvidia-persistenced"):
        assert installed.get(package, "").startswith("535."), package
    assert "nvidia-settings" not in installed  # a recommend of nvidia-driver

    held = _held(rig)
    assert {"nvidia-driver", "nvidia-kernel-dkms", "nvidia-smi", "nvidia-persistenced",
            "libnvidia-ml1", "nvidia-driver-libs"} <= held
    assert all(installed[p].startswith("535.") for p in held if p in installed and "nvidia" in p)

    assert rig.ssh("cat /etc/modprobe.d/blacklist-nouveau.conf").stdout.splitlines()[-2:] == [
        "blacklist nouveau", "options nouveau modeset=0"]
    assert "no initramfs to rebuild" in out  # the sandbox has no initramfs-tools

    # No GPU, so no module: the version check is reported as skipped, never as passed.
    check = "Assert that the loaded kernel module is the installed driver version."
    assert "skipping" in _task_result(proc.stdout, check)
    assert "SKIPPED: loaded module version check: no NVIDIA GPU was found" in out
    assert "skipping" in _task_result(proc.stdout, "Reboot to load the new driver module.")
    assert "Reboot skipped (nvidia_driver_skip_reboot is true)" in out

    assert rig.ssh("systemctl is-enabled nvidia-persistenced").stdout.strip() == "enabled"
    assert "nvidia-persistenced is enabled but not started" in out
    assert "nvidia-smi -L (rc 9): NVIDIA-SMI has failed because it couldn't communicate" in out


def test_second_run_changes_nothing(rig, play):
    proc, changed = play()
    _ok(proc)
    assert changed == 0, re.findall(r"^TASK \[(.*)\].*\n(?:.*\n)*?changed:", proc.stdout, re.M)


# --- a host of its own: the cuda-repo source against the stand-in --------------------------------

@pytest.fixture(scope="module")
def standin(rig) -> CudaStandin:
    """The process-wide stand-in (served on the bridge, which exists while ``rig`` is up)."""
    return shared_cuda_standin()


@pytest.fixture(scope="module")
def repo_rig(tmp_path_factory, rig):
    """A host of its own (``rig`` first: the stand-in is served on its bridge)."""
    yield from new_rig(tmp_path_factory, "nd")


@pytest.fixture(scope="module")
def repo_play(repo_rig, standin) -> Play:
    run = _player(repo_rig)
    _ok(run(playbook="base.yml")[0])

    def play(*args: str, **variables):
        return run(*args, **{"nvidia_driver_source": "cuda-repo", "nvidia_driver_branch": "570",
                             **standin.role_vars, **variables})

    return play


def test_cuda_repo_check_mode_on_a_fresh_host_changes_nothing(repo_rig, repo_play):
    before = _state(repo_rig)
    proc, changed = repo_play("--check", "--diff")
    _ok(proc)
    assert changed and changed > 0
    out = " ".join(proc.stdout.split())
    # NVIDIA's debian12 names (the facts table): never the unbounded cuda-drivers-570.
    assert "Would install nvidia-driver-pinning-570 nvidia-driver nvidia-kernel-dkms" in out
    assert _state(repo_rig) == before


def test_cuda_repo_driver_is_pinned_and_held(repo_rig, repo_play):
    proc, changed = repo_play()
    _ok(proc)
    assert changed and changed > 0
    installed = _installed(repo_rig)
    for package in ("nvidia-driver-pinning-570", "nvidia-driver", "nvidia-kernel-dkms", "libcuda1"):
        assert installed.get(package, "").startswith("570."), package
    assert "cuda" not in installed  # never the bare metapackage
    assert "cuda-drivers-570" not in installed  # nor the one that pulls any newer branch
    assert {"nvidia-driver-pinning-570", "nvidia-driver", "nvidia-kernel-dkms", "libcuda1"} <= _held(repo_rig)
    pin = "/etc/apt/preferences.d/nvidia-driver-pinning-570"
    assert repo_rig.ssh(f"test -f {pin}", check=False).returncode == 0
    assert "SKIPPED: loaded module version check" in " ".join(proc.stdout.split())


def test_cuda_repo_second_run_changes_nothing(repo_rig, repo_play):
    proc, changed = repo_play()
    _ok(proc)
    assert changed == 0


def test_cuda_repo_branch_switch_releases_and_renews_the_holds(repo_rig, repo_play):
    """570 -> 575: the held 570 packages and their pin must make way for 575's."""
    proc, changed = repo_play(nvidia_driver_branch="575", nvidia_driver_flavor="open")
    _ok(proc)
    installed, held = _installed(repo_rig), _held(repo_rig)
    assert not [p for p, version in installed.items() if "570" in p or version.startswith("570.")]
    wanted = {"nvidia-driver-pinning-575", "nvidia-open", "nvidia-driver", "nvidia-kernel-open-dkms",
              "libcuda1"}
    assert wanted <= held
    assert all(installed[p].startswith("575.") for p in wanted)
    assert "nvidia-kernel-dkms" not in installed  # the proprietary module made way for the open one
    assert held <= set(installed)
    proc, changed = repo_play(nvidia_driver_branch="575", nvidia_driver_flavor="open")
    _ok(proc)
    assert changed == 0
