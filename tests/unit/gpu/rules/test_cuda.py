"""provision/gpu/rules/cuda.py: a CUDA the source has, that the driver runs, for the GPUs."""

import pytest

from tests.unit.gpu.resolver_cases import DRIVER_CUDA, GTX_1080, RTX_3090, Case, assert_resolves, ubuntu

CASES = [
    Case(
        "distro CUDA with another version",
        ubuntu("22.04", RTX_3090),
        {"cuda_source": "distro", "cuda_version": "12.8"},
        DRIVER_CUDA,
        problems=[
            "Ubuntu 22.04's own CUDA (cuda_source: distro) is 11.5; cuda_version is 12.8. "
            "Use cuda_version: 11.5 or cuda_source: cuda-repo."
        ],
    ),
    Case(
        "distro CUDA at the distro's version",
        ubuntu("24.04", RTX_3090),
        {"cuda_source": "distro", "cuda_version": "12.0"},
        DRIVER_CUDA,
        stack={"cuda_source": "distro", "cuda_version": "12.0"},
    ),
    Case(
        "CUDA 13 on a Pascal card",
        ubuntu("24.04", GTX_1080),
        {"nvidia_driver_branch": "580", "cuda_version": "13.0"},
        DRIVER_CUDA,
        problems=["CUDA 13 dropped Pascal GPUs (GeForce GTX 1080); cuda_version is 13.0. Use CUDA 12.9."],
    ),
    Case(
        "CUDA 11.8 is older than the ubuntu2404 repo",
        ubuntu("24.04", RTX_3090),
        {"cuda_version": "11.8"},
        DRIVER_CUDA,
        problems=[
            "NVIDIA's ubuntu2404 repo starts at CUDA 12.5; cuda_version is 11.8. "
            "Use cuda_version: 12.5 or newer."
        ],
    ),
    Case(
        "CUDA alone is checked against the loaded driver",
        ubuntu("24.04", RTX_3090, driver_loaded="535.183.01"),
        {"cuda_version": "12.8"},
        ["cuda"],
        problems=[
            "CUDA 12.8 needs driver >= 570; the loaded driver is 535.183.01 (nvidia_driver is not "
            "selected). Install driver 570 or use CUDA 12.2."
        ],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_resolve(case):
    assert_resolves(case)
