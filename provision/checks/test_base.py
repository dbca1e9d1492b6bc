"""Checks for the ``base`` component: what the base role promises, read from the host."""

import pytest

from provision.checks.packages import installed

pytestmark = pytest.mark.component("base")

BLACKLIST_FILE = "/etc/apt/apt.conf.d/51rigforge-unattended-upgrades"


def test_os_is_supported(host):
    info = host.system_info
    # Ubuntu's release is "22.04"; Debian's may be "12" or "12.8".
    from provision.gpu.table import table

    release = info.release if info.distribution == "ubuntu" else info.release.split(".")[0]
    supported = {(row["id"], row["version"]) for row in table().os_rows.values()}
    assert (info.distribution, release) in supported, (
        f"{info.distribution} {info.release} is not a supported OS"
    )
    assert info.arch in ("x86_64", "aarch64"), f"architecture {info.arch} is not supported"


def test_free_disk_space(host, rig):
    free_gb = int(host.check_output("df -P -BG / | awk 'NR==2 {print $4}'").rstrip("G"))
    needed = int(rig["base_min_free_disk_gb"])
    assert free_gb >= needed, f"{free_gb} GiB free on /, base_min_free_disk_gb is {needed}"


def test_base_packages_installed(host, rig):
    wanted = [*rig["base_packages"], *rig.get("base_extra_packages", [])]
    present = installed(host, wanted)
    missing = [name for name in wanted if name not in present]
    assert not missing, f"packages not installed: {', '.join(missing)}"


def test_dpkg_is_consistent(host):
    audit = host.run("dpkg --audit")
    assert audit.rc == 0 and not audit.stdout.strip(), (
        f"dpkg reports half-installed packages: {audit.stdout.strip().splitlines()[:3]}"
    )


def test_kernel_headers_for_running_kernel(host, rig):
    if not rig.get("base_install_kernel_headers", True):
        pytest.skip("base_install_kernel_headers is false")
    kernel = host.check_output("uname -r")
    package = f"linux-headers-{kernel}"
    if host.run(f"apt-cache show {package}").rc != 0:
        pytest.skip(f"the distro has no {package} (container or custom kernel)")
    assert host.package(package).is_installed, f"{package} is not installed"


def test_unattended_upgrades_blacklist(host, rig):
    config = host.file(BLACKLIST_FILE)
    assert config.exists, f"{BLACKLIST_FILE} is missing"
    content = config.content_string
    missing = [
        p for p in rig["base_unattended_upgrades_blacklist"] if f'"{p}";' not in content
    ]
    assert "Unattended-Upgrade::Package-Blacklist" in content and not missing, (
        f"{BLACKLIST_FILE} does not blacklist {', '.join(missing) or 'anything'}"
    )
    assert host.package("unattended-upgrades").is_installed, "unattended-upgrades not installed"


def test_no_reboot_pending(host):
    if host.file("/var/run/reboot-required").exists:
        pytest.skip("a reboot is pending (/var/run/reboot-required): reboot when convenient")
