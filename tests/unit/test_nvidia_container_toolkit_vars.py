"""The nvidia_container_toolkit role's CDI decisions: its vars and tasks/cdi.yml, templated by
Ansible's own Templar.

A case is a faked host: the role variables a user sets and the results that the role's probes
(``lspci``, ``systemctl show``, ``stat``, ``slurp``, the install) would register. The files are
layered as Ansible layers them (defaults < inventory < vars/main.yml). ``plan`` walks
tasks/cdi.yml in order, evaluates each task's ``when`` as Ansible does (``evaluate_conditional``,
which also insists on a boolean) and registers the case's result for the tasks that run, or a
skipped result for the others, so the tests read which tasks a host gets.
"""

import base64
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from provision.checks.test_nvidia_container_toolkit import (
    CDI_REFRESH_SPEC,
    CDI_STATIC_SPEC,
    cdi_refresh_in_use,
)
from tests.standins import docker_repos

ROLE = Path(__file__).resolve().parents[2] / "roles" / "nvidia_container_toolkit"
LOADER = DataLoader()

RTX_3090 = ("01:00.0 VGA compatible controller [0300]: NVIDIA Corporation GA102 [GeForce RTX 3090] "
            "[10de:2204] (rev a1)")
SPEC_TEXT = b"---\ncdiVersion: 0.5.0\nkind: nvidia.com/gpu\n"
SPEC_SHA = hashlib.sha256(SPEC_TEXT).hexdigest()


def _load(relative: str):
    return LOADER.load_from_file(str(ROLE / relative), trusted_as_template=True) or {}


def show(*states: str, reload: bool = False) -> dict:
    """``systemctl show --property=LoadState --property=NeedDaemonReload`` of the two units."""
    blocks = [f"LoadState={state}\nNeedDaemonReload={'yes' if reload else 'no'}" for state in states]
    return {"stdout": "\n\n".join(blocks) + "\n", "rc": 0}


LOADED = show("loaded", "loaded")
NOT_FOUND = show("not-found", "not-found")


def spec_stat(exists: bool = True, sha: str = SPEC_SHA) -> dict:
    return {"stat": {"exists": True, "checksum": sha} if exists else {"exists": False}}


def record(sha: str | None) -> dict:
    """slurp of rigforge's record: its content, or slurp's failure for a missing file."""
    if sha is None:
        return {"failed": True, "msg": "file not found: /var/lib/rigforge/nvidia-cdi-spec.sha256"}
    return {"content": base64.b64encode(f"{sha}\n".encode()).decode(), "encoding": "base64"}


def _variables(version: str = "1.18.0", gpu: bool = False, check_mode: bool = False,
               install_changed: bool = False, results: dict | None = None) -> dict:
    return {
        **_load("defaults/main.yml"),
        "inventory_hostname": "rig1", "role_path": str(ROLE), "ansible_check_mode": check_mode,
        "nvidia_container_toolkit_version": version,
        "__nvidia_container_toolkit_lspci": {"rc": 0, "stdout_lines": [RTX_3090] if gpu else []},
        "__nvidia_container_toolkit_install": {"changed": install_changed},
        **_load("vars/main.yml"),
        **(results or {}),
    }


def _templar(variables: dict) -> Templar:
    return Templar(loader=LOADER, variables=variables)


def value(name: str, **case):
    return _templar(_variables(**case)).template(trust_as_template(f"{{{{ {name} }}}}"))


def plan(units: dict = NOT_FOUND, stat: dict | None = None, slurp: dict | None = None,
         static_stdout: str = "", **case) -> tuple[list[str], dict]:
    """The names of the tasks of tasks/cdi.yml that run, and the variables after the last one."""
    results = {
        "__nvidia_container_toolkit_cdi_units": units,
        "__nvidia_container_toolkit_cdi_static_stat": stat or spec_stat(exists=False),
        "__nvidia_container_toolkit_cdi_static_record_read": slurp or record(None),
        "__nvidia_container_toolkit_cdi_static": {
            "changed": True, "stdout": static_stdout, "stdout_lines": static_stdout.splitlines()},
        "__nvidia_container_toolkit_cdi": {"changed": False, "stdout": ""},
    }
    variables = _variables(**case)
    ran = []
    for task in _load("tasks/cdi.yml"):
        when = task.get("when", [])
        conditions = when if isinstance(when, list) else [when]
        runs = all(_templar(variables).evaluate_conditional(trust_as_template(c)) for c in conditions)
        if runs:
            ran.append(task["name"])
        if "register" in task:
            skipped = {"skipped": True, "changed": False}
            variables[task["register"]] = results[task["register"]] if runs else skipped
    return ran, variables


ASK = "Ask systemd for the toolkit's nvidia-cdi-refresh units."
RELOAD = "Reload systemd for the changed nvidia-cdi-refresh units."
ENABLE_PATH = ("Enable and start nvidia-cdi-refresh.path, which regenerates the CDI specification "
               "when the driver changes.")
ENABLE_SERVICE = "Enable nvidia-cdi-refresh.service, which writes the CDI specification at boot."
REFRESH_NOW = "Generate the CDI specification with nvidia-cdi-refresh.service."
STATIC = "Generate the static CDI specification with nvidia-ctk (toolkits without nvidia-cdi-refresh)."
RECORD_DIR = "Create rigforge's directory for the record of the static CDI specification."
RECORD = "Record the SHA-256 of the static CDI specification rigforge wrote."
LOOK = "Look for a static CDI specification left from before nvidia-cdi-refresh."
READ = "Read rigforge's record of the static CDI specification."
REMOVE_STATIC = ("Remove the static CDI specification rigforge wrote, "
                 "which would go stale after a driver update.")
REMOVE_RECORD = "Remove rigforge's record of the static CDI specification."
FOREIGN = "Report a static CDI specification that rigforge did not write."
NO_GPU = "Report that the CDI specification was skipped."


def test_the_task_names_are_those_of_the_role():
    assert [task["name"] for task in _load("tasks/cdi.yml")] == [
        ASK, RELOAD, ENABLE_PATH, ENABLE_SERVICE, REFRESH_NOW, STATIC, RECORD_DIR, RECORD, LOOK, READ,
        REMOVE_STATIC, REMOVE_RECORD, FOREIGN, NO_GPU]


@pytest.mark.parametrize("version, units, expected", [
    ("1.18.0", LOADED, True),
    ("1.20.0", LOADED, True),
    ("1.17.8", NOT_FOUND, False),
    ("1.18.0", NOT_FOUND, False),  # a toolkit release without the units
    ("1.18.0", show("loaded", "not-found"), False),
    ("1.18.0", show("masked", "loaded"), False),  # masked by the user: left alone
    ("1.17.9", LOADED, False),  # left behind in /etc/systemd/system by a downgrade
    ("1.18.0", {"stdout": "", "rc": 1}, False),  # systemd not answering
])
def test_refresh_needs_a_release_with_the_units_and_systemd_to_have_them(version, units, expected):
    refresh = value("__nvidia_container_toolkit_cdi_refresh", version=version,
                    results={"__nvidia_container_toolkit_cdi_units": units})
    assert refresh is expected
    spec = value("__nvidia_container_toolkit_cdi_spec", version=version,
                 results={"__nvidia_container_toolkit_cdi_units": units})
    assert spec == ("/var/run/cdi/nvidia.yaml" if expected else "/etc/cdi/nvidia.yaml")


def test_check_mode_before_the_install_goes_by_the_pinned_release():
    pending = {"check_mode": True, "install_changed": True,
               "results": {"__nvidia_container_toolkit_cdi_units": NOT_FOUND}}
    assert value("__nvidia_container_toolkit_cdi_refresh", version="1.18.0", **pending) is True
    assert value("__nvidia_container_toolkit_cdi_refresh", version="1.17.9", **pending) is False


def test_toolkit_with_the_units_on_a_host_without_gpu_enables_them_and_generates_nothing():
    ran, variables = plan(units=LOADED)
    assert ran == [ASK, ENABLE_PATH, ENABLE_SERVICE, LOOK, REMOVE_RECORD, NO_GPU]
    task = _load("tasks/cdi.yml")[-1]
    message = _templar({**variables, **task["vars"]}).template(task["ansible.builtin.debug"]["msg"])
    assert message[0] == ("WARNING: no CDI specification generated on rig1: "
                          "no NVIDIA GPU (PCI class 0300/0302, vendor 10de) found by lspci.")
    assert "generates /var/run/cdi/nvidia.yaml on a host with an NVIDIA GPU" in message[1]


def test_toolkit_with_the_units_on_a_gpu_host_lets_the_service_write_the_spec():
    ran, _ = plan(units=LOADED, gpu=True)
    assert ran == [ASK, ENABLE_PATH, ENABLE_SERVICE, REFRESH_NOW, LOOK, REMOVE_RECORD]


def test_changed_unit_files_are_reloaded_only_when_systemd_says_so():
    assert RELOAD in plan(units=show("loaded", "loaded", reload=True))[0]
    assert RELOAD not in plan(units=LOADED)[0]


def test_the_static_spec_rigforge_recorded_is_removed():
    ran, _ = plan(units=LOADED, stat=spec_stat(), slurp=record(SPEC_SHA))
    assert REMOVE_STATIC in ran and REMOVE_RECORD in ran and FOREIGN not in ran
    assert READ in ran


@pytest.mark.parametrize("recorded", [None, "0" * 64, "not a hash"])
def test_a_static_spec_rigforge_did_not_record_stays_with_a_warning(recorded):
    ran, variables = plan(units=LOADED, stat=spec_stat(), slurp=record(recorded))
    assert REMOVE_STATIC not in ran and FOREIGN in ran
    message = _templar(variables).template(
        next(t for t in _load("tasks/cdi.yml") if t["name"] == FOREIGN)["ansible.builtin.debug"]["msg"])
    assert message[0].startswith(
        "WARNING: /etc/cdi/nvidia.yaml on rig1 is not a CDI specification that rigforge")
    assert "rm /etc/cdi/nvidia.yaml" in message[1]


def test_toolkit_without_the_units_generates_and_records_the_static_spec_on_a_gpu_host():
    stdout = f"rigforge: CDI specification changed\nsha256={SPEC_SHA}\n"
    ran, variables = plan(version="1.17.8", gpu=True, static_stdout=stdout)
    assert ran == [ASK, STATIC, RECORD_DIR, RECORD]
    task = next(t for t in _load("tasks/cdi.yml") if t["name"] == RECORD)
    assert _templar(variables).template(task["ansible.builtin.copy"]["content"]) == f"{SPEC_SHA}\n"
    assert _templar(variables).template(task["ansible.builtin.copy"]["dest"]) == (
        "/var/lib/rigforge/nvidia-cdi-spec.sha256")


def test_toolkit_without_the_units_on_a_host_without_gpu_only_reports():
    assert plan(version="1.17.8")[0] == [ASK, NO_GPU]


def test_check_mode_changes_nothing_that_check_mode_cannot_undo():
    # Converged host with the units: the systemd tasks run (the module supports check mode),
    # the generation does not.
    ran, _ = plan(units=LOADED, gpu=True, check_mode=True)
    assert REFRESH_NOW not in ran and STATIC not in ran and RECORD not in ran
    # Before the install (pending in check mode) the units do not exist yet: no systemd task;
    # file removals report what would change.
    ran, _ = plan(units=NOT_FOUND, gpu=True, check_mode=True, install_changed=True,
                  stat=spec_stat(), slurp=record(SPEC_SHA))
    assert ran == [ASK, LOOK, READ, REMOVE_STATIC, REMOVE_RECORD]
    assert plan(version="1.17.8", gpu=True, check_mode=True)[0] == [ASK]


def test_the_state_manifest_names_the_units_only_when_they_are_used():
    (task,) = _load("tasks/state.yml")
    assert task["ansible.builtin.import_role"] == {"name": "common", "tasks_from": "state.yml"}
    services = task["vars"]["common_state"]["service"]
    with_units = _variables(results={"__nvidia_container_toolkit_cdi_units": LOADED})
    assert _templar(with_units).template(services) == [
        "nvidia-cdi-refresh.path", "nvidia-cdi-refresh.service"]
    without = _variables(version="1.17.8", results={"__nvidia_container_toolkit_cdi_units": NOT_FOUND})
    assert _templar(without).template(services) == []


def test_role_and_checks_agree_on_the_spec_files_and_the_first_release():
    role = _load("vars/main.yml")
    assert role["__nvidia_container_toolkit_cdi_static_spec"] == CDI_STATIC_SPEC
    assert role["__nvidia_container_toolkit_cdi_refresh_spec"] == CDI_REFRESH_SPEC
    assert CDI_REFRESH_SPEC == docker_repos.NVIDIA_CDI_REFRESH_SPEC
    assert role["__nvidia_container_toolkit_cdi_refresh_min_version"] == docker_repos.NVIDIA_CDI_REFRESH_FROM
    units = tuple(role["__nvidia_container_toolkit_cdi_refresh_units"])
    assert units == docker_repos.NVIDIA_CDI_REFRESH_UNITS


@pytest.mark.parametrize("version, show_out, expected", [
    ("1.18.0-1", "LoadState=loaded\n\nLoadState=loaded\n", True),
    ("1.17.9-1", "LoadState=loaded\n\nLoadState=loaded\n", False),
    ("1.18.0-1", "LoadState=loaded\n\nLoadState=not-found\n", False),
    ("1.18.0-1", "LoadState=masked\n\nLoadState=loaded\n", False),
    (None, "LoadState=not-found\n\nLoadState=not-found\n", False),
])
def test_the_checks_look_for_the_spec_where_the_installed_toolkit_writes_it(version, show_out, expected):
    assert cdi_refresh_in_use(version, show_out) is expected


def test_the_standin_ships_the_units_from_1_18_only():
    assert [v for v in docker_repos.NVIDIA_TOOLKIT_VERSIONS if docker_repos.has_cdi_refresh(v)] == ["1.18.0"]
    for version in docker_repos.NVIDIA_TOOLKIT_VERSIONS:
        base = next(s for s in docker_repos.nvidia_toolkit_packages(version)
                    if s.name == "nvidia-container-toolkit-base")
        units = [p for p in base.files if p.startswith("/etc/systemd/system/")]
        if docker_repos.has_cdi_refresh(version):
            expected = sorted(docker_repos.NVIDIA_CDI_REFRESH_UNITS)
            assert sorted(units) == [f"/etc/systemd/system/{unit}" for unit in expected]
            assert set(units) <= set(base.conffiles)
            service = base.files["/etc/systemd/system/nvidia-cdi-refresh.service"]
            assert "STAND-IN" in service
            assert "ExecStart=/usr/bin/nvidia-ctk cdi generate --output=/var/run/cdi/nvidia.yaml" in service
            assert "enable --now nvidia-cdi-refresh.path" in base.postinst
        else:
            assert units == [] and base.postinst is None


@pytest.mark.skipif(not shutil.which("dpkg-deb"), reason="dpkg-deb is missing (apt-get install dpkg)")
def test_the_standin_1_18_base_package_builds_with_its_conffiles(tmp_path):
    from tests.standins.apt_repo import build_deb

    base = next(s for s in docker_repos.nvidia_toolkit_packages("1.18.0")
                if s.name == "nvidia-container-toolkit-base")
    deb = build_deb(base, tmp_path, note=docker_repos.NVIDIA_NOTE)
    control = subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(deb)], capture_output=True, check=True).stdout
    listing = subprocess.run(["tar", "-tf", "-"], input=control, capture_output=True, check=True).stdout
    assert b"./conffiles" in listing and b"./postinst" in listing
