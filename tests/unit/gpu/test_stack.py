"""The compatibility resolver, table-driven: facts + variables + components -> stack, problems."""

import pytest

from provision.gpu.defaults import defaults
from provision.gpu.model import HostFacts, Stack
from provision.gpu.stack import recommend, resolve
from tests.unit.gpu.resolver_cases import (
    DEBIAN_DEFAULTS,
    DRIVER_CUDA,
    GTX_780,
    GTX_1080,
    NO_OLLAMA,
    RTX_3090,
    RTX_4090,
    RTX_5090,
    Case,
    assert_resolves,
    debian,
    ubuntu,
)

CASES = [
    Case(
        "issue example: CUDA 12.8 on branch 535",
        ubuntu("24.04", RTX_4090),
        {"cuda_version": "12.8", "nvidia_driver_branch": "535"},
        DRIVER_CUDA,
        problems=["CUDA 12.8 needs driver >= 570; nvidia_driver_branch is 535. Use 580 or CUDA 12.2."],
    ),
    Case(
        "Debian 12 defaults are valid",
        debian(RTX_3090),
        {},
        NO_OLLAMA,
        stack=DEBIAN_DEFAULTS,
        notes=["open kernel modules are recommended for Turing and newer"],
    ),
    Case(
        "RTX 5090 on Debian's defaults",
        debian(RTX_5090),
        {},
        NO_OLLAMA,
        problems=[
            "Blackwell GPUs (GeForce RTX 5090) need driver >= 570; nvidia_driver_branch is 535. "
            "Use nvidia_driver_source: cuda-repo with nvidia_driver_branch: 580.",
            "Use nvidia_driver_flavor: open with nvidia_driver_source: cuda-repo and "
            "nvidia_driver_branch: 580",
            "Blackwell GPUs (GeForce RTX 5090) need CUDA >= 12.8; cuda_version is 11.8. "
            "Use cuda_version: 12.8 or newer with cuda_source: cuda-repo.",
        ],
    ),
    Case(
        "RTX 5090 on Debian with NVIDIA's repo",
        debian(RTX_5090),
        {
            "nvidia_driver_source": "cuda-repo",
            "nvidia_driver_branch": "570",
            "nvidia_driver_flavor": "open",
            "cuda_source": "cuda-repo",
            "cuda_version": "12.8",
        },
        NO_OLLAMA,
    ),
    Case(
        "NVIDIA's repo for Ubuntu on arm64 is sbsa",
        HostFacts("ubuntu", "24.04", "aarch64", (RTX_3090,)),
        {},
        NO_OLLAMA,
    ),
    Case(
        "rules of unselected components do not apply",
        ubuntu("24.04", GTX_1080),
        {"cuda_version": "12.8", "nvidia_driver_branch": "590", "cudnn_source": "distro"},
        ["base", "docker", "conda"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_resolve(case):
    assert_resolves(case)


def test_problem_names_its_variables():
    result = resolve({"cuda_version": "12.8", "nvidia_driver_branch": "535"}, ubuntu(), DRIVER_CUDA)
    assert result.problems[0].variables == ("cuda_version", "nvidia_driver_branch")


def test_recommend_keeps_defaults_that_fit():
    stack, reasons = recommend(ubuntu("24.04", RTX_4090))
    assert stack == defaults(ubuntu("24.04", RTX_4090))
    assert reasons[0].startswith("Ubuntu 24.04 defaults: driver 580 (open kernel modules)")


def test_recommend_moves_a_blackwell_debian_host_to_nvidias_repo():
    stack, reasons = recommend(debian(RTX_5090))
    assert stack == Stack("cuda-repo", "580", "open", "cuda-repo", "12.8", "cuda-repo", "9")
    assert any("The defaults do not fit this host" in r for r in reasons)
    assert any("nvidia_driver_source: cuda-repo (default debian)" in r for r in reasons)
    assert resolve(stack.as_vars(), debian(RTX_5090), ["nvidia_driver", "cuda", "cudnn"]).ok


def test_recommend_explains_when_nothing_fits():
    stack, reasons = recommend(ubuntu("22.04", GTX_780))
    assert stack == defaults(ubuntu("22.04", GTX_780))
    assert any(r.startswith("No stack rigforge knows fits this host: Kepler GPUs") for r in reasons)
