"""playbooks/update_drivers.yml and the update path of role nvidia_driver (tasks/update*.yml),
without hosts: the structure that makes the rollout stop and roll back, and the decisions the
update takes from what hosts report (installed packages, `docker inspect`, kernels), templated by
Ansible's own Templar as in test_nvidia_driver_vars.py. The integration test
(tests/integration/test_update_drivers.py) runs it all on sandbox hosts.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from provision import workspace

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "nvidia_driver"
PLAYBOOK = REPO / "playbooks" / "update_drivers.yml"
LOADER = DataLoader()
FAIL_VAR = "__nvidia_driver_update_fail_after_switch"


def _load(path: Path):
    return LOADER.load_from_file(str(path), trusted_as_template=True)


def _imports(tasks: list[dict]) -> list[str]:
    return [t["ansible.builtin.import_tasks"] for t in tasks if "ansible.builtin.import_tasks" in t]


def _update_block() -> dict:
    (block,) = _load(ROLE / "tasks" / "update.yml")
    return block


def _variables(**registered) -> dict:
    """The role's variables as the update sees them, with faked registered results."""
    return {
        **_load(ROLE / "defaults" / "main.yml"),
        # The facts table: the vars of the gpu_stack role, on which the role depends.
        **_load(ROLE.parent / "gpu_stack" / "vars" / "main.yml"),
        **_load(ROLE / "vars" / "main.yml"),
        **_load(ROLE / "vars" / "guard.yml"),
        **_update_block()["vars"],
        "inventory_hostname": "rig1",
        "ansible_facts": {"distribution": registered.pop("distribution", "Debian"),
                          "kernel": "6.1.0-28-amd64"},
        **registered,
    }


def value(name: str, **registered):
    return Templar(loader=LOADER, variables=_variables(**registered)).template(
        trust_as_template(f"{{{{ __nvidia_driver_update_{name} }}}}"))


# --- the playbook and the order of the steps ----------------------------------------------------

def test_playbook_rolls_out_in_batches_and_stops_at_the_first_failure():
    (play,) = _load(PLAYBOOK)
    assert play["hosts"] == "all" and play["become"] is True
    assert play["serial"] == "{{ rigforge_serial | default(1) }}"
    assert play["max_fail_percentage"] == 0
    # rigforge update-drivers runs with --tags nvidia_driver: the play carries the tag.
    assert "nvidia_driver" in play["tags"]
    select, setup, update, gate = play["tasks"]
    assert select["ansible.builtin.import_role"]["tasks_from"] == "select_components.yml"
    assert play["gather_facts"] is False and "ansible.builtin.setup" in setup  # fresh facts, not cached
    assert update["ansible.builtin.import_role"] == {"name": "nvidia_driver", "tasks_from": "update"}
    assert update["when"] == "'nvidia_driver' in gpu_stack_selected_components"
    # max_fail_percentage does not count unreachable hosts: the gate stops the rollout for them.
    assert "ansible.builtin.fail" in gate
    assert gate["when"] == "ansible_play_hosts_all | difference(ansible_play_hosts) | length > 0"


def test_provision_gathers_the_driver_play_facts_afresh(tmp_path):
    """The workspace caches facts for an hour; after a kernel update the cached kernel would
    point DKMS at the old headers."""
    from provision import workspace

    ws, _ = workspace.init(tmp_path / "ws")
    (play,) = _load(ws.root / "playbooks" / "nvidia_driver.yml")
    assert play["gather_facts"] is False
    select, setup = play["pre_tasks"]
    assert "always" in select["tags"]
    assert "ansible.builtin.setup" in setup and "nvidia_driver" in setup["tags"]


def test_update_runs_the_steps_in_order_and_rolls_back_after_preflight():
    block = _update_block()["block"]
    # Preflight changes nothing: a refusal there has nothing to roll back.
    assert _imports(block) == ["preflight.yml", "update_record.yml"]
    (switch,) = [t for t in block if "rescue" in t]
    assert _imports(switch["block"]) == [
        "update_consumers_stop.yml", "nouveau.yml", "install.yml", "hold.yml", "update_kernel.yml",
        "update_dkms.yml",
        "update_reboot.yml", "persistenced.yml", "verify.yml", "update_consumers_start.yml",
        "update_check.yml",
    ]
    names = [t.get("name", "") for t in switch["block"]]
    hook = switch["block"][names.index("Fail on purpose right after the switch (tests only).")]
    assert names.index(hook["name"]) == names.index("Hold the driver packages.") + 1
    assert hook["when"] == f"{FAIL_VAR} | default(false) | bool"
    assert _imports(switch["rescue"]) == ["update_rollback.yml"]
    # An update takes the newest version of the branch too.
    install = next(t for t in switch["block"] if t.get("ansible.builtin.import_tasks") == "install.yml")
    assert install["vars"] == {"nvidia_driver_upgrade": True}


def test_consumers_are_stopped_before_the_reboot_too():
    tasks = _load(ROLE / "tasks" / "update_reboot.yml")
    names = [t["name"] for t in tasks]
    # The kernel guard comes first: a reboot into a kernel without a module is refused.
    assert _imports(tasks) == ["kernel_guard_check.yml", "update_consumers_stop.yml"]
    stop, reboot = "Stop the GPU consumers for the reboot.", "Reboot into the updated driver."
    guard = "Check the installed kernels before a reboot."
    assert names.index(guard) < names.index(stop) < names.index(reboot)


def test_rollback_reruns_the_role_with_the_recorded_driver():
    tasks = _load(ROLE / "tasks" / "update_rollback.yml")
    (put_back,) = [t for t in tasks if t.get("name") == "Put the recorded driver back."]
    include = put_back["block"][-1]
    assert include["ansible.builtin.include_role"]["name"] == "nvidia_driver"
    assert include["ansible.builtin.include_role"]["apply"] == {"tags": ["nvidia_driver"]}
    # Extra vars (--branch) outrank include vars, so the recorded choice goes in below
    # nvidia_driver_*: the resolved values that tasks/resolve.yml turns into the choice.
    role_vars = _load(ROLE / "vars" / "main.yml")
    for what in ("source", "branch", "flavor"):
        name = f"__nvidia_driver_resolved_{what}"
        assert name in role_vars
        assert include["vars"][name] == f"{{{{ __nvidia_driver_update_before.{what} }}}}"
    assert include["vars"]["nvidia_driver_upgrade"] is False
    message = tasks[-1]["ansible.builtin.fail"]["msg"]
    assert message.startswith("The driver update of {{ inventory_hostname }}")


def test_update_entry_point_validates_the_same_variables():
    specs = _load(ROLE / "meta" / "argument_specs.yml")["argument_specs"]
    assert specs["update"]["options"] == specs["main"]["options"]


def test_readme_documents_the_update_and_its_test_only_variable():
    readme = (ROLE / "README.md").read_text()
    assert "## Updates" in readme and "playbooks/update_drivers.yml" in readme
    line = next(line for line in readme.splitlines() if FAIL_VAR in line)
    assert "test" in line.lower()


def test_init_ships_the_playbook_and_it_parses(tmp_path):
    ws, _ = workspace.init(tmp_path / "ws")
    assert (ws.root / "playbooks" / "update_drivers.yml").is_file()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["ANSIBLE_CONFIG"] = str(ws.ansible_cfg)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "--syntax-check",
         "playbooks/update_drivers.yml"],
        cwd=ws.root, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- what is installed, read from dpkg-query ------------------------------------------------------

def _dpkg(*rows: str) -> dict:
    """A registered `dpkg-query -W -f='${Package} ${Version} ${db:Status-Want} ${db:Status-Status}\\n'`."""
    return {"__nvidia_driver_dpkg": {"stdout_lines": list(rows)}}


# NVIDIA's debian12 repository: Debian-style names behind the pinning package.
CUDA_REPO_570 = _dpkg(
    "cuda-keyring 1.1-1 install installed",
    "libcuda1 570.124.06-1 hold installed",
    "libnvidia-ml1 570.124.06-1 hold installed",
    "nvidia-driver 570.124.06-1 hold installed",
    "nvidia-driver-pinning-570 570.124.06-1 hold installed",
    "nvidia-kernel-dkms 570.124.06-1 hold installed",
    # Other components' packages are no driver packages: not of a driver branch.
    "nvidia-container-toolkit 1.17.8-1 hold installed",
    "nvidia-cuda-toolkit 11.8.89~11.8.0-5~deb12u1 hold installed",
    # Removed but not purged: not installed.
    "nvidia-driver-pinning-575 575.57.08-1 deinstall config-files",
)
UBUNTU_570_OPEN = _dpkg(
    "libnvidia-compute-570-server 570.133.20-0ubuntu0.24.04.1 hold installed",
    "linux-modules-nvidia-570-server-open-6.8.0-45-generic 6.8.0-45.45+1 install installed",
    "nvidia-compute-utils-570-server 570.133.20-0ubuntu0.24.04.1 hold installed",
    "nvidia-driver-570-server-open 570.133.20-0ubuntu0.24.04.1 hold installed",
    "nvidia-kernel-common-570-server 570.133.20-0ubuntu0.24.04.1 hold installed",
    "nvidia-utils-570-server 570.133.20-0ubuntu0.24.04.1 install installed",
)
DEBIAN_535 = _dpkg(
    "libnvidia-ml1 535.216.01-1~deb12u1 hold installed",
    "nvidia-driver 535.216.01-1~deb12u1 hold installed",
    "nvidia-kernel-dkms 535.216.01-1~deb12u1 hold installed",
    "nvidia-smi 535.216.01-1~deb12u1 hold installed",
    "nvidia-opencl-icd 535.216.01-1~deb12u1 hold installed",
)


@pytest.mark.parametrize("registered, distribution, expected", [
    (CUDA_REPO_570, "Debian", ("cuda-repo", "570", "proprietary", "570.124.06")),
    (UBUNTU_570_OPEN, "Ubuntu", ("ubuntu", "570", "open", "570.133.20")),
    (DEBIAN_535, "Debian", ("debian", "535", "proprietary", "535.216.01")),
    (_dpkg("bash 5.2.15-2+b7 install installed"), "Debian", ("debian", "", "proprietary", "")),
], ids=["cuda-repo", "ubuntu-open", "debian", "nothing"])
def test_the_installed_driver_is_recognised(registered, distribution, expected):
    got = tuple(value(f"found_{what}", distribution=distribution, **registered)
                for what in ("source", "branch", "flavor", "version"))
    assert got == expected
    assert all(isinstance(v, str) for v in got)  # "570" stays a string


def test_the_state_line_names_the_branch_and_the_packages_not_held():
    assert value("state_text", **CUDA_REPO_570) == (
        "branch 570 (570.124.06, proprietary) is installed, 5 driver packages, all held")
    assert value("state_text", distribution="Ubuntu", **UBUNTU_570_OPEN) == (
        "branch 570 (570.133.20, open) is installed, 5 driver packages, not held: nvidia-utils-570-server")
    assert value("state_text", **_dpkg("bash 5.2.15-2+b7 install installed")) == (
        "no NVIDIA driver package is installed")


def test_a_half_switched_host_is_reported_with_every_branch():
    half = _dpkg("cuda-drivers-570 570.124.06-1 install installed",
                 "libnvidia-compute-575 575.57.08-1 install installed",
                 "nvidia-driver-570 570.124.06-1 hold installed",
                 "nvidia-driver-pinning-575 575.57.08-1 install installed")
    assert value("found_branch", **half) == "570"
    text = value("state_text", **half)
    assert text.startswith("branch 570 (570.124.06, proprietary) is installed, 4 driver packages, not held: ")
    assert "packages of several branches are installed: " in text
    assert "libnvidia-compute-575 575.57.08-1" in text


# --- GPU consumers: `docker inspect` -------------------------------------------------------------

def _container(cid: str, name: str, **host_config) -> dict:
    return {"Id": cid * 64, "Name": f"/{name}", "State": {"Running": True},
            "HostConfig": {"Runtime": "runc", "DeviceRequests": None, "Devices": [], **host_config}}


def test_containers_that_use_the_gpu_are_recognised():
    containers = [
        _container("a", "gpus-all", DeviceRequests=[
            {"Driver": "", "Count": -1, "DeviceIDs": None, "Capabilities": [["gpu"]], "Options": {}}]),
        _container("b", "gpus-device", DeviceRequests=[
            {"Driver": "nvidia", "Count": 0, "DeviceIDs": ["0"], "Capabilities": [["gpu", "compute"]]}]),
        _container("c", "runtime", Runtime="nvidia"),
        _container("d", "cdi", DeviceRequests=[
            {"Driver": "cdi", "Count": 0, "DeviceIDs": ["nvidia.com/gpu=all"], "Capabilities": None}]),
        _container("e", "device", Devices=[
            {"PathOnHost": "/dev/nvidia0", "PathInContainer": "/dev/nvidia0", "CgroupPermissions": "rwm"}]),
        _container("f", "web", Binds=["/srv/gpu:/data"], Devices=[
            {"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"}]),
        {"Id": "g" * 64, "Name": "/odd"},  # no HostConfig at all
    ]
    inspect = {"stdout": json.dumps(containers, indent=4)}
    found = value("gpu_containers", __nvidia_driver_update_docker_inspect=inspect)
    assert [row[1] for row in found] == ["gpus-all", "gpus-device", "runtime", "cdi", "device"]
    assert found[0][0] == "a" * 64


@pytest.mark.parametrize("inspect", [{"skipped": True}, {"stdout": ""}, {"stdout": "[]"}])
def test_no_docker_means_no_containers(inspect):
    assert value("gpu_containers", __nvidia_driver_update_docker_inspect=inspect) == []


# --- kernels for DKMS ------------------------------------------------------------------------------

def _kernel_script() -> str:
    (task,) = [t for t in _load(ROLE / "tasks" / "update_dkms.yml")
               if t["name"].startswith("List the running and the installed kernels")]
    return task["ansible.builtin.shell"]["cmd"]


def _list_kernels(tmp_path: Path, running: str, kernels: dict[str, bool]) -> list[str]:
    """Run the task's script against a fake /lib/modules: {kernel: headers installed}."""
    modules = tmp_path / "modules"
    for kernel, headers in kernels.items():
        (modules / kernel).mkdir(parents=True)
        if headers:
            (modules / kernel / "build").mkdir()
            (modules / kernel / "build" / "Makefile").write_text("")
    script = _kernel_script().replace("/lib/modules", str(modules)).replace("$(uname -r)", running)
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return proc.stdout.splitlines()


def test_kernels_are_listed_in_version_order_with_their_headers(tmp_path):
    lines = _list_kernels(tmp_path, "6.1.0-28-amd64", {
        "6.1.0-9-amd64": True, "6.1.0-28-amd64": True, "6.1.0-30-amd64": False, "6.1.0-100-amd64": True})
    assert lines == ["6.1.0-9-amd64 older headers", "6.1.0-28-amd64 running headers",
                     "6.1.0-30-amd64 newer no-headers", "6.1.0-100-amd64 newer headers"]
    registered = {"__nvidia_driver_update_kernels": {"stdout_lines": lines}}
    assert value("dkms_kernels", **registered) == ["6.1.0-28-amd64", "6.1.0-100-amd64"]


def test_a_container_host_has_no_kernel_to_build_for(tmp_path):
    """A sandbox shares its host's kernel: no /lib/modules entry for it at all."""
    lines = _list_kernels(tmp_path, "6.18.44-fc", {})
    assert lines == ["6.18.44-fc running not-installed"]
    assert value("dkms_kernels", __nvidia_driver_update_kernels={"stdout_lines": lines}) == []


# --- the failure report ------------------------------------------------------------------------------

def _render(template: str, **registered) -> str:
    return Templar(loader=LOADER, variables=_variables(**registered)).template(trust_as_template(template))


def _rollback_task(name: str) -> dict:
    return next(t for t in _load(ROLE / "tasks" / "update_rollback.yml") if t.get("name") == name)


def test_the_failure_is_summed_up_in_one_line():
    """rigforge prints the first line of a failed task's message: the report must be one line."""
    failure = _rollback_task("Remember why the update failed.")["ansible.builtin.set_fact"]
    why = _render(failure["__nvidia_driver_update_failure"],
                  ansible_failed_task={"name": "Install the NVIDIA driver packages."},
                  ansible_failed_result={"msg": "non-zero return code\nmore",
                                         "stderr": "E: one\nE: Broken packages\n"})
    assert why == '"Install the NVIDIA driver packages.": non-zero return code (E: Broken packages)'

    message = _rollback_task("Fail the host with what happened.")["ansible.builtin.fail"]["msg"]
    common = {
        "__nvidia_driver_update_target": "branch 575 (cuda-repo, proprietary)",
        "__nvidia_driver_update_failure": why,
        "__nvidia_driver_update_before": {"branch": "570", "source": "cuda-repo", "flavor": "proprietary"},
        "__nvidia_driver_update_rollback_error": "",
        "__nvidia_driver_update_consumers_error": "",
        "__nvidia_driver_update_consumers": {"ollama": True, "containers": ["a" * 64],
                                             "container_names": ["llm"]},
        **CUDA_REPO_570,
    }
    rolled_back = _render(message, **common)
    assert "\n" not in rolled_back
    assert rolled_back == (
        "The driver update of rig1 to branch 575 (cuda-repo, proprietary) failed at "
        '"Install the NVIDIA driver packages.": non-zero return code (E: Broken packages). '
        "Rolled back to the recorded branch 570 (cuda-repo, proprietary). "
        "Now: branch 570 (570.124.06, proprietary) is installed, 5 driver packages, all held. "
        "GPU consumers started again: the ollama service, container llm. "
        "The driver before the update is recorded in /var/lib/rigforge/driver-before-update.json. "
        "The rollout stops here: hosts not updated yet are left untouched.")

    failed_too = _render(message, **{**common, "__nvidia_driver_update_rollback_error": '"X.": broken',
                                     "__nvidia_driver_update_consumers_error": '"Y.": no docker'})
    assert "\n" not in failed_too
    assert ('The rollback to the recorded branch 570 (cuda-repo, proprietary) failed too, at "X.": broken.'
            in failed_too)
    assert 'The GPU consumers could not be started again: "Y.": no docker.' in failed_too

    nobody = {"ollama": False, "containers": [], "container_names": []}
    nothing_before = _render(message, **{**common, "__nvidia_driver_update_before": {"branch": ""},
                                         "__nvidia_driver_update_consumers": nobody})
    assert "\n" not in nothing_before
    assert ("No NVIDIA driver was installed before the update, so there is nothing to roll back to."
            in nothing_before)
    assert "started again" not in nothing_before


def _dkms_report(**registered) -> str:
    tasks = _load(ROLE / "tasks" / "update_dkms.yml")
    task = next(t for t in tasks if t["name"] == "Report the DKMS rebuild.")
    variables = {**_variables(**registered), **task["vars"]}
    return Templar(loader=LOADER, variables=variables).template(
        trust_as_template(task["ansible.builtin.debug"]["msg"]))


@pytest.mark.parametrize("registered, expected", [
    ({"__nvidia_driver_update_kernels": {"stdout_lines": ["6.18.44-fc running not-installed"]}},
     "SKIPPED: DKMS rebuild: no kernel to build for on rig1: 6.18.44-fc (running): not installed by the "
     "package manager, e.g. a container sharing its host kernel."),
    ({"__nvidia_driver_update_dkms_bin": {"stat": {"exists": False}}},
     "SKIPPED: DKMS rebuild: dkms is not installed on rig1 (/usr/sbin/dkms)."),
    ({"__nvidia_driver_update_kernels": {"stdout_lines": [
        "6.1.0-28-amd64 running headers", "6.1.0-30-amd64 newer no-headers", "6.1.0-31-amd64 newer headers"]},
      "__nvidia_driver_update_dkms": {"changed": True, "results": [
          {"stdout_lines": ["nvidia/570.124.06, 6.1.0-28-amd64, x86_64: installed"]},
          {"stdout_lines": ["nvidia/570.124.06, 6.1.0-31-amd64, x86_64: installed",
                            "rigforge: DKMS built modules for 6.1.0-31-amd64"]}]}},
     "DKMS modules for 6.1.0-28-amd64, 6.1.0-31-amd64: nvidia/570.124.06, 6.1.0-28-amd64, x86_64: installed; "
     "nvidia/570.124.06, 6.1.0-31-amd64, x86_64: installed (built now). "
     "Skipped: 6.1.0-30-amd64 (newer): its headers are not installed."),
], ids=["container", "no-dkms", "kernel-upgrade"])
def test_the_dkms_step_reports_what_it_built_or_why_not(registered, expected):
    registered = {"__nvidia_driver_source": "cuda-repo",
                  "__nvidia_driver_update_dkms_bin": {"stat": {"exists": True}}, **registered}
    assert _dkms_report(**registered) == expected


# --- the kernel moves with the driver (tasks/update_kernel.yml) -----------------------------------

UBUNTU_METAS = {"stdout_lines": [
    "linux-generic-hwe-24.04 installed hold",
    "linux-image-generic-hwe-24.04 installed hold",
    "linux-headers-generic-hwe-24.04 installed install",
    "linux-generic not-installed unknown",
]}
UBUNTU_DRIVER = ["nvidia-driver-580-server-open", "linux-modules-nvidia-580-server-open-6.8.0-48-generic",
                 "linux-modules-nvidia-580-server-open-generic-hwe-24.04"]


def _ubuntu(**more):
    return {"distribution": "Ubuntu",
            "ansible_facts": {"distribution": "Ubuntu", "kernel": "6.8.0-48-generic"},
            "__nvidia_driver_update_kernel_rows": UBUNTU_METAS, "__nvidia_driver_packages": UBUNTU_DRIVER,
            "__nvidia_driver_kernel_updates_managed": True, **more}


def _value(name, **registered):
    ansible_facts = registered.pop("ansible_facts", None)
    variables = _variables(**registered)
    if ansible_facts:
        variables["ansible_facts"] = ansible_facts
    return Templar(loader=LOADER, variables=variables).template(
        trust_as_template(f"{{{{ __nvidia_driver_update_{name} }}}}"))


def test_ubuntu_hold_mode_releases_its_own_holds_and_moves_kernel_and_module_in_one_transaction():
    v = _ubuntu(nvidia_driver_kernel_updates="hold")
    assert _value("kernel_ours", **v) == ["linux-generic-hwe-24.04", "linux-image-generic-hwe-24.04"]
    assert _value("kernel_theirs", **_ubuntu(nvidia_driver_kernel_updates="hold")) == []
    # One apt transaction: every kernel metapackage and the signed-module metapackage, never the
    # running kernel's own module package.
    assert _value("kernel_packages", **_ubuntu(nvidia_driver_kernel_updates="hold")) == [
        "linux-generic-hwe-24.04", "linux-headers-generic-hwe-24.04", "linux-image-generic-hwe-24.04",
        "linux-modules-nvidia-580-server-open-generic-hwe-24.04"]


def test_ubuntu_together_mode_leaves_holds_made_by_someone_else_alone_and_says_so():
    v = _ubuntu(nvidia_driver_kernel_updates="together")
    assert _value("kernel_ours", **dict(v)) == []
    assert _value("kernel_theirs", **dict(v)) == ["linux-generic-hwe-24.04", "linux-image-generic-hwe-24.04"]
    assert _value("kernel_packages", **dict(v)) == [
        "linux-headers-generic-hwe-24.04", "linux-modules-nvidia-580-server-open-generic-hwe-24.04"]
    text = _value("kernel_text", **dict(v), __nvidia_driver_update_kernel={"changed": True})
    assert text.startswith(
        "Moved linux-headers-generic-hwe-24.04, with linux-modules-nvidia-580-server-open-")
    assert ("Left alone, held outside rigforge: linux-generic-hwe-24.04, "
            "linux-image-generic-hwe-24.04.") in text


def test_debian_dkms_moves_its_kernel_metapackages_and_no_module_package():
    rows = {"stdout_lines": [
        "linux-image-amd64 installed install", "linux-headers-amd64 installed install",
        "linux-image-6.1.0-28-amd64 installed install", "linux-headers-6.1.0-28-common installed install"]}
    v = {"__nvidia_driver_update_kernel_rows": rows,
         "__nvidia_driver_packages": ["nvidia-driver", "nvidia-kernel-dkms"],
         "__nvidia_driver_kernel_updates_managed": False}
    assert _value("kernel_packages", **dict(v)) == ["linux-headers-amd64", "linux-image-amd64"]
    assert _value("kernel_packages", **dict(v), nvidia_driver_update_kernel=False) == []


def test_no_kernel_metapackage_means_no_move_and_a_plain_report():
    v = {"__nvidia_driver_update_kernel_rows": {"stdout_lines": []},
         "__nvidia_driver_packages": ["nvidia-driver"], "__nvidia_driver_kernel_updates_managed": False}
    assert _value("kernel_packages", **dict(v)) == []
    assert _value("kernel_text", **dict(v)) == (
        "No kernel metapackage is installed on rig1: the kernel did not move.")


def test_a_moved_kernel_asks_for_the_reboot_and_the_guard_checks_it_first():
    (decide, *_rest) = _load(ROLE / "tasks" / "update_reboot.yml")
    assert "__nvidia_driver_update_kernel | default({}) is changed" in decide["ansible.builtin.set_fact"][
        "__nvidia_driver_update_reboot"]
    tasks = _load(ROLE / "tasks" / "update_kernel.yml")
    (move,) = [t for t in tasks if "block" in t]
    assert [t["name"] for t in move["always"]] == [
        "Hold the kernel metapackages again (nvidia_driver_kernel_updates is hold)."]
    upgrade = move["block"][1]["ansible.builtin.apt"]
    assert upgrade["state"] == "latest" and upgrade["only_upgrade"] is True
