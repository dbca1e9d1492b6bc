"""provision/gpu/rules/ollama.py: Ollama's driver floor."""

import pytest

from tests.unit.gpu.resolver_cases import ALL, GTX_1080, RTX_3090, Case, assert_resolves, debian, ubuntu

CASES = [
    Case(
        "Ollama with a GTX 1080 on branch 550",
        ubuntu("22.04", GTX_1080),
        {"nvidia_driver_branch": "550", "cuda_version": "12.4"},
        ALL,
        problems=[
            "Ollama needs driver >= 570 for compute capability 5.0 to 6.2 GPUs (GeForce GTX 1080: "
            "Pascal, compute capability 6.1); nvidia_driver_branch is 550. Use 580."
        ],
    ),
    Case(
        "Ollama with an RTX 3090 on branch 550 is fine",
        ubuntu("22.04", RTX_3090),
        {"nvidia_driver_branch": "550", "cuda_version": "12.4"},
        ALL,
    ),
    Case(
        "Ollama on Debian's own 535",
        debian(RTX_3090),
        {},
        ALL,
        problems=[
            "Ollama needs driver >= 550; nvidia_driver_branch is 535. "
            "Use nvidia_driver_source: cuda-repo with nvidia_driver_branch: 580."
        ],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_resolve(case):
    assert_resolves(case)
