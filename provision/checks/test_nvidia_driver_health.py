"""Health tier of the ``nvidia_driver`` component: the GPU is well, past "the driver is installed".

Xid events in this boot's kernel log, the PCIe link's width, uncorrectable ECC errors, pages
waiting to be retired and row remaps, persistence mode and the configured power limits. What is
a problem, and its fix, is decided in provision/gpu/health.py from the parsers' results; without
a GPU or a loaded module every check here is skipped with the reason.
"""

import warnings

import pytest

from provision.checks import RigforgeWarning, fail, fail_on
from provision.checks.gpu import require_kernel_module

pytestmark = [pytest.mark.component("nvidia_driver"), pytest.mark.tier("health")]

#: Each host's answer to the health query: four checks read it, and nvidia-smi is slow to start
#: (the prefetch answers a command once; a second ask would go over the wire again).
_answers: dict = {}


def _health(host):
    """This host's rows of the health query (after the GPU gate), or the check fails with
    nvidia-smi's own words: the driver is loaded, so nvidia-smi must answer."""
    from provision.gpu.commands import NVIDIA_SMI_HEALTH
    from provision.gpu.health import smi_failure
    from provision.gpu.nvidia_smi_health import parse_nvidia_smi_health

    require_kernel_module(host)
    if host not in _answers:
        _answers[host] = host.run(NVIDIA_SMI_HEALTH)
    out = _answers[host]
    if out.rc != 0:
        fail_on([smi_failure(out.stdout + out.stderr, out.rc)])
    return parse_nvidia_smi_health(out.stdout)


def test_no_xid_event_since_boot(host):
    from provision.gpu.commands import KERNEL_LOG
    from provision.gpu.health import xid_findings
    from provision.gpu.table import table
    from provision.gpu.xid import parse_kernel_xid

    require_kernel_module(host)
    log = host.run(KERNEL_LOG)
    if log.rc != 0:  # no journald (a minimal host): the kernel's ring buffer holds this boot
        log = host.run("dmesg")
    if log.rc != 0:
        pytest.skip(f"the kernel log cannot be read: {(log.stderr or log.stdout).strip()[:200]}")
    problems, notes = xid_findings(parse_kernel_xid(log.stdout), table().xid_event)
    for note in notes:
        warnings.warn(RigforgeWarning(note), stacklevel=1)
    fail_on(problems)


def test_pcie_links_run_at_full_width(host):
    from provision.gpu.health import link_problems

    fail_on(link_problems(_health(host)))


def test_no_uncorrectable_memory_error_or_pending_repair(host):
    from provision.gpu.commands import NVIDIA_SMI_REMAPPED_ROWS
    from provision.gpu.health import memory_problems
    from provision.gpu.nvidia_smi_health import parse_nvidia_smi_remapped_rows

    rows = _health(host)
    remapped = host.run(NVIDIA_SMI_REMAPPED_ROWS)
    # Cards before Ampere have no row remapper: the query fails there, and pages are retired instead.
    remaps = parse_nvidia_smi_remapped_rows(remapped.stdout) if remapped.rc == 0 else []
    fail_on(memory_problems(rows, remaps))


def test_persistence_mode_is_as_configured(host, rig):
    from provision.gpu.health import persistence_problems

    fail_on(persistence_problems(_health(host), bool(rig.get("nvidia_driver_persistence_mode", True))))


def test_power_limits_are_as_configured(host, rig):
    from provision.gpu.health import power_problems

    rows = _health(host)
    configured = rig.get("nvidia_driver_power_limit_watts") or {}
    if not configured:
        pytest.skip("no power limit configured (nvidia_driver_power_limit_watts): the cards' defaults apply")
    fail_on(power_problems(rows, configured))


def _signing_script() -> str:
    """What mokutil says of Secure Boot, the module-signing key DKMS uses (found as the probe
    finds it), and what mokutil says of that key: lines "SB STATE", "KEY", "TEST-KEY OUTPUT"."""
    from provision.gpu.commands import MOK_SIGNING_KEY

    return (MOK_SIGNING_KEY + "\ncommand -v mokutil >/dev/null || { echo absent; exit 0; }\n"
            'mokutil --sb-state 2>&1 | head -n 1; echo "$k"\n'
            '[ -r "$k" ] && mokutil --test-key "$k" 2>&1; true')


def test_the_driver_module_is_loaded(host):
    """A GPU whose module is not loaded: Secure Boot refusing an unenrolled key, or a reboot due."""
    from provision.checks.gpu import nvidia_gpus
    from provision.gpu.mokutil import parse_mokutil_sb_state, parse_mokutil_test_key

    if host.file("/proc/driver/nvidia/version").exists:
        return
    if not nvidia_gpus(host):
        pytest.skip("no NVIDIA GPU on this host: no driver module is expected")
    lines = host.run(_signing_script()).stdout.splitlines()
    if len(lines) >= 2 and parse_mokutil_sb_state(lines[0]).enforcing:
        key = parse_mokutil_test_key("\n".join(lines[2:]))
        if key.state in ("not-enrolled", "no-key"):
            fail(f"Secure Boot is on and the key DKMS signs the NVIDIA module with ({lines[1]}) is not "
                 "enrolled, so the kernel refuses the module",
                 f"`sudo mokutil --import {lines[1]}`, reboot, and choose Enroll MOK in the blue MOK manager "
                 "screen (the password is the one mokutil asked for)")
        if key.state == "pending":
            fail("Secure Boot is on and the module-signing key waits for enrollment",
                 "reboot and choose Enroll MOK in the blue MOK manager screen")
    fail("an NVIDIA GPU is present but no driver module is loaded",
         "reboot the host (`sudo reboot`); if the module still is not loaded: "
         "`sudo modprobe nvidia` and read `sudo dmesg | grep -i nvidia`")
