"""PCI device ID -> chip -> architecture, checked against IDs listed in pci.ids."""

import pytest

from provision.gpu import pci


@pytest.mark.parametrize(
    ("device_id", "chip", "architecture"),
    [
        ("1004", "GK110", "Kepler"),  # GeForce GTX 780
        ("1380", "GM107", "Maxwell"),  # GeForce GTX 750 Ti
        ("13c2", "GM204", "Maxwell"),  # GeForce GTX 970
        ("174d", "GM108", "Maxwell"),  # GeForce MX130 (laptop, outside the main GM108 range)
        ("1b80", "GP104", "Pascal"),  # GeForce GTX 1080
        ("1db4", "GV100", "Volta"),  # Tesla V100 PCIe 16GB
        ("1e04", "TU102", "Turing"),  # GeForce RTX 2080 Ti
        ("1eb8", "TU104", "Turing"),  # Tesla T4
        ("1f91", "TU117", "Turing"),  # GeForce GTX 1650 Mobile / Max-Q
        ("20b0", "GA100", "Ampere"),  # A100 SXM4 40GB
        ("2204", "GA102", "Ampere"),  # GeForce RTX 3090
        ("2236", "GA102", "Ampere"),  # A10
        ("25a2", "GA107", "Ampere"),  # GeForce RTX 3050 Mobile
        ("2684", "AD102", "Ada"),  # GeForce RTX 4090
        ("26b9", "AD102", "Ada"),  # L40S
        ("27b8", "AD104", "Ada"),  # L4
        ("28e1", "AD107", "Ada"),  # GeForce RTX 4050 Max-Q / Mobile
        ("2330", "GH100", "Hopper"),  # H100 SXM5 80GB
        ("2342", "GH100", "Hopper"),  # GH200
        ("2901", "GB100", "Blackwell"),  # B200
        ("2b85", "GB202", "Blackwell"),  # GeForce RTX 5090
        ("2c18", "GB203", "Blackwell"),  # GeForce RTX 5090 Max-Q / Mobile
        ("2e12", "GB20B", "Blackwell"),  # GB10
        ("31c2", "GB110", "Blackwell"),  # GB300
    ],
)
def test_real_device_ids(device_id, chip, architecture):
    assert pci.architecture(device_id) == architecture
    assert pci.chip(device_id).name == chip


@pytest.mark.parametrize("form", [0x2684, "2684", "0x2684", "10de:2684", "10DE:2684", " 2684\n"])
def test_accepted_forms(form):
    assert pci.architecture(form) == "Ada"


@pytest.mark.parametrize(
    "device_id",
    [
        "10f8",  # TU104 HD Audio Controller
        "1ad8",  # TU104 USB 3.1 Host Controller
        "1ad9",  # TU104 USB Type-C UCSI Controller
        "22ba",  # AD102 High Definition Audio Controller
        "22e8",  # GB202 High Definition Audio Controller
        "0e22",  # GF104 GeForce GTX 460 (Fermi, not covered)
        "1200",  # GF114 GeForce GTX 560 Ti (Fermi)
        "ffff",
        "8086:2684",  # another vendor
        "26b",
        "2684x",
        "",
        -1,
        0x10000,
        True,
    ],
)
def test_unknown_ids(device_id):
    assert pci.architecture(device_id) is None


def test_ranges_are_sorted_disjoint_and_named():
    previous_last = -1
    for first, last, chip in pci.DEVICE_ID_RANGES:
        assert previous_last < first <= last, hex(first)
        assert chip in pci.CHIPS
        previous_last = last
    assert {c.architecture for c in pci.CHIPS.values()} == set(pci.ARCHITECTURES)


def test_compute_capability_and_generation():
    assert pci.compute_capability("Maxwell") == (5, 0)
    assert pci.compute_capability("Pascal") == (6, 0)
    assert pci.compute_capability("Blackwell") == (10, 0)
    assert pci.compute_capability("Fermi") is None
    assert pci.chip("1b80").compute_capability == (6, 1)
    assert pci.generation("Turing") > pci.generation("Volta")
    assert pci.ARCHITECTURES == (
        "Kepler",
        "Maxwell",
        "Pascal",
        "Volta",
        "Turing",
        "Ampere",
        "Ada",
        "Hopper",
        "Blackwell",
    )


def test_docstring_examples_hold():
    import doctest

    from provision.gpu import cuda_versions, cudnn, nvidia_smi, packages, stack

    for module in (pci, cuda_versions, nvidia_smi, cudnn, stack, packages):
        assert doctest.testmod(module).failed == 0, module.__name__
