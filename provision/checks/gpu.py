"""Shared helpers for the GPU-stack checks (not a test module)."""

import pytest

NO_MODULE = "userspace installed, no kernel module loaded"


def upstream(version: str) -> str:
    """Debian version -> upstream part: ``535.216.01-1~deb12u1`` -> ``535.216.01``."""
    version = version.split(":", 1)[-1]
    return version.rsplit("-", 1)[0] if "-" in version else version


def nvidia_gpus(host) -> str:
    """lspci's lines of the host's NVIDIA display controllers ("" when none)."""
    return host.run("lspci -nn -d 10de: 2>/dev/null | grep -E '\\[030[02]\\]'").stdout.strip()


def require_kernel_module(host) -> str:
    """The loaded module's /proc version text, or skip: no GPU or no module is not a pass."""
    proc = host.file("/proc/driver/nvidia/version")
    if not proc.exists:
        gpus = nvidia_gpus(host)
        why = "no NVIDIA GPU on this host" if not gpus else "the module is not loaded (reboot?)"
        pytest.skip(f"{NO_MODULE}: {why}")
    return proc.content_string
