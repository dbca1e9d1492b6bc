"""provision/gpu/rules/host.py: an unprobed host, an unsupported OS, GPUs rigforge does not know."""

import pytest

from provision.gpu.model import HostFacts
from tests.unit.gpu.resolver_cases import (
    NO_OLLAMA,
    RTX_3090,
    UBUNTU_DEFAULTS,
    UNLISTED,
    Case,
    assert_resolves,
    ubuntu,
)

CASES = [
    Case(
        "no facts at all: Ubuntu defaults and a note",
        HostFacts(),
        {},
        NO_OLLAMA,
        stack={**UBUNTU_DEFAULTS, "nvidia_driver_flavor": "open"},
        notes=["The host was not probed"],
    ),
    Case(
        "probed host without an NVIDIA GPU",
        ubuntu("22.04"),
        {},
        NO_OLLAMA,
        stack={"nvidia_driver_flavor": "open"},
        notes=["No NVIDIA GPU was found"],
    ),
    Case(
        "an unsupported OS",
        ubuntu("20.04", RTX_3090),
        {},
        NO_OLLAMA,
        problems=[
            "Ubuntu 20.04 is not a supported OS for cuda, cudnn, nvidia_driver; rigforge supports "
            "Ubuntu 22.04, Ubuntu 24.04, Ubuntu 26.04, Debian 12, Debian 13."
        ],
    ),
    Case(
        "a GPU missing from the PCI table",
        ubuntu("24.04", UNLISTED),
        {},
        NO_OLLAMA,
        stack={"nvidia_driver_flavor": "open"},
        notes=["GPU 10de:3340 (10de:3340) is not in rigforge's PCI table"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_resolve(case):
    assert_resolves(case)
