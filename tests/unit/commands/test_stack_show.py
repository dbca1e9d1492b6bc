"""`rigforge stack show`: the exact packages per OS, GPU generation and source, from the table.

The expectations are the package names the sources document (NVIDIA's driver installation
guide, packages.ubuntu.com, Debian's archive), written out here by hand: a change of the
facts table that changes what a rig gets must change this file too.
"""

import json
import re

import pytest
from click.testing import CliRunner

from provision.cli import main
from provision.commands.stack_show import show
from provision.errors import UsageError

MAXWELL, PASCAL, TURING, ADA, HOPPER, BLACKWELL = (
    "10de:13c2",
    "10de:1b80",
    "10de:1e04",
    "10de:2684",
    "10de:2330",
    "10de:2b85",
)
GPU_ONLY = ("nvidia_driver", "cuda", "cudnn")
K = "<kernel>"


def _packages(shown, component):
    return next(c for c in shown.components if c["component"] == component)["packages"]


def _ubuntu_archive(branch, flavor_suffix):
    series = f"{branch}-server{flavor_suffix}"
    return [
        f"nvidia-driver-{series}",
        f"linux-modules-nvidia-{series}-{K}",
        f"linux-modules-nvidia-{series}-generic",
        f"nvidia-compute-utils-{branch}-server",
    ]


UBUNTU = ("ubuntu-22.04", "ubuntu-24.04", "ubuntu-26.04")

CASES = [
    # Ubuntu's archive, the default: Canonical-signed modules, 580, open from Turing.
    *[
        (os, gpu, (), _ubuntu_archive("580", "-open"), "cudnn9-cuda-12")
        for os in UBUNTU
        for gpu in (TURING, ADA, HOPPER, BLACKWELL)
    ],
    *[
        (os, gpu, (), _ubuntu_archive("580", ""), "cudnn9-cuda-12=9.10.2*")
        for os in UBUNTU
        for gpu in (MAXWELL, PASCAL)
    ],
    # NVIDIA's repository on Ubuntu: nvidia-open-<b> up to 580, the branch leaves the names from 590.
    *[
        (
            os,
            ADA,
            ("nvidia_driver_source=cuda-repo",),
            ["nvidia-driver-pinning-580", "nvidia-open-580", f"linux-headers-{K}"],
            "cudnn9-cuda-12",
        )
        for os in UBUNTU
    ],
    (
        "ubuntu-24.04",
        PASCAL,
        ("nvidia_driver_source=cuda-repo",),
        ["nvidia-driver-pinning-580", "cuda-drivers-580", f"linux-headers-{K}"],
        "cudnn9-cuda-12=9.10.2*",
    ),
    (
        "ubuntu-24.04",
        BLACKWELL,
        ("nvidia_driver_source=cuda-repo", "nvidia_driver_branch=595"),
        ["nvidia-driver-pinning-595", "nvidia-open", f"linux-headers-{K}"],
        "cudnn9-cuda-12",
    ),
    (
        "ubuntu-24.04",
        HOPPER,
        ("nvidia_driver_source=cuda-repo", "nvidia_driver_branch=595", "nvidia_driver_flavor=proprietary"),
        ["nvidia-driver-pinning-595", "cuda-drivers", f"linux-headers-{K}"],
        "cudnn9-cuda-12",
    ),
    # Debian 12: its own 535 (proprietary only), or NVIDIA's debian12 repository with Debian-style names.
    *[
        (
            "debian-12",
            gpu,
            (),
            [
                "nvidia-driver",
                "nvidia-kernel-dkms",
                "nvidia-smi",
                "nvidia-persistenced",
                f"linux-headers-{K}",
            ],
            "cudnn9-cuda-11=9.10.2*",
        )
        for gpu in (MAXWELL, PASCAL, TURING, ADA, HOPPER)
    ],
    *[
        (
            "debian-12",
            gpu,
            ("nvidia_driver_source=cuda-repo", "cuda_source=cuda-repo"),
            ["nvidia-driver-pinning-580", "nvidia-open", "nvidia-kernel-open-dkms", f"linux-headers-{K}"],
            "cudnn9-cuda-12",
        )
        for gpu in (TURING, ADA, HOPPER, BLACKWELL)
    ],
    (
        "debian-12",
        PASCAL,
        ("nvidia_driver_source=cuda-repo", "cuda_source=cuda-repo"),
        ["nvidia-driver-pinning-580", "nvidia-driver", "nvidia-kernel-dkms", f"linux-headers-{K}"],
        "cudnn9-cuda-12=9.10.2*",
    ),
    # Debian 13: its own 550 with both flavors, CUDA 12.4.
    *[
        (
            "debian-13",
            gpu,
            (),
            [
                "nvidia-driver",
                "nvidia-open-kernel-dkms",
                "nvidia-smi",
                "nvidia-persistenced",
                f"linux-headers-{K}",
            ],
            "cudnn9-cuda-12",
        )
        for gpu in (TURING, ADA, HOPPER)
    ],
    *[
        (
            "debian-13",
            gpu,
            (),
            [
                "nvidia-driver",
                "nvidia-kernel-dkms",
                "nvidia-smi",
                "nvidia-persistenced",
                f"linux-headers-{K}",
            ],
            "cudnn9-cuda-12=9.10.2*",
        )
        for gpu in (MAXWELL, PASCAL)
    ],
]


@pytest.mark.parametrize(
    ("os_key", "gpu", "sets", "driver", "cudnn"),
    CASES,
    ids=[f"{c[0]}-{c[1]}-{'+'.join(c[2]) or 'auto'}" for c in CASES],
)
def test_exact_packages(os_key, gpu, sets, driver, cudnn):
    shown = show(os_key, (gpu,), sets, components=GPU_ONLY)
    assert _packages(shown, "nvidia_driver") == driver
    assert _packages(shown, "cudnn") == [cudnn]
    assert not any(
        p == "cuda" or (p.startswith("cuda-drivers-") and "debian" in os_key)
        for p in _packages(shown, "nvidia_driver")
    )


def test_cuda_packages_per_source():
    assert _packages(show("ubuntu-24.04", (ADA,), (), GPU_ONLY), "cuda") == [
        "cuda-keyring",
        "cuda-toolkit-12-8",
    ]
    assert _packages(show("debian-13", (ADA,), (), GPU_ONLY), "cuda") == ["nvidia-cuda-toolkit"]
    assert show("debian-13", (ADA,), (), GPU_ONLY).stack["cuda_version"] == "12.4"


def test_holds_and_blacklist_cover_every_driver_package_of_the_os():
    debian = next(
        c for c in show("debian-12", (PASCAL,), (), GPU_ONLY).components if c["component"] == "nvidia_driver"
    )
    patterns = [hold.split(" at version ")[0] for hold in debian["holds"]]
    assert all(hold.endswith(" at version 535.*") for hold in debian["holds"])
    for name in (
        "nvidia-driver",
        "libnvidia-ml1",
        "libcuda1",
        "libnvcuvid1",
        "libglx-nvidia0",
        "xserver-xorg-video-nvidia",
        "firmware-nvidia-gsp",
    ):
        assert any(re.match(p, name) for p in patterns), name
        assert any(re.match(entry, name) for entry in debian["blacklist"]), (
            name
        )  # unattended-upgrades: re.match
    # linux-modules-nvidia-* must follow the kernel: never held.
    assert not any(re.match(p, "linux-modules-nvidia-580-server-open-generic") for p in patterns)
    ubuntu = next(
        c for c in show("ubuntu-24.04", (ADA,), (), GPU_ONLY).components if c["component"] == "nvidia_driver"
    )
    assert any(re.match(entry, "xserver-xorg-video-nvidia-580") for entry in ubuntu["blacklist"])


def test_end_of_life_and_the_branch_to_move_to_are_warned():
    notes = show("debian-12", (ADA,), (), GPU_ONLY).notes
    assert any(
        "Driver branch 535 reached its end of life in 2026-06" in n and "move to 580" in n for n in notes
    )
    assert not any("end of life" in n for n in show("ubuntu-24.04", (ADA,), (), GPU_ONLY).notes)


@pytest.mark.parametrize(
    ("os_key", "gpu", "sets", "needle"),
    [
        (
            "ubuntu-24.04",
            PASCAL,
            ("nvidia_driver_branch=590",),
            "Pascal GPUs (GP104) are supported up to driver branch 580",
        ),
        ("ubuntu-24.04", MAXWELL, ("cuda_version=13.0",), "CUDA 13 dropped Maxwell GPUs"),
        ("debian-12", BLACKWELL, (), "Blackwell GPUs (GB202) need driver >= 570"),
        (
            "ubuntu-24.04",
            ADA,
            ("nvidia_driver_branch=580", "cuda_version=13.1"),
            "CUDA 13.1 needs driver >= 590",
        ),
        ("debian-13", ADA, ("nvidia_driver_branch=580",), "Debian 13 ships driver branch 550 only"),
    ],
)
def test_a_stack_that_cannot_work_is_refused(os_key, gpu, sets, needle):
    with pytest.raises(UsageError) as refused:
        show(os_key, (gpu,), sets, GPU_ONLY)
    assert needle in str(refused.value)


def test_cli_json_and_exit_codes():
    runner = CliRunner()
    ok = runner.invoke(main, ["stack", "show", "--os", "ubuntu-24.04", "--gpu", ADA, "--json"])
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.output)
    assert data["stack"]["nvidia_driver_branch"] == "580"
    assert [c["component"] for c in data["components"]] == ["nvidia_driver", "cuda", "cudnn"]
    bad = runner.invoke(
        main, ["stack", "show", "--os", "ubuntu-24.04", "--gpu", PASCAL, "--set", "nvidia_driver_branch=590"]
    )
    assert bad.exit_code == 2 and "supported up to driver branch 580" in bad.output
    for args in (
        ["--os", "fedora-41"],
        ["--os", "ubuntu-24.04", "--gpu", "8086:1234"],
        ["--os", "ubuntu-24.04", "--set", "nonsense"],
        ["--os", "ubuntu-24.04", "--components", "x"],
    ):
        assert runner.invoke(main, ["stack", "show", *args]).exit_code == 2, args


@pytest.mark.parametrize(
    ("case", "os_key", "gpu", "sets"),
    [
        ("noble_turing", "ubuntu-24.04", "10de:2204", ()),
        ("noble_pascal", "ubuntu-24.04", PASCAL, ()),
        (
            "debian_cuda_repo_570",
            "debian-12",
            None,
            ("nvidia_driver_source=cuda-repo", "nvidia_driver_branch=570"),
        ),
        ("debian_auto", "debian-12", None, ()),
    ],
)
def test_stack_show_lists_what_the_role_installs(case, os_key, gpu, sets):
    """The role (its vars templated by Ansible for a faked host) and `stack show` agree."""
    from tests.unit.test_nvidia_driver_vars import CASES, Case

    kernel = CASES[case]["fake"]["kernel"]
    shown = show(os_key, (gpu,) if gpu else (), sets, ("nvidia_driver",), kernel=kernel)
    role = Case(case)["packages"]
    assert _packages(shown, "nvidia_driver") == role
