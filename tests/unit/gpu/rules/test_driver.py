"""provision/gpu/rules/driver.py: the driver source on the host's OS, a loaded driver of another branch."""

import pytest

from tests.unit.gpu.resolver_cases import RTX_3090, Case, assert_resolves, debian, ubuntu

CASES = [
    Case(
        "Debian's driver on Ubuntu",
        ubuntu("24.04", RTX_3090),
        {"nvidia_driver_source": "debian", "nvidia_driver_branch": "535"},
        ["nvidia_driver"],
        problems=["nvidia_driver_source debian is Debian's own driver and this host runs Ubuntu 24.04"],
    ),
    Case(
        "Debian's driver at another branch",
        debian(RTX_3090),
        {"nvidia_driver_branch": "570"},
        ["nvidia_driver"],
        problems=[
            "Debian 12 ships driver branch 535 only; nvidia_driver_branch is 570. "
            "Use nvidia_driver_branch: 535, or nvidia_driver_source: cuda-repo for 570."
        ],
    ),
    Case(
        "Ubuntu's driver on Debian",
        debian(RTX_3090),
        {"nvidia_driver_source": "ubuntu", "nvidia_driver_branch": "570"},
        ["nvidia_driver"],
        problems=[
            "nvidia_driver_source ubuntu installs Ubuntu's packaged driver and this host runs Debian 12"
        ],
    ),
    Case(
        "a loaded driver of another branch is a note",
        ubuntu("24.04", RTX_3090, driver_loaded="535.183.01"),
        {},
        ["nvidia_driver"],
        notes=[
            "The loaded driver is 535.183.01; provisioning installs branch 580",
            "The installed driver branch 535 reached its end of life in 2026-06 (no more security fixes); "
            "move to 580, the long-term branch, supported to 2028-06",
        ],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_resolve(case):
    assert_resolves(case)
