"""provision/gpu/variables.py: malformed values are named, YAML's numbers are read back."""

import pytest

from provision.gpu.variables import normalise
from tests.unit.gpu.resolver_cases import (
    DEBIAN_DEFAULTS,
    NO_OLLAMA,
    RTX_3090,
    RTX_4090,
    UBUNTU_DEFAULTS,
    Case,
    assert_resolves,
    debian,
    ubuntu,
)

CASES = [
    Case(
        "Debian 12 with every variable spelled auto",
        debian(RTX_3090),
        dict.fromkeys(DEBIAN_DEFAULTS, "auto"),
        NO_OLLAMA,
        stack=DEBIAN_DEFAULTS,
    ),
    Case(
        "malformed values are named, with what is allowed",
        ubuntu("24.04", RTX_3090),
        {
            "nvidia_driver_branch": "57",
            "cuda_version": "12.7",
            "nvidia_driver_flavor": "closed",
            "cudnn_version": "9.1",
            "cuda_source": "pip",
        },
        NO_OLLAMA,
        stack=UBUNTU_DEFAULTS | {"nvidia_driver_flavor": "open"},
        problems=[
            "nvidia_driver_branch is '57'; use a 3-digit driver branch",
            "nvidia_driver_flavor is 'closed'; allowed: open, proprietary or auto.",
            "cuda_source is 'pip'; allowed: cuda-repo, distro or auto.",
            "cuda_version 12.7 is not a CUDA release rigforge knows",
            "cudnn_version is '9.1'; use a cuDNN major version (8, 9), or auto.",
        ],
    ),
    Case(
        "cuDNN 8 is known to the tables but not installed by the cudnn role",
        ubuntu("24.04", RTX_3090),
        {"cudnn_version": "8"},
        NO_OLLAMA,
        stack=UBUNTU_DEFAULTS | {"nvidia_driver_flavor": "open"},
        problems=['cudnn_version 8 cannot be installed by rigforge\'s cudnn role, which installs cuDNN 9 '
                  'or later (NVIDIA\'s cudnn9-cuda-<major> packages); use cudnn_version: "9", or auto.'],
    ),
    Case(
        "YAML numbers are read, with a note about quoting",
        ubuntu("24.04", RTX_3090),
        {"nvidia_driver_branch": 580, "cuda_version": 12.8, "cudnn_version": 9},
        NO_OLLAMA,
        stack={"nvidia_driver_branch": "580", "cuda_version": "12.8", "cudnn_version": "9"},
        notes=['quote it ("12.8")'],
    ),
    Case(
        "cuDNN 8 with CUDA 13",
        ubuntu("24.04", RTX_4090),
        {"nvidia_driver_branch": "580", "cuda_version": "13.0", "cudnn_version": "8"},
        NO_OLLAMA,
        # Refused before the CUDA pairing is looked at: the cudnn role does not install 8.
        problems=['cudnn_version 8 cannot be installed by rigforge\'s cudnn role'],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_resolve(case):
    assert_resolves(case)


def test_normalise_reads_yaml_numbers_and_auto():
    assert normalise("nvidia_driver_branch", 580) == ("580", None, None)
    assert normalise("nvidia_driver_branch", "AUTO") == (None, None, None)
    assert normalise("cuda_version", None) == (None, None, None)
    value, problem, note = normalise("cuda_version", 12.8)
    assert value == "12.8" and problem is None and 'quote it ("12.8")' in note
    _, problem, _ = normalise("cuda_source", "pip")
    assert problem.variables == ("cuda_source",)
