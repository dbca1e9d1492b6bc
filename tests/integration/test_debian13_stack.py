"""Debian 13 (trixie) with rigforge itself, on ONE sandbox host made with ``--release trixie``.

The workspace's inventory selects ``base, nvidia_driver, cuda`` with ``nvidia_driver_flavor:
open`` and leaves source, branch and CUDA on auto, which on Debian 13 (the facts table,
roles/gpu_stack) is Debian's own driver 550 and the distro's CUDA 12.4. Everything is REAL and
comes from Debian's archive: nvidia-driver 550 with nvidia-open-kernel-dkms (no Recommends;
no GPU, so userspace only and no module), and nvidia-cuda-toolkit 12.4 (about 2 GB to
download). Then a second provision must change nothing, and verify must pass with the GPU
checks skipped, with their reason.

One host for everything, in file order; it is destroyed at the end even when a test failed.
Each step prints its wall time, and apt's own (``-s`` shows them).
"""

import json
import re
import time

import pytest
import yaml

from provision.gpu.table import table
from tests.integration.conftest import Rig, new_rig, rigforge
from tests.integration.verify_report import assert_gpu_stack_verified_without_a_gpu

pytestmark = [pytest.mark.integration, pytest.mark.slow]

COMPONENTS = ["base", "nvidia_driver", "cuda"]
DEBIAN_13 = table().os_row("debian-13")
BRANCH = str(DEBIAN_13["distro_driver_branch"])  # 550
CUDA = str(DEBIAN_13["distro_cuda"])  # 12.4
RUN_TIMEOUT_S = 2400
UU_CONF = "/etc/apt/apt.conf.d/51rigforge-unattended-upgrades"


@pytest.fixture(scope="module")
def trixie_rig(tmp_path_factory):
    started = time.monotonic()
    rigs = new_rig(tmp_path_factory, "d13", release="trixie")
    rig = next(rigs)
    try:
        print(f"\n[debian13] sandbox up --release trixie: {time.monotonic() - started:.0f} s")
        # As a user would: the host's own variables; source, branch and CUDA stay on auto.
        host_vars = rig.workspace / "inventory" / "host_vars"
        host_vars.mkdir(parents=True, exist_ok=True)
        (host_vars / f"{rig.name}.yml").write_text(yaml.safe_dump(
            {"rigforge_components": COMPONENTS, "nvidia_driver_flavor": "open"}
        ))
        yield rig
    finally:
        rigs.close()  # sandbox down, whatever happened


def _timed(label: str, rig: Rig, *args: str) -> dict:
    started = time.monotonic()
    proc = rigforge(rig.workspace, *args, "--json", check=False, timeout=RUN_TIMEOUT_S)
    print(f"[debian13] rigforge {' '.join(args)}: {time.monotonic() - started:.0f} s")
    assert proc.returncode == 0, (
        f"{label} exited {proc.returncode}\n{proc.stdout[-6000:]}\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout)


def _apt_times(rig: Rig) -> list[str]:
    """Per apt transaction: what it fetched (the .deb files that landed in apt's cache before
    dpkg started: their count, size and the time from the first to dpkg's start) and dpkg's
    own time (/var/log/apt/history.log has when dpkg started and ended)."""
    out = rig.ssh(
        "grep -E '^(Start|End)-Date:' /var/log/apt/history.log"
        " | while read -r key day clock; do echo \"$key $(date -d \"$day $clock\" +%s)\"; done;"
        " stat -c 'Deb: %Z %s' /var/cache/apt/archives/*.deb 2>/dev/null || true"
    ).stdout.split("\n")
    rows = [line.split() for line in out if line]
    stamps = [int(row[1]) for row in rows if row[0] in ("Start-Date:", "End-Date:")]
    debs = [(int(row[1]), int(row[2])) for row in rows if row[0] == "Deb:"]
    lines, previous_end = [], 0
    for start, end in zip(stamps[::2], stamps[1::2], strict=False):
        fetched = [(landed, size) for landed, size in debs if previous_end < landed <= start]
        first = min((landed for landed, _ in fetched), default=start)
        lines.append(f"{len(fetched)} packages, {sum(s for _, s in fetched) / 2**20:.0f} MiB fetched"
                     f" in about {start - first} s, dpkg {end - start} s")
        previous_end = end
    return lines


def _installed(rig: Rig) -> dict[str, str]:
    out = rig.ssh("dpkg-query -W -f='${db:Status-Abbrev}|${Package}|${Version}\\n'").stdout
    return {name: version for abbrev, name, version in (line.split("|") for line in out.splitlines())
            if abbrev[:2] in ("ii", "hi")}


@pytest.fixture(scope="module")
def provisioned(trixie_rig) -> dict:
    # One command provisions and then runs Ansible once more, which must change nothing.
    report = _timed("provision --check-idempotence", trixie_rig, "provision", "--yes", "--check-idempotence")
    for line in _apt_times(trixie_rig):
        print(f"[debian13]   apt: {line}")
    return report


def test_provision_installs_the_auto_stack(trixie_rig, provisioned):
    hosts = {h["host"]: h for h in provisioned["run"]["hosts"]}
    assert provisioned["run"]["status"] == "successful"
    assert hosts[trixie_rig.name]["changed"] > 0 and hosts[trixie_rig.name]["failed"] == 0
    os_release = trixie_rig.ssh(". /etc/os-release; echo $ID $VERSION_ID").stdout.split()
    assert os_release == ["debian", "13"]


def test_debians_driver_with_the_open_kernel_modules(trixie_rig, provisioned):
    installed = _installed(trixie_rig)
    for package in ("nvidia-driver", "nvidia-open-kernel-dkms", "nvidia-smi"):
        assert installed.get(package, "").startswith(f"{BRANCH}."), (package, installed.get(package))
    assert "nvidia-kernel-dkms" not in installed  # the proprietary modules
    assert "nvidia-settings" not in installed  # a Recommends of nvidia-driver


def _driver_packages_of_the_branch(rig: Rig) -> set[str]:
    """The installed packages that the facts table counts as the driver's on Debian (its hold
    patterns) and whose version is of the branch, such as libglx-nvidia0, or libcuda1, which the
    toolkit pulls in."""
    patterns = table().packages_of_driver("debian")["hold"]
    return {name for name, version in _installed(rig).items()
            if any(re.match(p, name) for p in patterns) and re.match(rf"([0-9]+:)?{BRANCH}\.", version)}


def test_every_driver_package_of_the_branch_is_held(trixie_rig, provisioned):
    """apt upgrade must not swap one of them under the loaded driver."""
    of_branch = _driver_packages_of_the_branch(trixie_rig)
    held = set(trixie_rig.ssh("apt-mark showhold").stdout.split())
    assert {"nvidia-driver", "nvidia-open-kernel-dkms", "nvidia-smi"} <= of_branch
    assert not sorted(of_branch - held), f"not held: {sorted(of_branch - held)}"


def test_nouveau_and_unattended_upgrades_are_kept_away(trixie_rig, provisioned):
    conf = trixie_rig.ssh("cat /etc/modprobe.d/blacklist-nouveau.conf").stdout.splitlines()
    assert conf[-2:] == ["blacklist nouveau", "options nouveau modeset=0"]
    assert trixie_rig.ssh(f"test -f {UU_CONF}", check=False).returncode == 0
    dumped = trixie_rig.ssh(
        f"apt-config --config-file {UU_CONF} dump Unattended-Upgrade::Package-Blacklist").stdout
    entries = re.findall(r'"([^"]*)";', dumped)
    assert {"nvidia-", "libnvidia-", "cuda-"} <= set(entries), dumped
    # unattended-upgrades matches each entry with re.match: every driver package is covered.
    packages = _driver_packages_of_the_branch(trixie_rig)
    loose = sorted(name for name in packages if not any(re.match(entry, name) for entry in entries))
    assert not loose, f"not blacklisted for unattended-upgrades: {loose}"


def test_nvcc_of_a_login_shell_reports_the_distros_cuda(trixie_rig, provisioned):
    login = trixie_rig.ssh("bash -lc 'echo $CUDA_HOME; command -v nvcc; nvcc --version'").stdout
    assert login.startswith("/usr\n/usr/bin/nvcc\n"), login
    assert f"Cuda compilation tools, release {CUDA}," in login, login
    assert _installed(trixie_rig)["nvidia-cuda-toolkit"].startswith(f"{CUDA}.")


def test_second_run_changes_nothing(trixie_rig, provisioned):
    second = provisioned["idempotence"]
    assert second["changed_tasks"] == [], second["changed_tasks"]
    assert [(h["status"], h["changed"], h["failed"]) for h in second["hosts"]] == [("ok", 0, 0)]


def test_verify_passes_and_skips_the_gpu_checks_with_the_reason(trixie_rig, provisioned):
    started = time.monotonic()
    proc = rigforge(trixie_rig.workspace, "verify", "--format", "json", check=False)
    print(f"[debian13] rigforge verify: {time.monotonic() - started:.0f} s")
    report = json.loads(proc.stdout)
    failed = [(c["check"], c.get("message")) for c in report["checks"] if c["outcome"] == "failed"]
    assert proc.returncode == 0 and report["status"] == "passed", failed or proc.stderr
    # Debian 13's own driver is 550, past its end of life: a warning, not a failure.
    assert "Driver branch 550 reached its end of life in 2025-04" in proc.stderr
    assert_gpu_stack_verified_without_a_gpu(
        report, ["nvidia_driver", "cuda"],
        also_passed=[("base", "test_os_is_supported"), ("base", "test_unattended_upgrades_blacklist")])
