"""GPU settings that last (role nvidia_driver) on the shared sandbox host: power limits by index
and UUID, persistence mode, and NVIDIA's module options for suspend, with plain ansible-playbook.

The sandbox (Debian 12, sandbox profile: nvidia_driver_require_gpu false, no reboot) has no GPU
and no NVIDIA module, so ``nvidia-smi`` here is a STAND-IN, not NVIDIA's: a shell script at
/usr/local/bin/nvidia-smi (ahead of /usr/bin on systemd's PATH) that appends its arguments to a
log and answers for GPU 0 and one UUID; GPU 1 is missing. NVIDIA's nvidia-suspend and
nvidia-resume units are STAND-INS too (Debian ships them in nvidia-suspend-common, which the role
does not install); nvidia-hibernate is left missing. Without a GPU the role only enables the
unit, so the tests start it by hand and across a halt and boot of the host.

The host may or may not have the driver from other modules already (the first run installs it);
the module leaves it without the unit, the option file and the stand-ins. Tests run in file order.
"""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.conftest import Rig, rigforge
from tests.integration.plays import Play, player
from tests.integration.plays import ok as _ok

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHECKS = Path(__file__).resolve().parents[2] / "provision" / "checks" / "test_nvidia_driver.py"

COMPONENTS = ["base", "nvidia_driver"]
UUID = "GPU-5e6b1ab5-5ded-4f6d-a8a3-2bc2d1ff3d2a"
LIMITS = {"0": 250, UUID: 300, "1": 200}
CALLS = ["-i 0 -pl 250", f"-i {UUID} -pl 300", "-i 1 -pl 200"]
SETTINGS = {"nvidia_driver_power_limit_watts": LIMITS, "nvidia_driver_preserve_video_memory": True}
UNIT = "rigforge-gpu-settings.service"
UNIT_FILE = f"/etc/systemd/system/{UNIT}"
SCRIPT = "/usr/local/lib/rigforge/gpu-settings"
OPTIONS = "/etc/modprobe.d/rigforge-nvidia-power.conf"
SHIM, SHIM_LOG = "/usr/local/bin/nvidia-smi", "/var/log/rigforge-test-nvidia-smi.log"
SUSPEND_STANDINS = {"nvidia-suspend.service": "systemd-suspend.service",
                    "nvidia-resume.service": "systemd-suspend.service"}

# STAND-IN for nvidia-smi (not NVIDIA's): logs its arguments; GPU 1 is missing.
SHIM_TEXT = f"""#!/bin/sh
# STAND-IN for nvidia-smi, made by tests/integration/test_nvidia_driver_settings.py: no GPU here.
echo "$*" >> {SHIM_LOG}
case "$*" in
    "-i 1 "*) echo "No devices were found"; exit 6 ;;
    *" -pl "*) echo "Power limit for GPU 00000000:01:00.0 was set to $4.00 W from 350.00 W."
        echo "All done." ;;
    *) echo "All done." ;;
esac
"""


def _standin_unit(wanted_by: str) -> str:
    return ("[Unit]\nDescription=STAND-IN for NVIDIA's unit (rigforge test)\n[Service]\nType=oneshot\n"
            f"ExecStart=/bin/true\n[Install]\nWantedBy={wanted_by}\n")


def _sh(rig: Rig, command: str, check: bool = True) -> subprocess.CompletedProcess:
    return rig.ssh(f"sudo -n sh -c {_quote(command)}", check=check)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _write(rig: Rig, path: str, text: str, mode: str) -> None:
    subprocess.run(["ssh", "-F", str(rig.workspace / ".rigforge" / "ssh_config"), rig.name,
                    f"sudo -n tee {path} >/dev/null && sudo -n chmod {mode} {path}"],
                   input=text, text=True, check=True, capture_output=True, timeout=60)


def _calls(rig: Rig) -> list[str]:
    return _sh(rig, f"cat {SHIM_LOG} 2>/dev/null || true").stdout.splitlines()


def _exists(rig: Rig, path: str) -> bool:
    return _sh(rig, f"test -e {path}", check=False).returncode == 0


def _state(rig: Rig, verb: str, unit: str = UNIT) -> str:
    return _sh(rig, f"systemctl {verb} {unit}", check=False).stdout.strip()


def _remove_standins(rig: Rig) -> None:
    units = " ".join(SUSPEND_STANDINS)
    _sh(rig, f"systemctl disable {units} 2>/dev/null; cd /etc/systemd/system && rm -f {units};"
             f" rm -f {SHIM} {SHIM_LOG}; systemctl daemon-reload", check=False)


@pytest.fixture(scope="module")
def play(rig) -> Play:
    run = player(rig, COMPONENTS, "nvidia_driver_settings", timeout=1500)
    if not _exists(rig, "/etc/apt/apt.conf.d/51rigforge-unattended-upgrades"):  # base not applied yet
        _ok(run(playbook="base.yml")[0])
    for unit, wanted_by in SUSPEND_STANDINS.items():
        _write(rig, f"/etc/systemd/system/{unit}", _standin_unit(wanted_by), "0644")
    _write(rig, SHIM, SHIM_TEXT, "0755")
    _sh(rig, "systemctl daemon-reload")
    try:
        yield run
    finally:
        if _exists(rig, UNIT_FILE) or _exists(rig, OPTIONS):  # a test failed half-way
            run()
        _remove_standins(rig)


def _checks(rig: Rig, settings: dict) -> subprocess.CompletedProcess:
    """This module's checks of `rigforge verify` on the host, for these settings."""
    variables = rig.workspace / ".rigforge" / f"settings_check_vars_{rig.name}.json"
    variables.write_text(json.dumps({rig.name: {"rigforge_components": COMPONENTS, **settings}}))
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(CHECKS), "-p", "no:cacheprovider", "-q", "-k",
         "gpu_settings_unit or video_memory", "--ssh-config=.rigforge/ssh_config",
         f"--hosts=ssh://{rig.name}?sudo=true", f"--rigforge-workspace={rig.workspace}",
         f"--rigforge-vars={variables}"],
        cwd=rig.workspace, capture_output=True, text=True, timeout=300, check=False)


def _timed(play: Play, **variables) -> tuple[subprocess.CompletedProcess, int | None]:
    started = time.monotonic()
    proc, changed = play(**variables)
    print(f"nvidia_driver with {variables or 'the defaults'}: {time.monotonic() - started:.0f} s")
    return proc, changed


def test_a_bad_power_limit_is_refused_before_any_change(rig, play):
    proc, _ = play(nvidia_driver_power_limit_watts={"gpu0": "250W"})
    assert proc.returncode != 0
    out = " ".join(proc.stdout.split())
    assert ('nvidia_driver_power_limit_watts must map GPUs to watts: key "gpu0" is neither a GPU index '
            '(0, 1, ...) nor a GPU UUID') in out
    assert 'GPU gpu0: "250W" is not a whole number of watts above 0.' in out
    assert "List the NVIDIA PCI devices." not in out  # refused before the first probe
    assert not _exists(rig, UNIT_FILE)


def test_settings_install_the_unit_and_the_module_options(rig, play):
    proc, changed = _timed(play, **SETTINGS)
    out = _ok(proc)
    assert changed and changed > 0
    # No GPU: enabled for the next boot, not started, with the reason.
    assert (f"SKIPPED: GPU settings (nvidia-smi {CALLS[0]}, nvidia-smi {CALLS[1]}, nvidia-smi {CALLS[2]}) "
            "not applied now: no NVIDIA GPU was found") in out
    assert _state(rig, "is-enabled") == "enabled" and _state(rig, "is-active") == "inactive"
    # Debian's nvidia-persistenced turns persistence mode on: only the limits, in the order given.
    script = _sh(rig, f"cat {SCRIPT}").stdout
    assert script.split("<<'SETTINGS'\n", 1)[1].split("\nSETTINGS\n", 1)[0].splitlines() == CALLS

    assert _sh(rig, f"grep ^options {OPTIONS}").stdout.splitlines() == [
        f"options {module} NVreg_PreserveVideoMemoryAllocations=1 NVreg_TemporaryFilePath=/var/tmp"
        for module in ("nvidia", "nvidia-current")]
    assert "no initramfs to rebuild" in out  # the sandbox has no initramfs-tools
    assert "applies when the nvidia module loads next (none is loaded now)" in out
    for unit in SUSPEND_STANDINS:
        assert _state(rig, "is-enabled", unit) == "enabled", unit
    assert ("WARNING: nvidia-hibernate.service is not installed on " + rig.name) in out
    checks = _checks(rig, SETTINGS)
    assert checks.returncode == 0 and "2 passed" in checks.stdout, checks.stdout[-3000:]
    # The converged check reads them too: a deleted unit or option file is drift, repaired by
    # the next `rigforge provision` without --full.
    manifest = _sh(rig, "cat /var/lib/rigforge/state/nvidia_driver.manifest").stdout.splitlines()
    assert {f"file {UNIT_FILE}", f"file {SCRIPT}", f"file {OPTIONS}", f"service {UNIT}"} <= set(manifest)


def test_the_unit_applies_each_setting_and_names_the_missing_gpu(rig):
    _sh(rig, f"rm -f {SHIM_LOG}")
    start = _sh(rig, f"systemctl start {UNIT}", check=False)
    assert start.returncode != 0  # GPU 1 is missing
    assert _calls(rig) == CALLS  # the others still ran
    assert _state(rig, "is-failed") == "failed"
    journal = _sh(rig, f"journalctl -u {UNIT} -b --no-pager -o cat").stdout
    assert "ok: power limit of GPU 0: 250 W (nvidia-smi -i 0 -pl 250): Power limit for GPU" in journal
    assert f"ok: power limit of GPU {UUID}: 300 W" in journal
    assert ("FAILED: power limit of GPU 1: 200 W (nvidia-smi -i 1 -pl 200, exit 6): No devices were found "
            "Is GPU 1 installed?") in journal
    assert "1 of 3 GPU settings failed" in journal


def test_the_unit_runs_again_at_boot(rig):
    before = _sh(rig, "cat /proc/sys/kernel/random/boot_id").stdout
    _sh(rig, f"rm -f {SHIM_LOG}")
    # Close the workspace's SSH master first: its connection dies with the host.
    subprocess.run(["ssh", "-F", str(rig.workspace / ".rigforge" / "ssh_config"), "-O", "exit", rig.name],
                   capture_output=True, text=True, timeout=30, check=False)
    started = time.monotonic()
    rigforge(rig.workspace, "sandbox", "halt", rig.name, timeout=300)
    rigforge(rig.workspace, "sandbox", "boot", rig.name, timeout=600)
    deadline = time.monotonic() + 90
    while _calls(rig) != CALLS and time.monotonic() < deadline:
        time.sleep(1)
    print(f"halt, boot and the unit's run at boot: {time.monotonic() - started:.0f} s")
    assert _sh(rig, "cat /proc/sys/kernel/random/boot_id").stdout != before
    assert _calls(rig) == CALLS
    assert _state(rig, "is-failed") == "failed"  # GPU 1 is still missing; the boot went on
    assert _sh(rig, "systemctl is-system-running", check=False).stdout.strip() in ("degraded", "running")


def test_a_second_run_changes_nothing(play):
    proc, changed = _timed(play, **SETTINGS)
    _ok(proc)
    assert changed == 0, re.findall(r"^TASK \[(.*)\].*\n(?:.*\n)*?changed:", proc.stdout, re.M)


def test_the_defaults_remove_the_unit_and_the_module_options(rig, play):
    proc, changed = _timed(play)
    out = _ok(proc)
    assert changed and changed > 0
    for path in (UNIT_FILE, SCRIPT, OPTIONS):
        assert not _exists(rig, path), path
    assert _state(rig, "is-failed") != "failed"  # forgotten, not left listed as failed
    assert f"Removed {UNIT} from {rig.name}" in out
    assert "NVreg_PreserveVideoMemoryAllocations (/etc/modprobe.d/rigforge-nvidia-power.conf) is gone" in out
    # NVIDIA's suspend units are left as they are.
    assert _state(rig, "is-enabled", "nvidia-suspend.service") == "enabled"
    checks = _checks(rig, {})
    assert checks.returncode == 0 and "2 passed" in checks.stdout, checks.stdout[-3000:]
    drift = _checks(rig, SETTINGS)  # what verify says of a host without the settings it should have
    assert drift.returncode == 1 and "2 failed" in drift.stdout, drift.stdout[-3000:]
    assert f"{UNIT_FILE} is missing: nothing applies nvidia-smi -i 0 -pl 250" in drift.stdout
    assert f"{OPTIONS} is missing though nvidia_driver_preserve_video_memory is true" in drift.stdout
