"""The resolver's table-driven cases, shared by the tests of the resolver and of its rules:
facts + variables + components -> stack, problems and notes."""

from dataclasses import dataclass, field

from provision.gpu import pci
from provision.gpu.model import HostFacts
from provision.gpu.pci_bus import GpuDevice
from provision.gpu.stack import resolve


def gpu(device_id: str, name: str, slot: str = "01:00.0") -> GpuDevice:
    return GpuDevice(slot, "0300", device_id, f"NVIDIA Corporation {name}", pci.architecture(device_id))


GTX_780 = gpu("1004", "GK110 [GeForce GTX 780]")
GTX_1080 = gpu("1b80", "GP104 [GeForce GTX 1080]")
RTX_3090 = gpu("2204", "GA102 [GeForce RTX 3090]")
RTX_4090 = gpu("2684", "AD102 [GeForce RTX 4090]")
RTX_5090 = gpu("2b85", "GB202 [GeForce RTX 5090]", slot="0a:00.0")
UNLISTED = GpuDevice("01:00.0", "0302", "3340", "NVIDIA Corporation Device", None)
FERMI = GpuDevice("01:00.0", "0300", "0e22", "NVIDIA Corporation GF104 [GeForce GTX 460]", None)

ALL = ["base", "nvidia_driver", "cuda", "cudnn", "docker", "nvidia_container_toolkit", "conda", "ollama"]
NO_OLLAMA = ALL[:-1]
DRIVER_CUDA = ["nvidia_driver", "cuda"]


def ubuntu(version="24.04", *gpus, **more) -> HostFacts:
    return HostFacts("ubuntu", version, "x86_64", tuple(gpus), **more)


def debian(*gpus, **more) -> HostFacts:
    return HostFacts("debian", "12", "x86_64", tuple(gpus), **more)


@dataclass
class Case:
    id: str
    facts: HostFacts
    host_vars: dict
    components: list[str]
    stack: dict = field(default_factory=dict)  # expected values of the resolved stack
    problems: list[str] = field(default_factory=list)  # one substring per expected problem, in order
    notes: list[str] = field(default_factory=list)  # substrings that some note must contain


# What the facts table (roles/gpu_stack/vars/main.yml) says "auto" means.
DEBIAN_DEFAULTS = {
    "nvidia_driver_source": "debian",
    "nvidia_driver_branch": "535",
    "nvidia_driver_flavor": "proprietary",
    "cuda_source": "distro",
    "cuda_version": "11.8",
    "cudnn_source": "cuda-repo",
    "cudnn_version": "9",
}
UBUNTU_DEFAULTS = {
    "nvidia_driver_source": "ubuntu",
    "nvidia_driver_branch": "580",
    "nvidia_driver_flavor": "open",
    "cuda_source": "cuda-repo",
    "cuda_version": "12.8",
    "cudnn_source": "cuda-repo",
    "cudnn_version": "9",
}
OS_KEYS = [("ubuntu", "22.04"), ("ubuntu", "24.04"), ("ubuntu", "26.04"), ("debian", "12"), ("debian", "13")]


def assert_resolves(case: Case) -> None:
    """The case's stack values, its problems (one substring each, in order) and its notes."""
    result = resolve(case.host_vars, case.facts, case.components)
    for name, value in case.stack.items():
        assert getattr(result.stack, name) == value, name
    messages = [p.message for p in result.problems]
    assert len(messages) == len(case.problems), messages
    for expected, message in zip(case.problems, messages, strict=True):
        assert expected in message
    for expected in case.notes:
        assert any(expected in note for note in result.notes), result.notes
    assert result.ok is (not case.problems)
