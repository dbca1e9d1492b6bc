"""Checks for the ``nvidia_container_toolkit`` component, read from the host.

The apt-source checks follow the docker checks (see ``test_docker``): deb822 with Signed-By,
and plain HTTP only for a mirror the user set in ``nvidia_container_toolkit_repo_url``.
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
CDI_SPEC = "/etc/cdi/nvidia.yaml"


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


def test_cdi_specification_on_a_gpu_host(host):
    if not _nvidia_gpus(host):
        pytest.skip("no NVIDIA GPU on this host: no CDI specification expected")
    assert host.file(CDI_SPEC).exists, f"{CDI_SPEC} is missing (nvidia-ctk cdi generate)"


def test_gpu_container_runs_nvidia_smi(host, rig):
    if not _nvidia_gpus(host):
        pytest.skip("no NVIDIA GPU on this host")
    image = rig.get("nvidia_container_toolkit_check_image") or "ubuntu:24.04"
    out = host.run(f"docker run --rm --gpus all {image} nvidia-smi -L")
    assert out.rc == 0 and "GPU" in out.stdout, (
        f"docker run --gpus all {image} nvidia-smi failed (rc {out.rc}): "
        f"{(out.stderr or out.stdout).strip()[:200]}"
    )
