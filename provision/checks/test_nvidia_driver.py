"""Checks for the ``nvidia_driver`` component."""

import pytest

from provision.checks.gpu import installed_packages, require_kernel_module, upstream

pytestmark = pytest.mark.component("nvidia_driver")

UNATTENDED = "/etc/apt/apt.conf.d/51rigforge-unattended-upgrades"


def driver_package(stack) -> list[str]:
    """Package names (any one suffices) that carry the driver for the chosen source."""
    branch = stack.nvidia_driver_branch
    if stack.nvidia_driver_source == "debian":
        return ["nvidia-driver"]
    if stack.nvidia_driver_source == "cuda-repo":
        return [f"cuda-drivers-{branch}"]
    return [
        f"{kind}-{branch}{server}{flavor}"
        for kind in ("nvidia-driver", "nvidia-headless")
        for server in ("-server", "")
        for flavor in (("-open",) if stack.nvidia_driver_flavor == "open" else ("",))
    ]


def test_driver_package_installed_for_the_branch(host, stack):
    wanted = driver_package(stack)
    found = installed_packages(host, *wanted)
    assert found, f"none of {', '.join(wanted)} is installed"
    version = upstream(next(iter(found.values())))
    assert version.startswith(stack.nvidia_driver_branch + "."), (
        f"driver {version} is not of branch {stack.nvidia_driver_branch}"
    )


def test_driver_packages_are_held(host, stack):
    # The driver branch's packages; the CUDA toolkit's nvidia-* packages have their own versions.
    branch = stack.nvidia_driver_branch + "."
    packages = {
        name: version
        for name, version in installed_packages(
            host, "nvidia-*", "libnvidia-*", "cuda-drivers*"
        ).items()
        if upstream(version).startswith(branch)
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
    from provision.gpu import parsers

    require_kernel_module(host)
    out = host.run(parsers.NVIDIA_SMI_QUERY)
    assert out.rc == 0, f"nvidia-smi failed: {out.stdout.strip() or out.stderr.strip()}"
    gpus = parsers.parse_nvidia_smi_query(out.stdout)
    assert gpus, "nvidia-smi lists no GPU"
    assert all(g.memory_total_mib > 0 for g in gpus), f"GPU memory not reported: {gpus}"


def test_loaded_module_matches_the_package(host, stack):
    from provision.gpu import parsers

    module = parsers.parse_proc_driver_version(require_kernel_module(host))
    packages = installed_packages(host, *driver_package(stack))
    assert packages, "driver package not installed"
    package = upstream(next(iter(packages.values())))
    assert module.version == package, (
        f"loaded module {module.version} != installed package {package}: reboot the host"
    )
