"""provision/gpu/rules/secure_boot.py: DKMS modules under an enforcing Secure Boot."""

import pytest

from tests.unit.gpu.resolver_cases import (
    DEBIAN_DEFAULTS,
    NO_OLLAMA,
    RTX_3090,
    RTX_4090,
    Case,
    assert_resolves,
    debian,
    ubuntu,
)

CASES = [
    Case(
        "Secure Boot enforcing with Debian's DKMS driver",
        debian(RTX_3090, secure_boot="enabled"),
        {},
        NO_OLLAMA,
        problems=["Secure Boot is enforcing on this host and nvidia_driver_source is debian"],
        notes=[],
    ),
    Case(
        "Secure Boot enabled but validation disabled in shim",
        debian(RTX_3090, secure_boot="enabled", secure_boot_validation_disabled=True),
        {},
        NO_OLLAMA,
        stack=DEBIAN_DEFAULTS,
    ),
    Case(
        "Secure Boot enforcing with NVIDIA's repo on Ubuntu",
        ubuntu("22.04", RTX_4090, secure_boot="enabled"),
        {"nvidia_driver_source": "cuda-repo"},
        NO_OLLAMA,
        problems=[
            "Use nvidia_driver_source: ubuntu (Canonical-signed prebuilt modules via ubuntu-drivers), "
            "or enroll a MOK at the console"
        ],
    ),
    Case(
        "Secure Boot enforcing with Ubuntu's signed modules",
        ubuntu("22.04", RTX_4090, secure_boot="enabled"),
        {},
        NO_OLLAMA,
        stack={"nvidia_driver_source": "ubuntu", "nvidia_driver_flavor": "open"},
    ),
    Case(
        "Secure Boot state unknown",
        debian(RTX_3090, secure_boot="unknown"),
        {},
        NO_OLLAMA,
        notes=["The Secure Boot state is unknown"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_resolve(case):
    assert_resolves(case)
