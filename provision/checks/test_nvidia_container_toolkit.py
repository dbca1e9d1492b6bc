"""Checks for the ``nvidia_container_toolkit`` component, read from the host.

The apt-source checks follow the docker checks (see ``test_docker``): deb822 with Signed-By,
and plain HTTP only for a mirror the user set in ``nvidia_container_toolkit_repo_url``.

The CDI specification: toolkits from 1.18 ship ``nvidia-cdi-refresh.service`` and ``.path``,
which keep ``/var/run/cdi/nvidia.yaml`` current; the role enables them and generates the
static ``/etc/cdi/nvidia.yaml`` only for older toolkits (or with the units masked), so the
checks look for the file that the installed toolkit's way writes.

A container on the GPU (``--gpus all``, and CDI) is the workload tier's:
``test_nvidia_container_toolkit_workload``.
"""

import json
import re

import pytest

from provision.checks.test_docker import (
    check_no_plain_http,
    check_signed_sources,
    configured_url,
    same_url,
    sources_for,
)

pytestmark = pytest.mark.component("nvidia_container_toolkit")

PACKAGES = (
    "nvidia-container-toolkit", "nvidia-container-toolkit-base",
    "libnvidia-container-tools", "libnvidia-container1",
)
# CVE-2025-23266 ("NVIDIAScape") is fixed in 1.17.8.
MINIMUM = (1, 17, 8)
NVIDIA_HOST = "nvidia.github.io/libnvidia-container"
CDI_STATIC_SPEC = "/etc/cdi/nvidia.yaml"
CDI_REFRESH_SPEC = "/var/run/cdi/nvidia.yaml"
CDI_REFRESH_UNITS = ("nvidia-cdi-refresh.path", "nvidia-cdi-refresh.service")
# The first release with the nvidia-cdi-refresh units (in nvidia-container-toolkit-base).
CDI_REFRESH_FROM = (1, 18, 0)


def _release(version: str) -> tuple[int, ...]:
    """``1.17.8-1`` -> ``(1, 17, 8)``."""
    upstream = version.split(":", 1)[-1].split("-", 1)[0]
    return tuple(int(p) for p in re.findall(r"\d+", upstream)[:3])


def _dpkg(host) -> dict[str, tuple[str, str]]:
    """``{package: (status abbreviation, version)}``, e.g. ``("hi", "1.17.8-1")`` when held."""
    names = " ".join(PACKAGES)
    out = host.run(f"dpkg-query -W -f='${{db:Status-Abbrev}}|${{Package}}|${{Version}}\\n' {names}")
    found = {}
    for line in out.stdout.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[0].strip() and parts[2]:
            found[parts[1]] = (parts[0].strip(), parts[2])
    return found


def _nvidia_gpus(host) -> list[str]:
    """NVIDIA display/3D controllers (PCI class 0300/0302, vendor 10de)."""
    out = host.run("lspci -nn -d 10de: 2>/dev/null")
    return [line for line in out.stdout.splitlines() if re.search(r"\[030[02]\]:", line)]


def cdi_refresh_in_use(base_version: str | None, systemctl_show: str) -> bool:
    """Whether the toolkit keeps the CDI specification current with nvidia-cdi-refresh.

    ``base_version``: nvidia-container-toolkit-base's version (None: not installed);
    ``systemctl_show``: ``systemctl show --property=LoadState`` of both units. As in the
    role: the release must ship the units (a downgrade leaves them behind as obsolete
    conffiles) and systemd must have them loaded (a masked unit is "masked").
    """
    if not base_version or _release(base_version) < CDI_REFRESH_FROM:
        return False
    states = re.findall(r"^LoadState=(\S*)$", systemctl_show, re.MULTILINE)
    return states == ["loaded"] * len(CDI_REFRESH_UNITS)


def _cdi_refresh(host) -> bool:
    base = _dpkg(host).get("nvidia-container-toolkit-base")
    show = host.run("systemctl show --property=LoadState " + " ".join(CDI_REFRESH_UNITS))
    return cdi_refresh_in_use(base[1] if base and base[0][1] == "i" else None, show.stdout)


def test_toolkit_packages_are_pinned_and_held(host, rig):
    pin = str(rig["nvidia_container_toolkit_version"])
    found = _dpkg(host)
    missing = [name for name in PACKAGES if name not in found or found[name][0][1] != "i"]
    assert not missing, f"not installed: {', '.join(missing)}"
    wrong = [f"{n} {v}" for n, (_, v) in found.items() if _release(v) != _release(pin)]
    assert not wrong, f"nvidia_container_toolkit_version is {pin}, installed: {', '.join(wrong)}"
    unheld = [name for name, (status, _) in found.items() if status[0] != "h"]
    assert not unheld, f"not held (apt may upgrade them): {', '.join(unheld)}"


def test_toolkit_has_the_nvidiascape_fix(host):
    found = _dpkg(host)
    if "nvidia-container-toolkit" not in found:
        pytest.fail("nvidia-container-toolkit is not installed")
    version = found["nvidia-container-toolkit"][1]
    assert _release(version) >= MINIMUM, (
        f"nvidia-container-toolkit {version} has CVE-2025-23266 (NVIDIAScape); 1.17.8 or newer is required"
    )


def test_docker_lists_the_nvidia_runtime(host):
    out = host.run("docker info --format '{{json .Runtimes}}'")
    assert out.rc == 0, f"docker info failed (rc {out.rc}): {(out.stderr or out.stdout).strip()[:200]}"
    runtimes = json.loads(out.stdout)
    assert "nvidia" in runtimes, f"Docker's runtimes are {', '.join(sorted(runtimes))}, no nvidia"


def test_toolkit_sources_are_deb822_and_signed(host, rig):
    mirror = configured_url(rig, "nvidia_container_toolkit_repo_url")
    sources = sources_for(host, lambda uri: NVIDIA_HOST in uri or bool(mirror and same_url(uri, mirror)))
    assert sources, "no apt source for NVIDIA's container toolkit repository"
    check_signed_sources(host, sources)


def test_toolkit_sources_use_https(host, rig):
    mirror = configured_url(rig, "nvidia_container_toolkit_repo_url")
    sources = sources_for(host, lambda uri: NVIDIA_HOST in uri or bool(mirror and same_url(uri, mirror)))
    if not sources:
        pytest.skip("no apt source for NVIDIA's container toolkit repository")
    check_no_plain_http(sources, mirror, "nvidia_container_toolkit_repo_url")


def test_cdi_refresh_units_are_enabled(host):
    if not _cdi_refresh(host):
        pytest.skip("the toolkit has no nvidia-cdi-refresh units (1.18 and newer): static CDI specification")
    path, service = (host.service(name) for name in CDI_REFRESH_UNITS)
    assert path.is_enabled and path.is_running, (
        "nvidia-cdi-refresh.path is not enabled and active: "
        "the CDI specification goes stale after a driver update")
    assert service.is_enabled, (
        "nvidia-cdi-refresh.service is not enabled: no CDI specification after a reboot")


def test_cdi_specification_on_a_gpu_host(host):
    if not _nvidia_gpus(host):
        pytest.skip("no NVIDIA GPU on this host: no CDI specification expected")
    if _cdi_refresh(host):
        assert host.file(CDI_REFRESH_SPEC).exists, (
            f"{CDI_REFRESH_SPEC} is missing (nvidia-cdi-refresh.service; "
            "journalctl -u nvidia-cdi-refresh.service)")
    else:
        assert host.file(CDI_STATIC_SPEC).exists, f"{CDI_STATIC_SPEC} is missing (nvidia-ctk cdi generate)"
