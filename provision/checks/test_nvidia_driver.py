"""Checks for the ``nvidia_driver`` component."""

import pytest

from provision.checks.gpu import require_kernel_module, upstream
from provision.checks.packages import versions as package_versions

pytestmark = pytest.mark.component("nvidia_driver")

UNATTENDED = "/etc/apt/apt.conf.d/51rigforge-unattended-upgrades"


def _os_id(host) -> str:
    return "ubuntu" if host.system_info.distribution == "ubuntu" else "debian"


def driver_package(stack, os_id: str = "debian") -> list[str]:
    """Package names (any one suffices) that carry the driver's version for the chosen source:
    the facts table's version package (roles/gpu_stack); on Ubuntu's archive, any package set."""
    from provision.gpu import table

    branch = stack.nvidia_driver_branch
    rule = table.table().driver_rule(stack.nvidia_driver_source, os_id, branch)
    if rule is None:
        return []
    if stack.nvidia_driver_source != "ubuntu":
        return [table.fill(rule["version_package"][stack.nvidia_driver_flavor], b=branch)]
    flavor = "-open" if stack.nvidia_driver_flavor == "open" else ""
    names = [rule["headless_dkms"]] + [names[0] for names in rule["userspace"].values()]
    return list(dict.fromkeys(
        table.fill(name, b=branch, set=server, open=flavor) for name in names for server in ("-server", "")
    ))


def hold_globs(os_id: str) -> list[str]:
    """dpkg-query patterns for the facts table's hold patterns of the OS (^libcuda1 -> libcuda1*)."""
    from provision.gpu import table

    return table.table().hold_globs(os_id)


def test_driver_package_installed_for_the_branch(host, stack):
    wanted = driver_package(stack, _os_id(host))
    found = package_versions(host, *wanted)
    assert found, f"none of {', '.join(wanted)} is installed"
    version = upstream(next(iter(found.values())))
    assert version.startswith(stack.nvidia_driver_branch + "."), (
        f"driver {version} is not of branch {stack.nvidia_driver_branch}"
    )


def test_driver_branch_is_supported(host, stack):
    """Passes: a branch past its end of life still works. The warning (pytest's, and rigforge
    verify's) names the date and the branch to move to, for the chosen and the installed branch."""
    import warnings

    from provision.checks import RigforgeWarning
    from provision.gpu.lifecycle import eol_warnings

    found = package_versions(host, *driver_package(stack, _os_id(host)))
    installed = upstream(next(iter(found.values()))) if found else ""
    for text in eol_warnings(stack.nvidia_driver_branch, installed):
        warnings.warn(RigforgeWarning(text), stacklevel=1)


def test_driver_packages_are_held(host, stack):
    # Every package the facts table names as the driver's on this OS, at the branch's version;
    # the CUDA toolkit's and the container toolkit's nvidia-* packages have their own versions.
    import re

    from provision.gpu import table

    os_id = _os_id(host)
    patterns = "|".join(table.table().packages_of_driver(os_id)["hold"])
    branch = stack.nvidia_driver_branch + "."
    packages = {
        name: version
        for name, version in package_versions(host, *hold_globs(os_id)).items()
        if re.match(patterns, name) and upstream(version).startswith(branch)
    }
    held = set(host.check_output("apt-mark showhold").split())
    loose = sorted(set(packages) - held)
    assert packages, f"no nvidia packages of branch {stack.nvidia_driver_branch} installed"
    assert not loose, f"not held (an upgrade could swap them under the driver): {', '.join(loose)}"


def test_nouveau_is_blacklisted(host):
    conf = host.file("/etc/modprobe.d/blacklist-nouveau.conf")
    assert conf.exists and "blacklist nouveau" in conf.content_string, "nouveau is not blacklisted"


def test_unattended_upgrades_leave_the_driver_alone(host):
    conf = host.file(UNATTENDED)
    assert conf.exists, f"{UNATTENDED} is missing: apply the base component"
    for pattern in ('"nvidia-"', '"libnvidia-"'):
        assert pattern in conf.content_string, f"{UNATTENDED} does not blacklist {pattern}"


def test_nvidia_smi_sees_the_gpus(host):
    from provision.gpu.commands import NVIDIA_SMI_QUERY
    from provision.gpu.nvidia_smi import parse_nvidia_smi_query

    require_kernel_module(host)
    out = host.run(NVIDIA_SMI_QUERY)
    assert out.rc == 0, f"nvidia-smi failed: {out.stdout.strip() or out.stderr.strip()}"
    gpus = parse_nvidia_smi_query(out.stdout)
    assert gpus, "nvidia-smi lists no GPU"
    assert all(g.memory_total_mib > 0 for g in gpus), f"GPU memory not reported: {gpus}"


def test_loaded_module_matches_the_package(host, stack):
    from provision.gpu.kernel_module import parse_proc_driver_version

    module = parse_proc_driver_version(require_kernel_module(host))
    packages = package_versions(host, *driver_package(stack, _os_id(host)))
    assert packages, "driver package not installed"
    package = upstream(next(iter(packages.values())))
    assert module.version == package, (
        f"loaded module {module.version} != installed package {package}: reboot the host"
    )


# Installed kernels (the kernel guard's rule, roles/nvidia_driver/templates/rigforge-kernel-guard.sh.j2):
# /lib/modules/K with a modules.dep and the kernel's own kernel/ tree, or an installed
# linux-image-K package. Lines "K yes|no MODULE|none", then "running K".
KERNELS = (
    "for d in /lib/modules/*/; do [ -d \"$d\" ] || continue; k=$(basename \"$d\"); i=no; "
    "if [ -f \"$d/modules.dep\" ] && [ -d \"$d/kernel\" ]; then i=yes; "
    "elif dpkg-query -W -f='${db:Status-Status}\\n' \"linux-image-$k\" \"linux-image-unsigned-$k\""
    " 2>/dev/null | grep -qx installed; then i=yes; fi; "
    "m=$(find \"$d\" \\( -name 'nvidia.ko*' -o -name 'nvidia-current.ko*' \\) 2>/dev/null | head -n 1); "
    "echo \"$k $i ${m:-none}\"; done; echo \"running $(uname -r)\""
)


def test_every_installed_kernel_has_an_nvidia_module(host):
    """A kernel without an NVIDIA module boots without a driver (DKMS, or Canonical's packages)."""
    from provision.gpu.commands import DKMS_STATUS
    from provision.gpu.kernel_module import parse_dkms_status

    dkms = host.run(f"{DKMS_STATUS} 2>&1")
    registered = sorted({f"{e.module}/{e.version}" for e in parse_dkms_status(
        dkms.stdout if dkms.rc == 0 else "").entries if e.module.startswith("nvidia")})
    prebuilt = package_versions(host, "linux-modules-nvidia-*")
    if not registered and not prebuilt:
        pytest.skip("no NVIDIA kernel module package is installed (no DKMS module, no "
                    "linux-modules-nvidia-*): the userspace only, so no module is expected")
    lines = host.run(KERNELS).stdout.splitlines()
    running = next((line.split()[1] for line in lines if line.startswith("running ")), "?")
    kernels = [line.split() for line in lines if len(line.split()) == 3 and line.split()[1] == "yes"]
    if not kernels:
        pytest.skip(f"no kernel on this host was installed by the package manager: it runs {running} "
                    "(a container sharing its host's kernel?), so no module can be checked for it; "
                    f"modules are ready to build: {', '.join(registered or sorted(prebuilt))}")
    missing = [name for name, _, module in kernels if module == "none"]
    fix = "; ".join(f"{k}: install linux-headers-{k}, then `sudo dkms autoinstall -k {k}`" for k in missing)
    assert not missing, (
        f"installed kernels without an NVIDIA module (they would boot without a driver): "
        f"{', '.join(missing)}. " + (fix if registered else "install their linux-modules-nvidia-* packages")
    )


# GPU settings that last (roles/nvidia_driver/vars/settings.yml decides them the same way; the
# live values, from nvidia-smi, are the health tier's).
GPU_SETTINGS_UNIT = "rigforge-gpu-settings.service"
GPU_SETTINGS_UNIT_FILE = f"/etc/systemd/system/{GPU_SETTINGS_UNIT}"
GPU_SETTINGS_SCRIPT = "/usr/local/lib/rigforge/gpu-settings"
POWER_OPTIONS = "/etc/modprobe.d/rigforge-nvidia-power.conf"
PERSISTENCED_SHOW = ("systemctl show --property=LoadState --property=UnitFileState --property=ExecStart "
                     "nvidia-persistenced.service")
_STARTS_AT_BOOT = ("enabled", "enabled-runtime", "static", "generated")


def _true(value) -> bool:
    return value.strip().lower() in ("true", "yes", "on", "1") if isinstance(value, str) else bool(value)


def persistenced_mode(show: str) -> str:
    """What nvidia-persistenced does to persistence mode at boot, from `systemctl show`: on,
    off (started with --no-persistence-mode) or none (not installed, or not started at boot)."""
    props = dict(line.split("=", 1) for line in show.splitlines() if "=" in line)
    if props.get("LoadState") != "loaded" or props.get("UnitFileState", "").strip() not in _STARTS_AT_BOOT:
        return "none"
    return "off" if "--no-persistence-mode" in props.get("ExecStart", "") else "on"


def gpu_settings_commands(rig: dict, daemon: str) -> list[str]:
    """The nvidia-smi arguments the unit runs, in order: persistence mode where the daemon does
    not leave it as nvidia_driver_persistence_mode says, then each power limit."""
    persistence = _true(rig.get("nvidia_driver_persistence_mode", True))
    found = (["-pm 1"] if persistence and daemon != "on"
             else ["-pm 0"] if not persistence and daemon == "on" else [])
    limits = rig.get("nvidia_driver_power_limit_watts") or {}
    return found + [f"-i {gpu} -pl {watts}" for gpu, watts in limits.items()]


def test_gpu_settings_unit_is_there_exactly_when_it_has_work(host, rig):
    """Power limits, and persistence mode where nvidia-persistenced does not set it, are applied
    at every boot by rigforge-gpu-settings.service, which is absent when there is nothing to do."""
    wanted = gpu_settings_commands(rig, persistenced_mode(host.run(PERSISTENCED_SHOW).stdout))
    unit = host.file(GPU_SETTINGS_UNIT_FILE)
    if not wanted:
        assert not unit.exists, (
            f"{GPU_SETTINGS_UNIT_FILE} is installed, but no power limit is set and nvidia-persistenced "
            "leaves persistence mode as nvidia_driver_persistence_mode says: provision again to remove it")
        return
    calls = ", ".join(f"nvidia-smi {args}" for args in wanted)
    assert unit.exists, f"{GPU_SETTINGS_UNIT_FILE} is missing: nothing applies {calls} at boot"
    state = host.run(f"systemctl is-enabled {GPU_SETTINGS_UNIT}").stdout.strip()
    assert state == "enabled", (
        f"{GPU_SETTINGS_UNIT} is {state or 'unknown'}, not enabled: nothing applies {calls} at boot")
    script = host.file(GPU_SETTINGS_SCRIPT)
    lines = script.content_string.splitlines() if script.exists else []
    missing = [f"nvidia-smi {args}" for args in wanted if args not in lines]
    assert not missing, f"{GPU_SETTINGS_SCRIPT} does not run {', '.join(missing)}: provision again"


def test_video_memory_preservation_matches_the_setting(host, rig):
    conf = host.file(POWER_OPTIONS)
    if _true(rig.get("nvidia_driver_preserve_video_memory", False)):
        assert conf.exists, f"{POWER_OPTIONS} is missing though nvidia_driver_preserve_video_memory is true"
        assert "NVreg_PreserveVideoMemoryAllocations=1" in conf.content_string, (
            f"{POWER_OPTIONS} does not set NVreg_PreserveVideoMemoryAllocations=1")
    else:
        assert not conf.exists, (
            f"{POWER_OPTIONS} sets NVIDIA's suspend options though nvidia_driver_preserve_video_memory "
            "is false: provision again to remove it")
