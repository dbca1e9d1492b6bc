"""provision/gpu/defaults.py: what "auto" means for a host."""

from pathlib import Path

import pytest
import yaml

from provision.gpu.defaults import FIRST_TURING_DEVICE_ID, defaults
from provision.gpu.model import HostFacts
from provision.gpu.stack import resolve
from tests.unit.gpu.resolver_cases import (
    ALL,
    DEBIAN_DEFAULTS,
    FERMI,
    GTX_1080,
    NO_OLLAMA,
    OS_KEYS,
    RTX_3090,
    RTX_4090,
    RTX_5090,
    UBUNTU_DEFAULTS,
    Case,
    assert_resolves,
    debian,
    ubuntu,
)

CASES = [
    Case(
        "Ubuntu with a GTX 1080 defaults to proprietary",
        ubuntu("22.04", GTX_1080),
        {},
        ALL,
        stack={
            "nvidia_driver_source": "ubuntu",
            "nvidia_driver_branch": "580",
            "nvidia_driver_flavor": "proprietary",
        },
    ),
    Case(
        "Ubuntu with an RTX 4090 defaults to open",
        ubuntu("24.04", RTX_4090),
        {},
        ALL,
        stack={"nvidia_driver_flavor": "open", "cuda_version": "12.8", "cudnn_version": "9"},
    ),
    Case(
        "an unlisted GPU below the first Turing ID defaults to proprietary",
        ubuntu("22.04", FERMI),
        {},
        NO_OLLAMA,
        stack={"nvidia_driver_flavor": "proprietary"},
        notes=["GPU GeForce GTX 460 (10de:0e22) is not in rigforge's PCI table"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_resolve(case):
    assert_resolves(case)


EXPECTED_DEFAULTS = {
    ("ubuntu", "22.04"): UBUNTU_DEFAULTS,
    ("ubuntu", "24.04"): UBUNTU_DEFAULTS,
    ("ubuntu", "26.04"): UBUNTU_DEFAULTS,
    ("debian", "12"): {**DEBIAN_DEFAULTS, "nvidia_driver_flavor": "open"},
    ("debian", "13"): {**DEBIAN_DEFAULTS, "nvidia_driver_branch": "550", "nvidia_driver_flavor": "open",
                       "cuda_version": "12.4"},
}


@pytest.mark.parametrize("key", OS_KEYS)
def test_every_default_row_fits_its_own_os(key):
    facts = HostFacts(*key, "x86_64", (RTX_3090,))
    assert [p.message for p in resolve({}, facts, NO_OLLAMA).problems] == []
    expected = dict(EXPECTED_DEFAULTS[key])
    if key == ("debian", "12"):
        expected["nvidia_driver_flavor"] = "proprietary"  # bookworm's own packages are proprietary only
    assert defaults(facts).as_vars() == expected


def test_defaults_never_say_auto():
    for facts in (HostFacts(), debian(), ubuntu("22.04", GTX_1080), ubuntu("24.04", RTX_5090)):
        assert "auto" not in defaults(facts).as_vars().values()
        assert "open-from-turing" not in defaults(facts).as_vars().values()


ROLES = Path(__file__).resolve().parents[3] / "roles"


def test_the_roles_take_turing_from_the_same_device_id():
    facts = yaml.safe_load((ROLES / "gpu_stack" / "vars" / "main.yml").read_text())
    assert facts["gpu_stack_first_turing_device_id"] == FIRST_TURING_DEVICE_ID
    driver = yaml.safe_load((ROLES / "nvidia_driver" / "vars" / "main.yml").read_text())
    assert driver["__nvidia_driver_open_min_device_id"] == "{{ gpu_stack_first_turing_device_id }}"
    cudnn = yaml.safe_load((ROLES / "cudnn" / "vars" / "main.yml").read_text())
    assert "gpu_stack_first_turing_device_id" in cudnn["__cudnn_pre_turing"]
