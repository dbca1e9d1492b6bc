"""The variable logic of the cuda and cudnn roles, templated by Ansible's own engine.

Each case loads a role's defaults, vars/main.yml and the OS file that its first_found picks
(with faked facts), as a play would, and evaluates the role's internal variables: package
names, "auto" per OS, the minimum-driver table and the refusal messages. No host, no
ansible-playbook: Ansible's Templar does the work in milliseconds.
"""

import base64
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar, trust_as_template

ROLES = Path(__file__).resolve().parents[2] / "roles"

init_plugin_loader()

FACTS = {
    "Debian 12": {"distribution": "Debian", "distribution_version": "12.12",
                  "distribution_major_version": "12"},
    "Ubuntu 22.04": {"distribution": "Ubuntu", "distribution_version": "22.04",
                     "distribution_major_version": "22"},
    "Ubuntu 24.04": {"distribution": "Ubuntu", "distribution_version": "24.04",
                     "distribution_major_version": "24"},
    "Fedora 41": {"distribution": "Fedora", "distribution_version": "41",
                  "distribution_major_version": "41"},
}

PROC_PROPRIETARY = (
    "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.247.01  Thu Apr 10 18:24:38 UTC 2025\n"
    "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n"
)
PROC_OPEN = (
    "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.133.20  Release Build  "
    "(dvs-builder@U16-I3-B03-4-3)  Wed Mar  5 2025\n"
)


class RoleVars:
    """A role's variables for one host, as a play sees them after preflight loaded the OS file.

    >>> RoleVars("cuda", "Ubuntu 24.04")["__cuda_package"]
    'cuda-toolkit-12-8'
    """

    def __init__(self, role: str, os_name: str, **overrides):
        self.loader = DataLoader()
        self.variables: dict = {}
        # The facts table first: the vars of the gpu_stack role, on which the role depends.
        for path in (ROLES / "gpu_stack" / "vars" / "main.yml", ROLES / role / "defaults" / "main.yml",
                     ROLES / role / "vars" / "main.yml"):
            self.variables.update(self._load(path))
        facts = {**FACTS[os_name], "architecture": "x86_64"}
        self.variables.update(ansible_facts=facts, inventory_hostname="rig1", role_path=str(ROLES / role))
        self.os_file = Path(self.eval(f"lookup('ansible.builtin.first_found', __{role}_os_vars_files)"))
        self.variables.update(self._load(self.os_file))
        self.variables.update(overrides)

    def _load(self, path: Path) -> dict:
        return self.loader.load_from_file(str(path), trusted_as_template=True) or {}

    def eval(self, expression: str):
        templar = Templar(loader=self.loader, variables=self.variables)
        return templar.template(trust_as_template("{{ " + expression + " }}"))

    def render(self, path: Path) -> str:
        templar = Templar(loader=self.loader, variables=self.variables)
        return templar.template(trust_as_template(path.read_text()))

    def __getitem__(self, name: str):
        return self.eval(name)


def _proc(text: str) -> dict:
    return {"content": base64.b64encode(text.encode()).decode()}


# --- cuda: "auto" per OS, package names, paths ------------------------------------------------

@pytest.mark.parametrize(("os_name", "source", "version", "package", "nvcc"), [
    ("Debian 12", "distro", "11.8", "nvidia-cuda-toolkit", "/usr/bin/nvcc"),
    ("Ubuntu 22.04", "cuda-repo", "12.8", "cuda-toolkit-12-8", "/usr/local/cuda-12.8/bin/nvcc"),
    ("Ubuntu 24.04", "cuda-repo", "12.8", "cuda-toolkit-12-8", "/usr/local/cuda-12.8/bin/nvcc"),
])
def test_cuda_auto_defaults_per_os(os_name, source, version, package, nvcc):
    v = RoleVars("cuda", os_name)
    assert v.os_file.name == f"{FACTS[os_name]['distribution']}.yml"
    assert (v["__cuda_source"], v["__cuda_version"]) == (source, version)
    assert (v["__cuda_package"], v["__cuda_nvcc"]) == (package, nvcc)


@pytest.mark.parametrize(("os_name", "version"), [
    ("Debian 12", "11.8"), ("Ubuntu 22.04", "11.5"), ("Ubuntu 24.04", "12.0"),
])
def test_cuda_distro_source_with_auto_version_is_the_os_version(os_name, version):
    v = RoleVars("cuda", os_name, cuda_source="distro")
    assert (v["__cuda_version"], v["__cuda_package"], v["__cuda_home"]) == (
        version, "nvidia-cuda-toolkit", "/usr")


def test_cuda_repo_on_debian_with_auto_version_is_the_repo_default():
    v = RoleVars("cuda", "Debian 12", cuda_source="cuda-repo")
    assert (v["__cuda_version"], v["__cuda_package"]) == ("12.8", "cuda-toolkit-12-8")
    assert v["__cuda_home"] == "/usr/local/cuda-12.8"


@pytest.mark.parametrize(("version", "package"), [
    ("12.8", "cuda-toolkit-12-8"), ("12.2", "cuda-toolkit-12-2"), ("11.8", "cuda-toolkit-11-8"),
    ("13.0", "cuda-toolkit-13-0"), (12.6, "cuda-toolkit-12-6"),  # an unquoted -e value arrives as a float
])
def test_cuda_repo_package_pins_major_and_minor(version, package):
    v = RoleVars("cuda", "Ubuntu 24.04", cuda_version=version)
    assert v["__cuda_package"] == package
    assert v["__cuda_version_valid"] is True
    assert v["__cuda_home"] == f"/usr/local/cuda-{version}"


@pytest.mark.parametrize("version", ["12", "12.x", "v12.8", "12.8.1", "", "latest"])
def test_cuda_version_must_be_x_dot_y(version):
    v = RoleVars("cuda", "Ubuntu 24.04", cuda_version=version)
    assert v["__cuda_version_valid"] is False
    assert v["__cuda_msg_bad_version"].startswith(
        'cuda_version must be auto or a quoted "X.Y" CUDA release that rigforge knows (11.0, 11.1,')
    assert v["__cuda_msg_bad_version"].endswith(f", 13.5); got {version}.")


@pytest.mark.parametrize("version", ["14.0", "12.7", "12.10", "10.2"])
def test_cuda_version_that_is_no_known_release_is_refused(version):
    v = RoleVars("cuda", "Ubuntu 24.04", cuda_version=version)
    assert v["__cuda_version_valid"] is True
    assert v["__cuda_version in __cuda_releases"] is False


def test_unsupported_os_gets_the_default_file_and_a_message():
    v = RoleVars("cuda", "Fedora 41")
    assert v.os_file.name == "default.yml"
    assert v["__cuda_os | length"] == 0
    assert v["__cuda_msg_unsupported_os"] == (
        "The cuda role supports Ubuntu 22.04, Ubuntu 24.04, Ubuntu 26.04, Debian 12, Debian 13; "
        "rig1 runs Fedora 41.")


# --- cuda: the distro's fixed version ------------------------------------------------------------

def test_distro_source_with_another_version_names_the_distro_version_and_cuda_repo():
    v = RoleVars("cuda", "Debian 12", cuda_source="distro", cuda_version="12.8")
    assert v["__cuda_version == __cuda_os.distro_version"] is False
    msg = v["__cuda_msg_distro_version"]
    assert msg == (
        "cuda_source distro gives CUDA 11.8 on Debian 12 (its nvidia-cuda-toolkit), not CUDA 12.8. "
        "Use cuda_source: cuda-repo for CUDA 12.8, or cuda_version: \"11.8\" (or auto) with the "
        "distro packages.")


def test_auto_source_on_debian_with_another_version_is_refused_too():
    """auto is distro on Debian 12, so cuda_version 12.8 alone is refused, naming cuda-repo."""
    v = RoleVars("cuda", "Debian 12", cuda_version="12.8")
    assert v["__cuda_source"] == "distro"
    assert "CUDA 11.8" in v["__cuda_msg_distro_version"]


# --- cuda: minimum driver ------------------------------------------------------------------------

def test_min_driver_table_is_the_one_from_nvidia_release_notes():
    v = RoleVars("cuda", "Ubuntu 24.04")
    assert v["__cuda_min_driver"] == {
        **{f"11.{minor}": 450 for minor in range(9)},
        "12.0": 525, "12.1": 530, "12.2": 535, "12.3": 545, "12.4": 550,
        "12.5": 555, "12.6": 560, "12.8": 570, "12.9": 575,
        "13.0": 580, "13.1": 590, "13.2": 595, "13.3": 610, "13.4": 615, "13.5": 615,
    }


@pytest.mark.parametrize(("version", "needed"), [
    ("12.8", 570), ("12.9", 575), ("12.2", 535), ("12.0", 525),
    ("12.7", 0), ("11.8", 450), ("11.5", 450), ("13.0", 580), ("13.1", 590),
])
def test_min_driver_lookup_falls_back_to_the_major_version(version, needed):
    assert RoleVars("cuda", "Ubuntu 24.04", cuda_version=version)["__cuda_min_driver_needed"] == needed


def test_planned_driver_branch_too_old_is_refused_with_advice():
    v = RoleVars("cuda", "Ubuntu 24.04", gpu_stack_selected_components=["base", "nvidia_driver", "cuda"],
                 nvidia_driver_branch="535")
    assert (v["__cuda_driver"], v["__cuda_driver_ok"]) == (535, False)
    assert v["__cuda_msg_driver_too_old"] == (
        "CUDA 12.8 needs driver >= 570; nvidia_driver_branch is 535. Use 580 or CUDA 12.2.")


# The advised branch is the oldest supported one at or above the minimum: 570 and 575 are past
# their end of life, so 580; the minimum itself only when no supported branch reaches it.
@pytest.mark.parametrize(("version", "branch", "advice"), [
    ("12.9", 550, "Use 580 or CUDA 12.4."),
    ("12.8", 470, "Use 580 or CUDA 11.8."),
    ("13.0", 575, "Use 580 or CUDA 12.9."),
    ("12.4", 400, "Use 580."),
    ("13.2", 580, "Use 595 or CUDA 13.0."),
])
def test_driver_advice_names_the_newest_cuda_the_driver_runs(version, branch, advice):
    from provision.gpu import stack
    from provision.gpu.model import HostFacts

    v = RoleVars("cuda", "Ubuntu 24.04", cuda_version=version, nvidia_driver_branch=branch,
                 gpu_stack_selected_components=["nvidia_driver", "cuda"])
    assert v["__cuda_driver_ok"] is False
    assert v["__cuda_msg_driver_too_old"].endswith(advice)
    # The resolver, which refuses the same stack before any host is contacted, says the same.
    facts = HostFacts(os_id="ubuntu", os_version="24.04", arch="x86_64")
    resolution = stack.resolve({"cuda_source": "cuda-repo", "cuda_version": version,
                                "nvidia_driver_branch": str(branch)}, facts, ["nvidia_driver", "cuda"])
    assert any(p.message.endswith(advice) for p in resolution.problems), resolution.problems


def test_planned_branch_is_used_only_when_the_driver_component_is_selected():
    v = RoleVars("cuda", "Ubuntu 24.04", gpu_stack_selected_components=["base", "cuda"],
                 nvidia_driver_branch="535")
    assert (v["__cuda_driver"], v["__cuda_driver_ok"]) == (0, True)


@pytest.mark.parametrize(("text", "version", "ok"), [
    (PROC_PROPRIETARY, "535.247.01", False),
    (PROC_OPEN, "570.133.20", True),
])
def test_loaded_driver_from_proc_is_checked_when_no_branch_is_planned(text, version, ok):
    v = RoleVars("cuda", "Ubuntu 24.04", gpu_stack_selected_components=["base", "nvidia_driver", "cuda"],
                 nvidia_driver_branch="auto", __cuda_proc_driver=_proc(text))
    assert v["__cuda_driver_loaded"] == version
    assert v["__cuda_driver_ok"] is ok
    assert v["__cuda_driver_text"] == f"the loaded driver is {version}"


def test_planned_numeric_branch_wins_over_the_loaded_driver():
    v = RoleVars("cuda", "Ubuntu 24.04", gpu_stack_selected_components=["nvidia_driver", "cuda"],
                 nvidia_driver_branch=575, __cuda_proc_driver=_proc(PROC_PROPRIETARY))
    assert (v["__cuda_driver"], v["__cuda_driver_ok"]) == (575, True)


def test_debian_distro_cuda_runs_on_debians_driver():
    v = RoleVars("cuda", "Debian 12", gpu_stack_selected_components=["nvidia_driver", "cuda"],
                 nvidia_driver_branch="535")
    assert (v["__cuda_min_driver_needed"], v["__cuda_driver_ok"]) == (450, True)


# --- cuda: apt and update-alternatives results ----------------------------------------------------

def test_package_availability_reads_apt_cache_policy():
    known = "cuda-toolkit-12-8:\n  Installed: (none)\n  Candidate: 12.8.1-1\n"
    unknown = "cuda-toolkit-12-8:\n  Installed: (none)\n  Candidate: (none)\n"
    for policy, available in ((known, True), (unknown, False), ("", False)):
        v = RoleVars("cuda", "Ubuntu 24.04", __cuda_policy={"stdout": policy})
        assert v["__cuda_package_available"] is available
    retried = RoleVars("cuda", "Ubuntu 24.04", __cuda_policy={"stdout": unknown},
                       __cuda_policy_retry={"stdout": known})
    assert retried["__cuda_package_available"] is True


def test_missing_repo_package_lists_the_versions_there():
    v = RoleVars("cuda", "Ubuntu 24.04", cuda_version="12.7", __cuda_pkgnames={"stdout_lines": [
        "cuda-toolkit-12-8", "cuda-toolkit-12-8-config-common", "cuda-toolkit-12-6", "cuda-toolkit-12",
        "cuda-toolkit-config-common"]})
    assert v["__cuda_repo_versions"] == ["12.6", "12.8"]
    assert v["__cuda_msg_not_available_repo"].endswith(
        "CUDA versions there: 12.6, 12.8; set cuda_version to one of them.")
    distro = RoleVars("cuda", "Debian 12")["__cuda_msg_not_available_distro"]
    assert "enable the non-free component of Debian, or use cuda_source: cuda-repo" in distro


QUERY = """Name: cuda
Link: /usr/local/cuda
Status: {status}
Best: /usr/local/cuda-12.9
Value: {value}

Alternative: /usr/local/cuda-12.8
Priority: 128

Alternative: /usr/local/cuda-12.9
Priority: 129
"""


def test_alternatives_query_is_parsed():
    v = RoleVars("cuda", "Ubuntu 24.04", __cuda_alternatives={
        "stdout": QUERY.format(status="auto", value="/usr/local/cuda-12.9")})
    assert v["__cuda_alternative_registered"] is True
    assert (v["__cuda_alternative_value"], v["__cuda_alternative_status"]) == ("/usr/local/cuda-12.9", "auto")
    other = RoleVars("cuda", "Ubuntu 24.04", cuda_version="12.6", __cuda_alternatives={
        "stdout": QUERY.format(status="auto", value="/usr/local/cuda-12.9")})
    assert other["__cuda_alternative_registered"] is False
    none = RoleVars("cuda", "Ubuntu 24.04", __cuda_alternatives={"stdout": "", "rc": 2})
    assert none["__cuda_alternative_registered"] is False


# --- cuda: the profile script ---------------------------------------------------------------------

def _login_env(script: Path, env: dict) -> dict:
    """Source the script twice in sh (dash on Debian), as nested login shells would."""
    out = subprocess.run(
        ["sh", "-c", '. "$1"; . "$1"; printf "%s\\n" "$PATH" "${LD_LIBRARY_PATH-unset}" "$CUDA_HOME"',
         "sh", str(script)],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    return dict(zip(("PATH", "LD_LIBRARY_PATH", "CUDA_HOME"), out, strict=True))


def test_profile_script_adds_existing_dirs_once_and_no_empty_entry(tmp_path):
    home = tmp_path / "cuda-12.8"
    (home / "bin").mkdir(parents=True)
    (home / "lib64").mkdir()
    v = RoleVars("cuda", "Ubuntu 24.04", __cuda_home=str(home))
    script = tmp_path / "cuda.sh"
    script.write_text(v.render(ROLES / "cuda" / "templates" / "cuda.sh.j2"))
    subprocess.run(["sh", "-n", str(script)], check=True)
    env = _login_env(script, {"PATH": "/usr/bin:/bin"})
    assert env == {"PATH": f"{home}/bin:/usr/bin:/bin", "LD_LIBRARY_PATH": f"{home}/lib64",
                   "CUDA_HOME": str(home)}
    env = _login_env(script, {"PATH": f"/usr/bin:{home}/bin", "LD_LIBRARY_PATH": "/opt/lib"})
    assert env["PATH"] == f"/usr/bin:{home}/bin"
    assert env["LD_LIBRARY_PATH"] == f"{home}/lib64:/opt/lib"


def test_profile_script_skips_missing_dirs(tmp_path):
    v = RoleVars("cuda", "Ubuntu 24.04", __cuda_home=str(tmp_path / "absent"))
    script = tmp_path / "cuda.sh"
    script.write_text(v.render(ROLES / "cuda" / "templates" / "cuda.sh.j2"))
    env = _login_env(script, {"PATH": "/usr/bin:/bin"})
    assert (env["PATH"], env["LD_LIBRARY_PATH"]) == ("/usr/bin:/bin", "unset")


def test_profile_script_for_distro_only_sets_cuda_home(tmp_path):
    v = RoleVars("cuda", "Debian 12")
    text = v.render(ROLES / "cuda" / "templates" / "cuda.sh.j2")
    assert "There is no /usr/local/cuda" in text and "/usr/bin/nvcc" in text
    script = tmp_path / "cuda.sh"
    script.write_text(text)
    assert _login_env(script, {"PATH": "/usr/bin:/bin"}) == {
        "PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": "unset", "CUDA_HOME": "/usr"}


# --- cudnn -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("os_name", "overrides", "package"), [
    ("Debian 12", {}, "cudnn9-cuda-11"),  # auto CUDA on Debian is the distro's 11.8
    ("Debian 12", {"cuda_source": "cuda-repo"}, "cudnn9-cuda-12"),
    ("Ubuntu 22.04", {}, "cudnn9-cuda-12"),
    ("Ubuntu 24.04", {}, "cudnn9-cuda-12"),
    ("Ubuntu 22.04", {"cuda_source": "distro"}, "cudnn9-cuda-11"),
    ("Ubuntu 24.04", {"cuda_source": "distro"}, "cudnn9-cuda-12"),
    ("Ubuntu 24.04", {"cuda_version": "13.0"}, "cudnn9-cuda-13"),
    ("Ubuntu 24.04", {"cuda_version": 11.8, "cudnn_version": 9}, "cudnn9-cuda-11"),
])
def test_cudnn_package_follows_the_cuda_major_version(os_name, overrides, package):
    v = RoleVars("cudnn", os_name, **overrides)
    assert v["__cudnn_source"] == "cuda-repo"
    assert v["__cudnn_package"] == package


@pytest.mark.parametrize("os_name", ["Debian 12", "Ubuntu 22.04", "Ubuntu 24.04"])
@pytest.mark.parametrize("overrides", [
    {}, {"cuda_source": "distro"}, {"cuda_source": "cuda-repo"}, {"cuda_version": "12.2"},
    {"cuda_source": "cuda-repo", "cuda_version": "13.0"},
])
def test_cudnn_resolves_cuda_exactly_as_the_cuda_role(os_name, overrides):
    cuda, cudnn = RoleVars("cuda", os_name, **overrides), RoleVars("cudnn", os_name, **overrides)
    assert cudnn["__cudnn_cuda_source"] == cuda["__cuda_source"]
    assert cudnn["__cudnn_cuda_version"] == cuda["__cuda_version"]
    assert cudnn["__cudnn_cuda_major"] == cuda["__cuda_major"]


@pytest.mark.parametrize(("os_name", "what"), [
    ("Debian 12", "Debian's nvidia-cudnn (non-free; cuDNN 8.5 for CUDA 11.7)"),
    ("Ubuntu 22.04", "Ubuntu's nvidia-cudnn (multiverse, taken from Debian)"),
    ("Ubuntu 24.04", "Ubuntu's nvidia-cudnn (multiverse, taken from Debian)"),
])
def test_cudnn_distro_is_refused_with_the_reason(os_name, what):
    v = RoleVars("cudnn", os_name, cudnn_source="distro")
    assert v["__cudnn_source"] == "distro"
    msg = v["__cudnn_msg_distro"]
    assert msg.startswith(f"cudnn_source distro cannot install cuDNN: {what} is only an installer script")
    assert "answered non-interactively it installs nothing" in msg
    assert msg.endswith(
        "Use cudnn_source: cuda-repo (or auto), which installs cudnn9-cuda-"
        f"{'11' if os_name == 'Debian 12' else '12'} from NVIDIA's CUDA repository.")


@pytest.mark.parametrize(("version", "ok"), [
    ("9", True), (9, True), ("10", True), ("8", False), ("9.1", False), ("", False),
])
def test_cudnn_version_is_a_major_of_9_or_newer(version, ok):
    v = RoleVars("cudnn", "Ubuntu 24.04", cudnn_version=version)
    assert v["__cudnn_major is match('^[0-9]+$')"
             " and __cudnn_major | int >= __cudnn_first_supported_major"] is ok


def test_cudnn_header_defines_are_read_from_the_first_header_found():
    v = RoleVars("cudnn", "Ubuntu 24.04", __cudnn_header_grep={"stdout_lines": [
        "/usr/include/x86_64-linux-gnu/cudnn_version_v9.h:#define CUDNN_MAJOR 9",
        "/usr/include/x86_64-linux-gnu/cudnn_version_v9.h:#define CUDNN_MINOR 8",
        "/usr/include/x86_64-linux-gnu/cudnn_version_v9.h:#define CUDNN_PATCHLEVEL 0",
        "/usr/include/cudnn_version.h:#define CUDNN_MAJOR 8",
    ]}, __cudnn_header_owner={
        "stdout": "libcudnn9-dev-cuda-12: /usr/include/x86_64-linux-gnu/cudnn_version_v9.h"})
    assert v["__cudnn_headers"][0] == "/usr/include/x86_64-linux-gnu/cudnn_version_v9.h"
    assert v["__cudnn_header_path"] == "/usr/include/x86_64-linux-gnu/cudnn_version_v9.h"
    assert v["__cudnn_header_define"] == {"CUDNN_MAJOR": "9", "CUDNN_MINOR": "8", "CUDNN_PATCHLEVEL": "0"}
    assert (v["__cudnn_header_version"], v["__cudnn_header_package"]) == ("9.8.0", "libcudnn9-dev-cuda-12")


# --- both roles: the argument specs match the defaults ---------------------------------------------

@pytest.mark.parametrize("role", ["cuda", "cudnn"])
def test_argument_specs_document_every_default(role):
    defaults = yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text())
    options = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())[
        "argument_specs"]["main"]["options"]
    assert set(options) == set(defaults)
    for name, spec in options.items():
        assert spec["default"] == defaults[name], name
        assert name.startswith(f"{role}_") and spec["description"]


def test_cudnn_header_mismatch_message_names_what_was_found():
    v = RoleVars("cudnn", "Ubuntu 24.04", __cudnn_header_grep={"stdout_lines": [
        "/usr/include/cudnn_version.h:#define CUDNN_MAJOR 8",
        "/usr/include/cudnn_version.h:#define CUDNN_MINOR 9",
        "/usr/include/cudnn_version.h:#define CUDNN_PATCHLEVEL 7",
    ]}, __cudnn_header_owner={"stdout": "libcudnn8-dev: /usr/include/cudnn_version.h"})
    assert v["__cudnn_msg_header_mismatch"] == (
        "/usr/include/cudnn_version.h (libcudnn8-dev) reports cuDNN 8.9.7, "
        "but cudnn_version is 9 for CUDA 12 (cudnn9-cuda-12).")
    none = RoleVars("cudnn", "Ubuntu 24.04", __cudnn_header_grep={"stdout_lines": []})
    assert none["__cudnn_msg_header_mismatch"].startswith(
        "None of /usr/include/x86_64-linux-gnu/cudnn_version_v9.h, /usr/include/cudnn_version_v9.h,")


@pytest.mark.parametrize("role", ["cuda", "cudnn"])
@pytest.mark.parametrize("os_name", ["Debian 12", "Ubuntu 24.04"])
def test_messages_are_single_lines(role, os_name):
    v = RoleVars(role, os_name)
    names = [name for name in v.variables if name.startswith(f"__{role}_msg_")]
    assert len(names) >= 4
    for name in names:
        assert "\n" not in v[name] and "  " not in v[name], (name, v[name])


def test_roles_and_resolver_read_one_table():
    """cuda and cudnn resolve "auto" as provision/gpu/defaults.py does: both read roles/gpu_stack."""
    from provision.gpu.cudnn import cudnn_package
    from provision.gpu.defaults import defaults
    from provision.gpu.lookup import cuda_min_driver, cuda_releases
    from provision.gpu.model import HostFacts

    assert RoleVars("cuda", "Ubuntu 24.04")["__cuda_releases"] == list(cuda_releases())
    role_table = RoleVars("cuda", "Ubuntu 24.04")["__cuda_min_driver"]
    for release in cuda_releases():
        assert role_table[release] == cuda_min_driver(release)
    for os_name in ("Debian 12", "Ubuntu 22.04", "Ubuntu 24.04"):
        os_id, release = os_name.split()
        row = defaults(HostFacts(os_id.lower(), release, "x86_64"))
        cuda, cudnn = RoleVars("cuda", os_name), RoleVars("cudnn", os_name)
        assert (cuda["__cuda_source"], cuda["__cuda_version"]) == (row.cuda_source, row.cuda_version)
        assert cudnn["__cudnn_source"] == row.cudnn_source
        assert cudnn["__cudnn_major"] == row.cudnn_version
        assert cudnn["__cudnn_package"] == cudnn_package(row.cudnn_version, row.cuda_version)


GTX_1080 = ("02:00.0 VGA compatible controller [0300]: NVIDIA Corporation GP104 [GeForce GTX 1080] "
            "[10de:1b80] (rev a1)")
RTX_4090 = ("01:00.0 VGA compatible controller [0300]: NVIDIA Corporation AD102 [GeForce RTX 4090] "
            "[10de:2684] (rev a1)")


@pytest.mark.parametrize(("os_name", "cuda", "lines", "spec"), [
    ("Ubuntu 24.04", "12.8", [RTX_4090], "cudnn9-cuda-12"),  # the current line, unpinned
    ("Ubuntu 24.04", "12.8", [GTX_1080], "cudnn9-cuda-12=9.10.2*"),  # Pascal: the last line for it
    ("Ubuntu 24.04", "12.8", [RTX_4090, GTX_1080], "cudnn9-cuda-12=9.10.2*"),
    ("Debian 12", "auto", [], "cudnn9-cuda-11=9.10.2*"),  # CUDA 11.8: the last line built for it
    ("Ubuntu 24.04", "13.0", [RTX_4090], "cudnn9-cuda-13"),
])
def test_cudnn_release_line_follows_cuda_and_gpus(os_name, cuda, lines, spec):
    v = RoleVars("cudnn", os_name, cuda_version=cuda, __cudnn_lspci={"stdout_lines": lines, "rc": 0})
    assert v["__cudnn_package_spec"] == spec


def test_cudnn_without_a_line_for_cuda_13_on_pascal_is_refused():
    v = RoleVars("cudnn", "Ubuntu 24.04", cuda_version="13.0", __cudnn_lspci={"stdout_lines": [GTX_1080]})
    assert v["__cudnn_line"] == {}
    assert v["__cudnn_msg_no_line"].startswith(
        "No cuDNN 9 release supports CUDA 13 on GPUs older than Turing")
