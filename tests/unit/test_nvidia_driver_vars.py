"""The decisions of the nvidia_driver role: its vars files, templated by Ansible's own Templar.

A case is a faked host: its facts, the role variables a user sets, and the results that the
role's probes (lspci, mokutil, apt-cache policy, dpkg-query, ...) would register. The role's
files are layered as Ansible layers them (defaults < inventory < vars/main.yml < the
vars/<distribution>.yml that tasks/resolve.yml includes < the facts it sets), and the
values are templated on demand with the filters and tests ansible-core has at run time.
"""

import base64
import functools
from pathlib import Path

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROLE = Path(__file__).resolve().parents[2] / "roles" / "nvidia_driver"
LOADER = DataLoader()


def _load(relative: str) -> dict:
    return LOADER.load_from_file(str(ROLE / relative), trusted_as_template=True) or {}


def _template(variables: dict, name: str):
    return Templar(loader=LOADER, variables=variables).template(trust_as_template(f"{{{{ {name} }}}}"))


@functools.cache
def _variables(name: str) -> dict:
    case = CASES[name]
    variables = {
        **_load("defaults/main.yml"),
        "inventory_hostname": name, "role_path": str(ROLE), "ansible_check_mode": False,
        "ansible_facts": {**case["fake"], "architecture": "x86_64",
                          "distribution_major_version": case["fake"]["distribution_version"].split(".")[0]},
        "__nvidia_driver_install": {"changed": False},
        **{k: v for k, v in case.items() if k != "fake"},
        # The facts table: the vars of the gpu_stack role, on which this role depends.
        **_load("../gpu_stack/vars/main.yml"),
        **_load("vars/main.yml"),
        **_load(f"vars/{case['fake']['distribution']}.yml"),
    }
    # tasks/resolve.yml: set_fact from the resolved_* expressions.
    for what in ("source", "branch", "flavor"):
        variables[f"__nvidia_driver_{what}"] = _template(variables, f"__nvidia_driver_resolved_{what}")
    return variables


def value(case: str, name: str):
    """The role's ``__nvidia_driver_<name>`` for a case."""
    return _template(_variables(case), f"__nvidia_driver_{name}")


# lspci -nn -d 10de: lines as real machines print them.
RTX_3090 = ("01:00.0 VGA compatible controller [0300]: NVIDIA Corporation GA102 [GeForce RTX 3090] "
            "[10de:2204] (rev a1)")
RTX_3090_AUDIO = ("01:00.1 Audio device [0403]: NVIDIA Corporation GA102 High Definition Audio Controller "
                  "[10de:1aef] (rev a1)")
GTX_1080 = ("02:00.0 VGA compatible controller [0300]: NVIDIA Corporation GP104 [GeForce GTX 1080] "
            "[10de:1b80] (rev a1)")
# A datacenter card (3D controller) with a PCI domain and an outdated pci.ids name.
H100 = "0000:41:00.0 3D controller [0302]: NVIDIA Corporation Device [10de:2330] (rev a1)"
# A Turing card's USB controller carries a GeForce name but is no GPU.
TURING_USB = (
    "01:00.2 USB controller [0c03]: NVIDIA Corporation TU102 USB 3.1 Host Controller [10de:1ad6] (rev a1)"
)

DEBIAN = {"distribution": "Debian", "distribution_version": "12.8", "kernel": "6.1.0-28-amd64"}
NOBLE = {"distribution": "Ubuntu", "distribution_version": "24.04", "kernel": "6.8.0-45-generic"}
JAMMY_HWE = {"distribution": "Ubuntu", "distribution_version": "22.04", "kernel": "6.8.0-45-generic"}
DEB = "535.309.01-0+deb12u1"
UBU = "580.95.05-0ubuntu0.24.04.2"


def plan(rows: list[tuple[str, str, str]]) -> dict:
    """A registered `apt-cache policy` result from (name, installed, candidate) rows."""
    return {"stdout": "".join(
        f"{name}:\n  Installed: {inst}\n  Candidate: {cand}\n  Version table:\n" for name, inst, cand in rows
    )}


def policy(**candidates: str) -> dict:
    """`apt-cache policy` for packages that are not installed: name -> candidate."""
    return plan([(name, "(none)", cand) for name, cand in candidates.items()])


DEBIAN_POLICY = policy(**{
    "nvidia-driver": DEB, "nvidia-kernel-dkms": DEB, "nvidia-open-kernel-dkms": "535.261.03-1",
    "nvidia-smi": DEB, "nvidia-persistenced": "535.171.04-1~deb12u1",
    "linux-headers-6.1.0-28-amd64": "6.1.119-1",
})


def ubuntu_policy(series: str, signed: bool = True, metas=("generic",)) -> dict:
    kernel, utils = "6.8.0-45-generic", series.removesuffix("-open")
    names = {f"{prefix}-{series}": UBU for prefix in (
        "nvidia-driver", "nvidia-headless", "nvidia-headless-no-dkms", "nvidia-dkms")}
    names |= {f"nvidia-utils-{utils}": UBU, f"nvidia-compute-utils-{utils}": UBU}
    names[f"linux-headers-{kernel}"] = "6.8.0-45.45"
    if signed:
        for flavour in (kernel, *metas):
            names[f"linux-modules-nvidia-{series}-{flavour}"] = "6.8.0-45.45+1"
    return policy(**names)


def kernel_images(*metas: str, kernel: str = "6.8.0-45-generic") -> dict:
    """`dpkg-query -W -f='${Package} ${db:Status-Status} ${Depends}\\n' 'linux-image-*'`."""
    lines = [f"linux-image-{kernel} installed linux-modules-{kernel}, linux-base"]
    lines += [f"linux-image-{meta} installed linux-image-{kernel}, linux-firmware" for meta in metas]
    lines.append("linux-image-5.15.0-91-generic installed linux-base")  # an older kernel
    return {"stdout_lines": lines, "rc": 0}


def dpkg(*rows: str) -> dict:
    """`dpkg-query -W -f='${Package} ${Version} ${db:Status-Want} ${db:Status-Status}\\n'`."""
    return {"stdout_lines": list(rows)}


def lspci(*lines: str) -> dict:
    return {"stdout_lines": list(lines), "rc": 0}


def mokutil(stdout: str = "", stderr: str = "", rc: int = 0, msg: str = "") -> dict:
    return {"stdout": stdout, "stderr": stderr, "rc": rc, "msg": msg}


def proc_version(text: str) -> dict:
    return {"content": base64.b64encode(text.encode()).decode()}


HEADERS_INSTALLED = {"stat": {"exists": True}}
TURING = {"__nvidia_driver_lspci": lspci(RTX_3090, RTX_3090_AUDIO, TURING_USB)}
PASCAL = {"__nvidia_driver_lspci": lspci(GTX_1080)}

CASES: dict[str, dict] = {
    "debian_auto": {"fake": DEBIAN, "__nvidia_driver_policy": DEBIAN_POLICY},
    "debian_branch_570": {"fake": DEBIAN, "nvidia_driver_branch": "570"},
    "debian_branch_570_int": {"fake": DEBIAN, "nvidia_driver_branch": 570, "nvidia_driver_source": "debian"},
    "debian_cuda_repo_570": {
        "fake": DEBIAN, "nvidia_driver_source": "cuda-repo", "nvidia_driver_branch": "570",
        "__nvidia_driver_policy": policy(**{"linux-headers-6.1.0-28-amd64": "6.1.119-1"}),
    },
    "debian_cuda_repo_ampere": {"fake": DEBIAN, "nvidia_driver_source": "cuda-repo", **TURING},
    "debian_cuda_repo_pascal": {"fake": DEBIAN, "nvidia_driver_source": "cuda-repo", **PASCAL},
    "debian_open": {"fake": DEBIAN, "nvidia_driver_flavor": "open", "__nvidia_driver_policy": DEBIAN_POLICY},
    "debian_ubuntu_source": {"fake": DEBIAN, "nvidia_driver_source": "ubuntu"},
    "debian_bad_branch": {"fake": DEBIAN, "nvidia_driver_branch": "57"},
    "debian_no_persistenced": {
        "fake": DEBIAN, "nvidia_driver_persistenced": False, "__nvidia_driver_policy": DEBIAN_POLICY,
        "__nvidia_driver_kernel_build_dir": HEADERS_INSTALLED,
    },
    "noble_turing": {
        "fake": NOBLE, **TURING, "__nvidia_driver_policy": ubuntu_policy("580-server-open"),
        "__nvidia_driver_kernel_images": kernel_images("generic", "virtual"),
    },
    "noble_pascal": {
        "fake": NOBLE, **PASCAL, "__nvidia_driver_policy": ubuntu_policy("580-server"),
        "__nvidia_driver_kernel_images": kernel_images("generic"),
    },
    "noble_mixed": {"fake": NOBLE, "__nvidia_driver_lspci": lspci(RTX_3090, GTX_1080)},
    "noble_h100": {"fake": NOBLE, "__nvidia_driver_lspci": lspci(H100)},
    "noble_no_gpu": {"fake": NOBLE, "__nvidia_driver_lspci": lspci()},
    "noble_open_on_pascal": {"fake": NOBLE, "nvidia_driver_flavor": "open",
                             "__nvidia_driver_lspci": lspci(RTX_3090, GTX_1080)},
    "noble_desktop_550": {
        "fake": NOBLE, **TURING, "nvidia_driver_ubuntu_package_set": "desktop", "nvidia_driver_branch": 550,
        "__nvidia_driver_policy": ubuntu_policy("550-open"),
        "__nvidia_driver_kernel_images": kernel_images("generic"),
    },
    "noble_headless": {
        "fake": NOBLE, "nvidia_driver_ubuntu_package_set": "headless", "nvidia_driver_persistenced": False,
        "__nvidia_driver_policy": ubuntu_policy("580-server-open"),
        "__nvidia_driver_kernel_images": kernel_images("generic"),
    },
    "noble_headless_no_signed": {
        "fake": NOBLE, "nvidia_driver_ubuntu_package_set": "headless", "nvidia_driver_flavor": "proprietary",
        "__nvidia_driver_policy": ubuntu_policy("580-server", signed=False),
        "__nvidia_driver_kernel_images": kernel_images("generic"),
    },
    "jammy_hwe": {
        "fake": JAMMY_HWE, "nvidia_driver_branch": "535",
        "__nvidia_driver_policy": ubuntu_policy("535-server-open", metas=("generic", "generic-hwe-22.04")),
        "__nvidia_driver_kernel_images": kernel_images("generic-hwe-22.04"),
    },
    "noble_cuda_repo_open": {"fake": NOBLE, "nvidia_driver_source": "cuda-repo",
                             "nvidia_driver_branch": "570", "nvidia_driver_flavor": "open"},
    "noble_debian_source": {"fake": NOBLE, "nvidia_driver_source": "debian"},
    "sb_enabled": {"fake": DEBIAN, "__nvidia_driver_mokutil": mokutil("SecureBoot enabled\n")},
    "sb_shim_off": {"fake": DEBIAN, "__nvidia_driver_mokutil": mokutil(
        "SecureBoot enabled\nSecureBoot validation is disabled in shim\n")},
    "sb_disabled": {"fake": DEBIAN, "__nvidia_driver_mokutil": mokutil(
        "SecureBoot disabled\nPlatform is in Setup Mode\n")},
    "sb_legacy_bios": {"fake": DEBIAN, "__nvidia_driver_mokutil": mokutil(
        stderr="EFI variables are not supported on this system\n", rc=1)},
    "sb_no_mokutil": {"fake": DEBIAN,
                      "__nvidia_driver_mokutil": mokutil(rc=2, msg="Error executing command.")},
    "module_proprietary": {
        "fake": DEBIAN, **PASCAL,
        "__nvidia_driver_proc_version": proc_version(
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.216.01  Tue Sep 17 16:36:20 UTC 2024\n"
            "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n"),
        "__nvidia_driver_version_query": {"stdout": "535.216.01-1~deb12u1"},
    },
    "module_open_epoch": {
        "fake": NOBLE, **TURING,
        "__nvidia_driver_proc_version": proc_version(
            "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.86.15  Release Build  "
            "(dvs-builder@U16-I3-B03-4-3)  Thu Jan 23 22:50:36 UTC 2025\n"),
        "__nvidia_driver_version_query": {"stdout": "1:570.86.15-0ubuntu1"},
    },
    "module_skip_reboot": {
        "fake": DEBIAN, **PASCAL, "nvidia_driver_skip_reboot": True,
        "__nvidia_driver_install": {"changed": True},
        "__nvidia_driver_version_query": {"stdout": DEB},
    },
    "holds": {
        "fake": DEBIAN, "__nvidia_driver_policy": DEBIAN_POLICY,
        "__nvidia_driver_dpkg": dpkg(
            f"nvidia-driver {DEB} install installed",
            f"nvidia-kernel-dkms {DEB} hold installed",
            f"libnvidia-ml1 {DEB} install installed",
            "nvidia-persistenced 535.171.04-1~deb12u1 install installed",
            f"nvidia-smi {DEB} install installed",
            "nvidia-support 20220217+3~deb12u1 install installed",
            "libnvidia-egl-wayland1 1:1.1.10-1 install installed",
            f"firmware-nvidia-gsp {DEB} install installed",
            "nvidia-driver-libs 470.256.02-1 hold installed",  # another branch, held
            "nvidia-cuda-toolkit 11.8.89~11.8.0-5~deb12u1 hold installed",  # held by another component
            "htop 3.2.2-2 install installed",
            "nvidia-old 535.1-1 deinstall config-files",
        ),
        "__nvidia_driver_plan": plan([
            ("nvidia-driver", DEB, DEB),
            ("nvidia-kernel-dkms", "535.261.03-1", DEB),
            ("nvidia-smi", DEB, DEB),
            ("nvidia-persistenced", "535.171.04-1~deb12u1", "535.171.04-1~deb12u1"),
            ("linux-headers-6.1.0-28-amd64", "(none)", "6.1.119-1"),
        ]),
    },
    "holds_upgrade": {
        "fake": DEBIAN, "nvidia_driver_upgrade": True, "__nvidia_driver_kernel_build_dir": HEADERS_INSTALLED,
        "__nvidia_driver_dpkg": dpkg(*(
            f"{n} 535.261.03-1 hold installed"
            for n in ("nvidia-driver", "nvidia-kernel-dkms", "nvidia-smi", "nvidia-persistenced"))),
        "__nvidia_driver_plan": plan([
            ("nvidia-driver", "535.261.03-1", DEB),
            ("nvidia-kernel-dkms", "535.261.03-1", DEB),
            ("nvidia-smi", "535.261.03-1", "535.261.03-1"),
            ("nvidia-persistenced", "535.261.03-1", "535.261.03-1"),
        ]),
    },
    # NVIDIA's debian12 repository: unversioned names behind the pinning package.
    "cuda_repo_branch_switch": {
        "fake": DEBIAN, "nvidia_driver_source": "cuda-repo", "nvidia_driver_branch": "575",
        "__nvidia_driver_kernel_build_dir": HEADERS_INSTALLED,
        "__nvidia_driver_dpkg": dpkg(*(
            f"{n} 570.133.20-1 hold installed" for n in (
                "libcuda1", "nvidia-driver", "nvidia-driver-pinning-570", "nvidia-kernel-dkms"))),
        # The installed pin of branch 570 refuses the packages of 575, except the pinning package.
        "__nvidia_driver_plan": plan([
            ("nvidia-driver-pinning-575", "(none)", "575.57.08-1"),
            ("nvidia-driver", "570.133.20-1", "570.133.20-1"),
            ("nvidia-kernel-dkms", "570.133.20-1", "570.133.20-1"),
        ]),
    },
    # After the new pin: the installed 570 packages are off the branch, apt offers 575.
    "cuda_repo_branch_switch_pinned": {
        "fake": DEBIAN, "nvidia_driver_source": "cuda-repo", "nvidia_driver_branch": "575",
        "__nvidia_driver_kernel_build_dir": HEADERS_INSTALLED,
        "__nvidia_driver_dpkg": dpkg(
            "libcuda1 570.133.20-1 install installed", "nvidia-driver 570.133.20-1 install installed",
            "nvidia-driver-pinning-575 575.57.08-1 install installed",
            "nvidia-kernel-dkms 570.133.20-1 install installed"),
        "__nvidia_driver_plan": plan([
            ("nvidia-driver-pinning-575", "575.57.08-1", "575.57.08-1"),
            ("nvidia-driver", "570.133.20-1", "575.57.08-1"),
            ("nvidia-kernel-dkms", "570.133.20-1", "575.57.08-1"),
        ]),
    },
    "noble_cuda_repo_595": {"fake": NOBLE, "nvidia_driver_source": "cuda-repo",
                            "nvidia_driver_branch": "595"},
    "noble_cuda_repo_595_proprietary": {
        "fake": NOBLE, "nvidia_driver_source": "cuda-repo", "nvidia_driver_branch": "595",
        "nvidia_driver_flavor": "proprietary"},
    "cuda_repo_unavailable": {
        "fake": NOBLE, "nvidia_driver_source": "cuda-repo", "nvidia_driver_branch": "999",
        "__nvidia_driver_plan": plan([("nvidia-driver-pinning-999", "(none)", "(none)")]),
    },
}


class Case:
    """``Case("noble_turing")["packages"]`` is the role's ``__nvidia_driver_packages`` there."""

    def __init__(self, name: str):
        self.name = name

    def __getitem__(self, key: str):
        return value(self.name, key)


# --- "auto" choices: must match provision/gpu/stack.py ---------------------------------

@pytest.mark.parametrize(("name", "source", "branch", "flavor"), [
    ("debian_auto", "debian", "535", "proprietary"),
    ("noble_turing", "ubuntu", "580", "open"),
    ("noble_pascal", "ubuntu", "580", "proprietary"),
    ("noble_mixed", "ubuntu", "580", "proprietary"),
    ("noble_h100", "ubuntu", "580", "open"),
    ("noble_no_gpu", "ubuntu", "580", "open"),
    ("jammy_hwe", "ubuntu", "535", "open"),
    ("debian_cuda_repo_570", "cuda-repo", "570", "proprietary"),
    # NVIDIA's repository has the open modules: auto is open on Turing and newer, at the long-term branch.
    ("debian_cuda_repo_ampere", "cuda-repo", "580", "open"),
    ("debian_cuda_repo_pascal", "cuda-repo", "580", "proprietary"),
])
def test_auto_choices(name, source, branch, flavor):
    r = Case(name)
    assert (r["source"], r["branch"], r["flavor"]) == (
        source, branch, flavor)
    assert r["choice_errors"] == []


@pytest.mark.parametrize(("name", "ids"), [
    ("noble_turing", [0x2204]),  # the audio and USB functions of the card are not GPUs
    ("noble_mixed", [0x2204, 0x1B80]),
    ("noble_h100", [0x2330]),  # 3D controller, PCI domain prefix, no marketing name
    ("noble_no_gpu", []),
])
def test_gpus_are_found_by_class_and_device_id(name, ids):
    r = Case(name)
    assert r["gpu_device_ids"] == ids
    assert r["gpu_present"] is bool(ids)


# --- Ubuntu package names -------------------------------------------------------------

def test_ubuntu_server_open_with_signed_modules():
    r = Case("noble_turing")
    assert r["packages"] == [
        "nvidia-driver-580-server-open",
        "linux-modules-nvidia-580-server-open-6.8.0-45-generic",
        "linux-modules-nvidia-580-server-open-generic",
        "nvidia-compute-utils-580-server",
    ]
    assert r["uses_dkms"] is False
    assert r["version_package"] == "nvidia-driver-580-server-open"
    # linux-image-virtual also tracks the kernel, but has no modules metapackage: not chosen
    assert r["ubuntu_signed_modules_metapackages"] == [
        "linux-modules-nvidia-580-server-open-generic", "linux-modules-nvidia-580-server-open-virtual"]


def test_ubuntu_server_proprietary_for_pascal():
    r = Case("noble_pascal")
    assert r["packages"][:3] == [
        "nvidia-driver-580-server",
        "linux-modules-nvidia-580-server-6.8.0-45-generic",
        "linux-modules-nvidia-580-server-generic",
    ]


def test_ubuntu_desktop_branch_given_as_an_integer():
    r = Case("noble_desktop_550")
    assert r["branch"] == "550"
    assert r["packages"] == [
        "nvidia-driver-550-open", "linux-modules-nvidia-550-open-6.8.0-45-generic",
        "linux-modules-nvidia-550-open-generic", "nvidia-compute-utils-550",
    ]


def test_ubuntu_headless_uses_the_no_dkms_set_with_signed_modules():
    r = Case("noble_headless")
    assert r["packages"] == [
        "nvidia-headless-no-dkms-580-server-open", "nvidia-utils-580-server",
        "linux-modules-nvidia-580-server-open-6.8.0-45-generic",
        "linux-modules-nvidia-580-server-open-generic",
    ]


def test_ubuntu_headless_falls_back_to_dkms_without_signed_modules():
    r = Case("noble_headless_no_signed")
    assert r["packages"] == [
        "nvidia-headless-580-server", "nvidia-utils-580-server", "nvidia-dkms-580-server",
        "nvidia-compute-utils-580-server", "linux-headers-6.8.0-45-generic",
    ]
    assert r["uses_dkms"] is True


def test_ubuntu_hwe_kernel_gets_the_hwe_modules_metapackage():
    r = Case("jammy_hwe")
    assert r["ubuntu_signed_modules_package"] == "linux-modules-nvidia-535-server-open-6.8.0-45-generic"
    assert "linux-modules-nvidia-535-server-open-generic-hwe-22.04" in r["packages"]
    assert "linux-modules-nvidia-535-server-open-generic" not in r["packages"]


# --- Debian and NVIDIA's repository ---------------------------------------------------

def test_debian_packages():
    r = Case("debian_auto")
    assert r["packages"] == [
        "nvidia-driver", "nvidia-kernel-dkms", "nvidia-smi", "nvidia-persistenced",
        "linux-headers-6.1.0-28-amd64",
    ]
    assert r["uses_dkms"] is True
    r = Case("debian_no_persistenced")  # headers already there: not installed again
    assert r["packages"] == ["nvidia-driver", "nvidia-kernel-dkms", "nvidia-smi"]


@pytest.mark.parametrize("name", ["debian_branch_570", "debian_branch_570_int"])
def test_debian_refuses_other_branches_and_points_to_cuda_repo(name):
    (msg,) = Case(name)["choice_errors"]
    assert "only the driver branch 535" in msg and "branch 570" in msg
    assert "nvidia_driver_source: cuda-repo" in msg


def test_debian_open_flavor_needs_matching_versions():
    r = Case("debian_open")
    assert "nvidia-open-kernel-dkms" in r["packages"]
    assert "nvidia-kernel-dkms" not in r["packages"]
    (msg,) = r["distro_errors"]
    assert "535.261.03" in msg and "535.309.01" in msg


@pytest.mark.parametrize(("name", "needle"), [
    ("debian_ubuntu_source", "nvidia_driver_source ubuntu is not available on Debian"),
    ("noble_debian_source", "nvidia_driver_source debian is not available on Ubuntu"),
    ("debian_bad_branch", 'three-digit driver branch such as "570", not "57"'),
    ("noble_open_on_pascal", "10de:1b80"),
])
def test_impossible_choices_are_refused(name, needle):
    errors = Case(name)["choice_errors"]
    assert len(errors) == 1 and needle in errors[0]


def test_cuda_repo_packages():
    """NVIDIA's names (driver installation guide): Debian-style names on debian12, never the
    unbounded cuda-drivers-<b>; nvidia-open-<b> on Ubuntu up to 580, nvidia-open from 590."""
    assert Case("debian_cuda_repo_570")["packages"] == [
        "nvidia-driver-pinning-570", "nvidia-driver", "nvidia-kernel-dkms", "linux-headers-6.1.0-28-amd64"]
    assert Case("debian_cuda_repo_570")["version_package"] == "nvidia-driver"
    r = Case("noble_cuda_repo_open")
    assert r["driver_packages"] == ["nvidia-driver-pinning-570", "nvidia-open-570"]
    assert r["uses_dkms"] is True
    assert r["version_package"] == "nvidia-open-570"
    assert not any(p == "cuda" or p.startswith("cuda-drivers") for p in r["packages"])
    r = Case("noble_cuda_repo_595")
    assert r["driver_packages"] == ["nvidia-driver-pinning-595", "nvidia-open"]
    assert r["version_package"] == "nvidia-open"
    assert Case("noble_cuda_repo_595_proprietary")["driver_packages"] == [
        "nvidia-driver-pinning-595", "cuda-drivers"]


def test_a_new_branch_is_pinned_first_after_releasing_the_old_holds():
    r = Case("cuda_repo_branch_switch")
    assert r["pin_first"] is True
    assert r["held_managed"] == [
        "libcuda1", "nvidia-driver", "nvidia-driver-pinning-570", "nvidia-kernel-dkms"]
    assert r["unavailable"] == []


def test_packages_of_another_branch_are_installed_at_the_chosen_branch():
    r = Case("cuda_repo_branch_switch_pinned")
    assert r["pin_first"] is False
    assert r["off_branch"] == ["nvidia-driver", "nvidia-kernel-dkms"]
    assert r["install_needed"] is True
    assert r["install_specs"] == [
        "nvidia-driver-pinning-575", "nvidia-driver=575.*", "nvidia-kernel-dkms=575.*"]


def test_unavailable_packages_are_listed():
    assert Case("cuda_repo_unavailable")["unavailable"] == ["nvidia-driver-pinning-999", "nvidia-open"]


# --- Secure Boot ----------------------------------------------------------------------

@pytest.mark.parametrize(("name", "state", "enforcing"), [
    ("sb_enabled", "enforcing", True),
    ("sb_shim_off", "enabled, validation disabled in shim", False),
    ("sb_disabled", "disabled", False),
    ("sb_legacy_bios", "legacy BIOS (no Secure Boot)", False),
    ("sb_no_mokutil", "unknown (mokutil is missing or said nothing useful)", False),
])
def test_secure_boot_state(name, state, enforcing):
    r = Case(name)
    assert r["secure_boot"] == state
    assert r["secure_boot_enforcing"] is enforcing


# --- holds, upgrades, module version --------------------------------------------------

def test_holds_cover_the_branch_and_release_everything_managed():
    r = Case("holds")
    # firmware-nvidia-gsp is the driver's too (the facts table's hold patterns for Debian).
    assert r["hold_wanted"] == [
        "firmware-nvidia-gsp", "libnvidia-ml1", "nvidia-driver", "nvidia-kernel-dkms", "nvidia-persistenced",
        "nvidia-smi"]
    assert r["hold_missing"] == [
        "firmware-nvidia-gsp", "libnvidia-ml1", "nvidia-driver", "nvidia-persistenced", "nvidia-smi"]
    # A held package of another branch is released too, so that apt may replace it; the
    # toolkit another component holds is not a driver package.
    assert r["held_managed"] == ["nvidia-kernel-dkms", "nvidia-driver-libs"]
    assert r["missing"] == ["linux-headers-6.1.0-28-amd64"]
    assert r["install_needed"] is True
    assert r["upgradable"] == ["nvidia-kernel-dkms"]


def test_upgrade_is_needed_only_when_asked_for_and_available():
    r = Case("holds_upgrade")
    assert r["missing"] == []
    assert r["upgradable"] == ["nvidia-driver", "nvidia-kernel-dkms"]
    assert r["install_needed"] is True
    assert r["held_managed"] == [
        "nvidia-driver", "nvidia-kernel-dkms", "nvidia-smi", "nvidia-persistenced"]


@pytest.mark.parametrize(("name", "loaded", "package"), [
    ("module_proprietary", "535.216.01", "535.216.01"),
    ("module_open_epoch", "570.86.15", "570.86.15"),
])
def test_module_and_package_versions(name, loaded, package):
    r = Case(name)
    assert (r["loaded_version"], r["package_version"]) == (loaded, package)
    assert r["module_check_skip_reason"] == ""


@pytest.mark.parametrize(("name", "needle"), [
    ("debian_auto", "no NVIDIA GPU was found"),
    ("module_skip_reboot", "the reboot was skipped"),
])
def test_module_check_is_skipped_with_a_reason(name, needle):
    assert needle in Case(name)["module_check_skip_reason"]


# --- the role's own files agree with what the cases replay --------------------------------

def test_resolve_tasks_are_what_the_cases_replay():
    include, resolve = _load("tasks/resolve.yml")
    assert include["ansible.builtin.include_vars"] == (
        "{{ lookup('ansible.builtin.first_found', __nvidia_driver_os_vars_params) }}")
    assert _load("vars/main.yml")["__nvidia_driver_os_vars_params"]["files"] == [
        "{{ ansible_facts.distribution }}.yml"]
    assert resolve["ansible.builtin.set_fact"] == {
        f"__nvidia_driver_{what}": f"{{{{ __nvidia_driver_resolved_{what} }}}}"
        for what in ("source", "branch", "flavor")
    }


def test_argument_specs_document_every_default():
    defaults = _load("defaults/main.yml")
    options = _load("meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    assert set(options) == set(defaults)
    for name, spec in options.items():
        assert spec["default"] == defaults[name], name
        assert spec["description"], name


# --- the same "auto" table as the Python resolver ----------------------------------------

@pytest.mark.parametrize("name", [
    "debian_auto", "noble_turing", "noble_pascal", "noble_mixed", "noble_h100", "noble_no_gpu", "jammy_hwe",
    "debian_cuda_repo_ampere", "debian_cuda_repo_pascal", "debian_cuda_repo_570",
])
def test_auto_choices_match_the_python_resolver(name):
    from provision.gpu import stack
    from provision.gpu.model import HostFacts
    from provision.gpu.pci_bus import parse_lspci
    from provision.gpu.variables import VARIABLES

    case = CASES[name]
    distribution, version = case["fake"]["distribution"], case["fake"]["distribution_version"]
    lines = case.get("__nvidia_driver_lspci", {}).get("stdout_lines", [])
    facts = HostFacts(
        os_id=distribution.lower(), os_version=version.split(".")[0] if distribution == "Debian" else version,
        arch="x86_64", gpus=tuple(parse_lspci("\n".join(lines))),
    )
    chosen = {k: v for k, v in case.items() if k in VARIABLES}
    resolved = stack.resolve(chosen, facts, ["nvidia_driver"]).stack
    r = Case(name)
    assert (r["source"], r["flavor"]) == (resolved.nvidia_driver_source, resolved.nvidia_driver_flavor)
    if "nvidia_driver_branch" not in case:
        assert r["branch"] == resolved.nvidia_driver_branch
    assert r["gpu_device_ids"] == [int(gpu.device_id, 16) for gpu in facts.gpus]
