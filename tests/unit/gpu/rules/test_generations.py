"""provision/gpu/rules/generations.py: the branches and flavors each GPU generation allows."""

import pytest

from tests.unit.gpu.resolver_cases import (
    GTX_780,
    GTX_1080,
    NO_OLLAMA,
    RTX_3090,
    RTX_5090,
    Case,
    assert_resolves,
    ubuntu,
)

CASES = [
    Case(
        "RTX 5090 with proprietary modules",
        ubuntu("24.04", RTX_5090),
        {"nvidia_driver_flavor": "proprietary"},
        NO_OLLAMA,
        problems=["Blackwell GPUs (GeForce RTX 5090) work only with the open kernel modules"],
    ),
    Case(
        "GTX 1080 with open modules",
        ubuntu("24.04", GTX_1080),
        {"nvidia_driver_flavor": "open"},
        NO_OLLAMA,
        problems=["open kernel modules need Turing or newer; GeForce GTX 1080 is Pascal"],
    ),
    Case(
        "GTX 1080 on branch 590",
        ubuntu("24.04", GTX_1080),
        {"nvidia_driver_branch": "590"},
        ["nvidia_driver"],
        problems=[
            "Pascal GPUs (GeForce GTX 1080) are supported up to driver branch 580; "
            "nvidia_driver_branch is 590. Use 580."
        ],
    ),
    Case(
        "RTX 5090 next to a GTX 1080",
        ubuntu("24.04", RTX_5090, GTX_1080),
        {},
        ["nvidia_driver"],
        problems=[
            "No driver flavor drives both GeForce RTX 5090 (open kernel modules only) and "
            "GeForce GTX 1080 (proprietary only)"
        ],
    ),
    Case(
        "RTX 5090 next to an RTX 3080-class Ampere card is fine",
        ubuntu("24.04", RTX_5090, RTX_3090),
        {},
        NO_OLLAMA,
        stack={"nvidia_driver_flavor": "open"},
    ),
    Case(
        "Kepler is refused",
        ubuntu("22.04", GTX_780),
        {},
        ["nvidia_driver"],
        problems=[
            "Kepler GPUs (GeForce GTX 780) are not supported by any current driver branch; the last was 470"
        ],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_resolve(case):
    assert_resolves(case)
