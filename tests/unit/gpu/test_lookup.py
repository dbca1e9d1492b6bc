"""provision/gpu/lookup.py: the facts table looked up for one host."""

from provision.gpu.lookup import cuda_repo, labels, os_key, os_name, version
from provision.gpu.model import HostFacts
from tests.unit.gpu.resolver_cases import GTX_1080, RTX_3090


def test_cuda_repo():
    assert cuda_repo("ubuntu", "22.04", "x86_64") == "ubuntu2204/x86_64"
    assert cuda_repo("ubuntu", "24.04", "aarch64") == "ubuntu2404/sbsa"
    assert cuda_repo("debian", "12", "x86_64") == "debian12/x86_64"
    assert cuda_repo("debian", "12", "aarch64") is None
    assert cuda_repo("ubuntu", "20.04", "x86_64") is None


def test_os_key_takes_debians_major_and_names_unknown_oses():
    assert os_key(HostFacts("debian", "12.5")) == ("debian", "12")
    assert os_key(HostFacts("ubuntu", "24.04")) == ("ubuntu", "24.04")
    assert os_key(HostFacts()) is None
    assert os_name(("ubuntu", "20.04")) == "Ubuntu 20.04" and os_name(None) == "this host"


def test_versions_compare_as_numbers():
    assert version("12.10") > version("12.9")


def test_labels_name_each_gpu_once():
    assert labels([(RTX_3090, "Ampere"), (RTX_3090, "Ampere"), (GTX_1080, "Pascal")]) == (
        "GeForce RTX 3090, GeForce GTX 1080")
