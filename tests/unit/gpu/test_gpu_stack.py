"""The compatibility resolver, table-driven: facts + variables + components -> stack, problems."""

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from provision.gpu import pci
from provision.gpu.parsers import GpuDevice
from provision.gpu.stack import (
    FIRST_TURING_DEVICE_ID,
    HostFacts,
    Stack,
    cuda_repo,
    cudnn_package,
    defaults,
    newest_cuda_for_branch,
    recommend,
    resolve,
)


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
        "Debian 12 with every variable spelled auto",
        debian(RTX_3090),
        dict.fromkeys(DEBIAN_DEFAULTS, "auto"),
        NO_OLLAMA,
        stack=DEBIAN_DEFAULTS,
    ),
    Case(
        "Debian cudnn from the distro",
        debian(RTX_3090),
        {"cudnn_source": "distro"},
        NO_OLLAMA,
        problems=["only downloads cuDNN from NVIDIA at install time and installs nothing non-interactively"],
    ),
    Case(
        "RTX 5090 with proprietary modules",
        ubuntu("24.04", RTX_5090),
        {"nvidia_driver_flavor": "proprietary"},
        NO_OLLAMA,
        problems=["Blackwell GPUs (GeForce RTX 5090) work only with the open kernel modules"],
    ),
    Case(
        "GTX 1080 with open modules",
        ubuntu("24.04", GTX_1080),
        {"nvidia_driver_flavor": "open"},
        NO_OLLAMA,
        problems=["open kernel modules need Turing or newer; GeForce GTX 1080 is Pascal"],
    ),
    Case(
        "GTX 1080 on branch 590",
        ubuntu("24.04", GTX_1080),
        {"nvidia_driver_branch": "590"},
        ["nvidia_driver"],
        problems=[
            "Pascal GPUs (GeForce GTX 1080) are supported up to driver branch 580; "
            "nvidia_driver_branch is 590. Use 580."
        ],
    ),
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
    Case(
        "Secure Boot enforcing with Debian's DKMS driver",
        debian(RTX_3090, secure_boot="enabled"),
        {},
        NO_OLLAMA,
        problems=["Secure Boot is enforcing on this host and nvidia_driver_source is debian"],
        notes=[],
    ),
    Case(
        "Secure Boot enabled but validation disabled in shim",
        debian(RTX_3090, secure_boot="enabled", secure_boot_validation_disabled=True),
        {},
        NO_OLLAMA,
        stack=DEBIAN_DEFAULTS,
    ),
    Case(
        "Secure Boot enforcing with NVIDIA's repo on Ubuntu",
        ubuntu("22.04", RTX_4090, secure_boot="enabled"),
        {"nvidia_driver_source": "cuda-repo"},
        NO_OLLAMA,
        problems=[
            "Use nvidia_driver_source: ubuntu (Canonical-signed prebuilt modules via ubuntu-drivers), "
            "or enroll a MOK at the console"
        ],
    ),
    Case(
        "Secure Boot enforcing with Ubuntu's signed modules",
        ubuntu("22.04", RTX_4090, secure_boot="enabled"),
        {},
        NO_OLLAMA,
        stack={"nvidia_driver_source": "ubuntu", "nvidia_driver_flavor": "open"},
    ),
    Case(
        "Secure Boot state unknown",
        debian(RTX_3090, secure_boot="unknown"),
        {},
        NO_OLLAMA,
        notes=["The Secure Boot state is unknown"],
    ),
    Case(
        "no facts at all: Ubuntu defaults and a note",
        HostFacts(),
        {},
        NO_OLLAMA,
        stack={**UBUNTU_DEFAULTS, "nvidia_driver_flavor": "open"},
        notes=["The host was not probed"],
    ),
    Case(
        "probed host without an NVIDIA GPU",
        ubuntu("22.04"),
        {},
        NO_OLLAMA,
        stack={"nvidia_driver_flavor": "open"},
        notes=["No NVIDIA GPU was found"],
    ),
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
        "RTX 5090 next to a GTX 1080",
        ubuntu("24.04", RTX_5090, GTX_1080),
        {},
        ["nvidia_driver"],
        problems=[
            "No driver flavor drives both GeForce RTX 5090 (open kernel modules only) and "
            "GeForce GTX 1080 (proprietary only)"
        ],
    ),
    Case(
        "RTX 5090 next to an RTX 3080-class Ampere card is fine",
        ubuntu("24.04", RTX_5090, RTX_3090),
        {},
        NO_OLLAMA,
        stack={"nvidia_driver_flavor": "open"},
    ),
    Case(
        "Kepler is refused",
        ubuntu("22.04", GTX_780),
        {},
        ["nvidia_driver"],
        problems=[
            "Kepler GPUs (GeForce GTX 780) are not supported by any current driver branch; the last was 470"
        ],
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
    Case(
        "CUDA 13 on a Pascal card",
        ubuntu("24.04", GTX_1080),
        {"nvidia_driver_branch": "580", "cuda_version": "13.0"},
        DRIVER_CUDA,
        problems=["CUDA 13 dropped Pascal GPUs (GeForce GTX 1080); cuda_version is 13.0. Use CUDA 12.9."],
    ),
    Case(
        "NVIDIA's repo has no Debian build for arm64",
        HostFacts("debian", "12", "aarch64", (RTX_3090,)),
        {},
        ["cudnn"],
        problems=["NVIDIA's CUDA repo has no debian12 build for aarch64; cudnn_source is cuda-repo"],
    ),
    Case(
        "NVIDIA's repo for Ubuntu on arm64 is sbsa",
        HostFacts("ubuntu", "24.04", "aarch64", (RTX_3090,)),
        {},
        NO_OLLAMA,
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
        "rules of unselected components do not apply",
        ubuntu("24.04", GTX_1080),
        {"cuda_version": "12.8", "nvidia_driver_branch": "590", "cudnn_source": "distro"},
        ["base", "docker", "conda"],
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
    Case(
        "an unsupported OS",
        ubuntu("20.04", RTX_3090),
        {},
        NO_OLLAMA,
        problems=[
            "Ubuntu 20.04 is not a supported OS for cuda, cudnn, nvidia_driver; rigforge supports "
            "Ubuntu 22.04, Ubuntu 24.04, Ubuntu 26.04, Debian 12, Debian 13."
        ],
    ),
    Case(
        "a GPU missing from the PCI table",
        ubuntu("24.04", UNLISTED),
        {},
        NO_OLLAMA,
        stack={"nvidia_driver_flavor": "open"},
        notes=["GPU 10de:3340 (10de:3340) is not in rigforge's PCI table"],
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


def test_problem_names_its_variables():
    result = resolve({"cuda_version": "12.8", "nvidia_driver_branch": "535"}, ubuntu(), DRIVER_CUDA)
    assert result.problems[0].variables == ("cuda_version", "nvidia_driver_branch")


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


def test_cudnn_package():
    assert cudnn_package("9", "12.8") == "cudnn9-cuda-12"
    assert cudnn_package("9", "11.8") == "cudnn9-cuda-11"
    assert cudnn_package("9", "13.0") == "cudnn9-cuda-13"
    assert cudnn_package("8", "12.2") == "libcudnn8"
    with pytest.raises(ValueError, match=r"cuDNN 8 is built for CUDA 11 and 12, not CUDA 13\.0"):
        cudnn_package("8", "13.0")
    with pytest.raises(ValueError, match="unknown cuDNN major"):
        cudnn_package("7", "11.0")


def test_cuda_repo_and_branch_helpers():
    assert cuda_repo("ubuntu", "22.04", "x86_64") == "ubuntu2204/x86_64"
    assert cuda_repo("ubuntu", "24.04", "aarch64") == "ubuntu2404/sbsa"
    assert cuda_repo("debian", "12", "x86_64") == "debian12/x86_64"
    assert cuda_repo("debian", "12", "aarch64") is None
    assert cuda_repo("ubuntu", "20.04", "x86_64") is None
    assert newest_cuda_for_branch(535) == "12.2"
    assert newest_cuda_for_branch(580) == "13.0"  # 13.1 needs 590.44.01 (Table 3)
    assert newest_cuda_for_branch(615) == "13.5"
    assert newest_cuda_for_branch(470) == "11.8"
    assert newest_cuda_for_branch(440) is None


def test_facts_from_parsed_outputs():
    from provision.gpu import parsers

    facts = HostFacts.from_parsed(
        parsers.parse_os_release('ID=debian\nVERSION_ID="12"\n'),
        "x86_64",
        parsers.parse_lspci(
            "01:00.0 VGA compatible controller [0300]: NVIDIA Corporation Device [10de:2b85]\n"
        ),
        parsers.parse_mokutil_sb_state("SecureBoot enabled\nSecureBoot validation is disabled in shim\n"),
        parsers.parse_proc_driver_version("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.216.01  x\n"),
    )
    assert (facts.os_id, facts.os_version, facts.driver_loaded) == ("debian", "12", "535.216.01")
    assert facts.secure_boot == "enabled" and not facts.secure_boot_enforcing
    assert facts.gpus[0].architecture == "Blackwell"


ROLES = Path(__file__).resolve().parents[3] / "roles"


def test_the_roles_take_turing_from_the_same_device_id():
    facts = yaml.safe_load((ROLES / "gpu_stack" / "vars" / "main.yml").read_text())
    assert facts["gpu_stack_first_turing_device_id"] == FIRST_TURING_DEVICE_ID
    driver = yaml.safe_load((ROLES / "nvidia_driver" / "vars" / "main.yml").read_text())
    assert driver["__nvidia_driver_open_min_device_id"] == "{{ gpu_stack_first_turing_device_id }}"
    cudnn = yaml.safe_load((ROLES / "cudnn" / "vars" / "main.yml").read_text())
    assert "gpu_stack_first_turing_device_id" in cudnn["__cudnn_pre_turing"]
