"""provision/gpu/rules/cudnn.py: cuDNN from NVIDIA's repo, for the stack's CUDA."""

import pytest

from provision.gpu.model import HostFacts
from tests.unit.gpu.resolver_cases import NO_OLLAMA, RTX_3090, Case, assert_resolves, debian

CASES = [
    Case(
        "Debian cudnn from the distro",
        debian(RTX_3090),
        {"cudnn_source": "distro"},
        NO_OLLAMA,
        problems=["only downloads cuDNN from NVIDIA at install time and installs nothing non-interactively"],
    ),
    Case(
        "NVIDIA's repo has no Debian build for arm64",
        HostFacts("debian", "12", "aarch64", (RTX_3090,)),
        {},
        ["cudnn"],
        problems=["NVIDIA's CUDA repo has no debian12 build for aarch64; cudnn_source is cuda-repo"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_resolve(case):
    assert_resolves(case)
