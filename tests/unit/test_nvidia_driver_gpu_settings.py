"""GPU settings that last, of the nvidia_driver role: power limits, persistence mode and video
memory across suspend (vars/settings.yml, tasks/gpu_settings.yml and their templates).

The role's files are templated by Ansible's own Templar with faked probes, as
tests/unit/test_nvidia_driver_vars.py does; the rendered script runs for real under /bin/sh
with a fake ``nvidia-smi`` on PATH. The bad values are refused by the role's preflight assert
and, through it, by rigforge on the controller (provision/validate.py, exit 2).
"""

import base64
import os
import subprocess
from pathlib import Path

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from provision.checks.test_nvidia_driver import gpu_settings_commands, persistenced_mode

ROLE = Path(__file__).resolve().parents[2] / "roles" / "nvidia_driver"
LOADER = DataLoader()
UUID = "GPU-5e6b1ab5-5ded-4f6d-a8a3-2bc2d1ff3d2a"
DEBIAN = {"distribution": "Debian", "distribution_version": "12.8", "kernel": "6.1.0-28-amd64"}
NOBLE = {"distribution": "Ubuntu", "distribution_version": "24.04", "kernel": "6.8.0-45-generic"}

# `systemctl show --property=LoadState,UnitFileState,ExecStart nvidia-persistenced.service`.
DEBIAN_DAEMON = (  # Debian 12's own unit: persistence mode on
    "LoadState=loaded\nUnitFileState=enabled\nExecStart={ path=/usr/bin/nvidia-persistenced ; "
    "argv[]=/usr/bin/nvidia-persistenced --user nvpd ; ignore_errors=no ; start_time=[n/a] ; pid=0 ; "
    "code=(null) }\n")
OFF_DAEMON = DEBIAN_DAEMON.replace("--user nvpd", "--user nvpd --no-persistence-mode --verbose")
DISABLED_DAEMON = DEBIAN_DAEMON.replace("UnitFileState=enabled", "UnitFileState=disabled")
NO_DAEMON = "LoadState=not-found\nUnitFileState=\nExecStart=\n"


def _load(relative: str) -> dict:
    return LOADER.load_from_file(str(ROLE / relative), trusted_as_template=True) or {}


def _template(variables: dict, text: str):
    return Templar(loader=LOADER, variables=variables).template(trust_as_template(text))


def role_vars(fake: dict = DEBIAN, daemon: str = DEBIAN_DAEMON, **more) -> dict:
    """The role's variables as tasks/gpu_settings.yml sees them (registered probes in ``more``)."""
    return {
        **_load("defaults/main.yml"),
        "inventory_hostname": "rig1", "role_path": str(ROLE), "ansible_check_mode": False,
        "ansible_facts": {**fake, "architecture": "x86_64",
                          "distribution_major_version": fake["distribution_version"].split(".")[0]},
        "__nvidia_driver_persistenced_show": {"stdout": daemon},
        **more,
        **_load("../gpu_stack/vars/main.yml"),
        **_load("vars/main.yml"),
        **_load("vars/settings.yml"),
    }


# /proc/driver/nvidia/version of a loaded module, as verify.yml reads it.
LOADED = {"__nvidia_driver_proc_version": {"content": base64.b64encode(
    b"NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.309.01  Tue Aug 19 2025\n").decode()}}


def value(variables: dict, name: str):
    return _template(variables, f"{{{{ __nvidia_driver_{name} }}}}")


def render(template: str, **more) -> str:
    return _template(role_vars(**more), (ROLE / "templates" / template).read_text())


# --- nvidia_driver_power_limit_watts is checked before anything changes -----------------------

@pytest.mark.parametrize("limits", [{}, {0: 250}, {"0": 250, "1": 300}, {UUID: 300, 2: 200},
                                    {"GPU-" + UUID[4:].upper(): 450}])
def test_good_power_limits_pass(limits):
    assert not value(role_vars(nvidia_driver_power_limit_watts=limits), "power_limit_errors")


@pytest.mark.parametrize(("limits", "needles"), [
    ({"gpu0": 250}, ['key "gpu0" is neither a GPU index (0, 1, ...) nor a GPU UUID']),
    ({-1: 250}, ['key "-1" is neither']),
    ({"GPU-1234": 250}, ['key "GPU-1234" is neither']),
    ({0: "250W"}, ['GPU 0: "250W" is not a whole number of watts above 0']),
    ({0: 0, 1: 250.5, 2: True}, ['GPU 0: "0"', 'GPU 1: "250.5"', 'GPU 2: "True"']),
])
def test_bad_power_limits_name_each_bad_key_and_value(limits, needles):
    errors = value(role_vars(nvidia_driver_power_limit_watts=limits), "power_limit_errors")
    for needle in needles:
        assert needle in errors


def test_the_preflight_assert_is_a_controller_side_input_check():
    tasks = _load("tasks/preflight.yml")
    (check,) = [t for t in tasks if "power_limit_errors" in str(t.get("ansible.builtin.assert", ""))]
    assert "input_check" in check["tags"]
    # Before the first probe of the host.
    assert tasks.index(check) < [t.get("name") for t in tasks].index("List the NVIDIA PCI devices.")


def _host_vars(workspace, text: str) -> None:
    path = workspace.root / "inventory" / "host_vars" / "rig1.yml"
    path.write_text("rigforge_components: [base, nvidia_driver]\n" + text)


def _problems(workspace) -> list[str]:
    from provision import targets, validate

    (target,) = [t for t in targets.resolve(workspace, "rig1", None) if t.host.name == "rig1"]
    return validate.host_problems(workspace, target)


def test_rigforge_takes_good_power_limits(two_rigs):
    _host_vars(two_rigs, f"nvidia_driver_power_limit_watts: {{0: 250, {UUID}: 300}}\n")
    assert _problems(two_rigs) == []


@pytest.mark.parametrize(("text", "needle"), [
    ("nvidia_driver_power_limit_watts: {gpu0: 250}", 'key "gpu0" is neither a GPU index'),
    ("nvidia_driver_power_limit_watts: {0: 250W}", 'GPU 0: "250W" is not a whole number of watts above 0.'),
    ('nvidia_driver_power_limit_watts: "0=250"', "nvidia_driver_power_limit_watts must be a mapping"),
])
def test_rigforge_refuses_bad_power_limits_before_contacting_a_host(two_rigs, text, needle):
    _host_vars(two_rigs, text + "\n")
    problems = _problems(two_rigs)
    assert any(needle in p for p in problems), problems


def test_plan_exits_2_naming_the_bad_power_limit(cli, two_rigs):
    from tests.conftest import snapshot

    _host_vars(two_rigs, "nvidia_driver_power_limit_watts: {0: -5}\n")
    before = snapshot(two_rigs.root)
    result = cli("plan", "--limit", "rig1")
    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())
    assert 'rig1: nvidia_driver_power_limit_watts must map GPUs to watts: GPU 0: "-5"' in output
    assert snapshot(two_rigs.root) == before


# --- persistence mode: the daemon where it does it, else the unit ----------------------------

@pytest.mark.parametrize(("daemon", "mode"), [
    (DEBIAN_DAEMON, "on"), (OFF_DAEMON, "off"), (DISABLED_DAEMON, "none"), (NO_DAEMON, "none"), ("", "none"),
])
def test_the_daemon_is_read_from_systemd(daemon, mode):
    assert value(role_vars(daemon=daemon), "persistenced_mode") == mode
    assert persistenced_mode(daemon) == mode  # the check reads it the same way


@pytest.mark.parametrize(("daemon", "persistence", "limits", "commands"), [
    # Defaults on Debian 12: the daemon turns persistence mode on, no limit: no unit.
    (DEBIAN_DAEMON, True, {}, []),
    (DEBIAN_DAEMON, True, {0: 250, UUID: 300}, ["-i 0 -pl 250", f"-i {UUID} -pl 300"]),
    (OFF_DAEMON, True, {}, ["-pm 1"]),
    (NO_DAEMON, True, {"1": 200}, ["-pm 1", "-i 1 -pl 200"]),
    (DISABLED_DAEMON, True, {}, ["-pm 1"]),
    (DEBIAN_DAEMON, False, {}, ["-pm 0"]),
    (OFF_DAEMON, False, {}, []),
    (NO_DAEMON, False, {0: 250}, ["-i 0 -pl 250"]),
])
def test_the_unit_runs_what_the_daemon_does_not(daemon, persistence, limits, commands):
    variables = role_vars(daemon=daemon, nvidia_driver_persistence_mode=persistence,
                          nvidia_driver_power_limit_watts=limits)
    assert value(variables, "settings_commands") == commands
    assert value(variables, "settings_wanted") is bool(commands)
    # The check of `rigforge verify` expects the same calls (keys as the inventory gives them to it).
    rig = {"nvidia_driver_persistence_mode": persistence,
           "nvidia_driver_power_limit_watts": {str(k): v for k, v in limits.items()}}
    assert gpu_settings_commands(rig, persistenced_mode(daemon)) == commands


def test_check_mode_on_a_fresh_host_counts_on_the_daemon_it_would_install():
    variables = role_vars(daemon=NO_DAEMON, ansible_check_mode=True)
    assert value(variables, "persistenced_mode") == "on"
    assert value(variables, "settings_wanted") is False
    assert value({**variables, "nvidia_driver_persistenced": False}, "settings_commands") == ["-pm 1"]


def test_limits_without_persistence_mode_are_warned_about():
    limits = {"nvidia_driver_power_limit_watts": {0: 250}}
    assert value(role_vars(**limits), "power_limits_without_persistence") is False
    variables = role_vars(**limits, nvidia_driver_persistence_mode=False)
    assert value(variables, "power_limits_without_persistence") is True


# --- the unit and its script ------------------------------------------------------------------

def test_the_unit_is_a_oneshot_after_the_daemon_that_nothing_waits_for():
    unit = render("rigforge-gpu-settings.service.j2")
    lines = unit.splitlines()
    for line in ("Type=oneshot", "RemainAfterExit=yes", "DefaultDependencies=no", "TimeoutStartSec=120",
                 "ExecStart=/usr/local/lib/rigforge/gpu-settings", "SyslogIdentifier=rigforge-gpu-settings",
                 "WantedBy=multi-user.target", "Conflicts=shutdown.target", "Before=shutdown.target"):
        assert line in lines, line
    after = next(line for line in lines if line.startswith("After="))
    assert "nvidia-persistenced.service" in after.split() and "basic.target" in after.split()
    assert not [line for line in lines if line.startswith("Before=") and "multi-user" in line]


def _settings(script: str) -> list[str]:
    return script.split("<<'SETTINGS'\n", 1)[1].split("\nSETTINGS\n", 1)[0].splitlines()


def test_the_script_lists_each_call_by_index_and_uuid():
    script = render("rigforge-gpu-settings.sh.j2", daemon=NO_DAEMON,
                    nvidia_driver_power_limit_watts={0: 250, UUID: 300, "3": 180})
    assert script.startswith("#!/bin/sh\n")
    assert _settings(script) == ["-pm 1", "-i 0 -pl 250", f"-i {UUID} -pl 300", "-i 3 -pl 180"]


FAKE_SMI = """#!/bin/sh
# A fake nvidia-smi: logs its arguments; GPU 1 is missing.
echo "$*" >> "$SMI_LOG"
case "$*" in
    "-i 1 "*) echo "No devices were found"; exit 6 ;;
    -pm*) echo "Enabled persistence mode for GPU 00000000:01:00.0."; echo "All done." ;;
    *) echo "Power limit for GPU 00000000:01:00.0 was set to $4.00 W from 350.00 W."; echo "All done." ;;
esac
"""


def _run_script(tmp_path, limits: dict, daemon: str = DEBIAN_DAEMON):
    """(the script's process, the fake nvidia-smi's calls)."""
    script = tmp_path / "gpu-settings"
    script.write_text(render("rigforge-gpu-settings.sh.j2", daemon=daemon,
                             nvidia_driver_power_limit_watts=limits))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text(FAKE_SMI)
    (bin_dir / "nvidia-smi").chmod(0o755)
    log = tmp_path / "smi.log"
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "SMI_LOG": str(log)}
    proc = subprocess.run(["/bin/sh", str(script)], capture_output=True, text=True, env=env, timeout=30,
                          check=False)
    return proc, log.read_text().splitlines() if log.exists() else []


def test_the_script_applies_every_setting(tmp_path):
    proc, calls = _run_script(tmp_path, {0: 250, UUID: 300}, daemon=NO_DAEMON)
    assert proc.returncode == 0, proc.stderr
    assert calls == ["-pm 1", "-i 0 -pl 250", f"-i {UUID} -pl 300"]
    assert "ok: persistence mode on (every GPU) (nvidia-smi -pm 1)" in proc.stdout
    assert "ok: power limit of GPU 0: 250 W (nvidia-smi -i 0 -pl 250): Power limit for GPU" in proc.stdout
    assert proc.stdout.rstrip().endswith("all 3 GPU settings applied.")


def test_a_missing_gpu_is_named_and_the_others_still_apply(tmp_path):
    proc, calls = _run_script(tmp_path, {1: 200, 0: 250})
    assert proc.returncode == 1
    assert calls == ["-i 1 -pl 200", "-i 0 -pl 250"]
    assert ("FAILED: power limit of GPU 1: 200 W (nvidia-smi -i 1 -pl 200, exit 6): No devices were found "
            "Is GPU 1 installed? `nvidia-smi -L` lists the GPUs") in proc.stderr
    assert "1 of 2 GPU settings failed" in proc.stderr
    assert "ok: power limit of GPU 0: 250 W" in proc.stdout


def test_the_unit_failure_is_reported_with_its_failed_lines():
    journal = {"stdout_lines": ["ok: power limit of GPU 0: 250 W (nvidia-smi -i 0 -pl 250): All done.",
                                "FAILED: power limit of GPU 1: 200 W (nvidia-smi -i 1 -pl 200, exit 6): nope",
                                "1 of 2 GPU settings failed (see above); the others are applied."]}
    text = " ".join(value(role_vars(__nvidia_driver_settings_journal=journal), "settings_failure").split())
    assert text.startswith("rigforge-gpu-settings.service failed on rig1: "
                           "FAILED: power limit of GPU 1: 200 W")
    assert "GPU 0" not in text and "journalctl -u rigforge-gpu-settings.service" in text


def test_the_unit_is_restarted_when_its_files_change_or_the_driver_was_updated():
    same, changed = {"changed": False}, {"changed": True}
    files = {"__nvidia_driver_settings_unit_file": same, "__nvidia_driver_settings_script_file": same}
    assert value(role_vars(**files), "settings_reapply") is False
    script_changed = {**files, "__nvidia_driver_settings_script_file": changed}
    assert value(role_vars(**script_changed), "settings_reapply") is True
    assert value(role_vars(**files, __nvidia_driver_update_switch=True), "settings_reapply") is True


# --- video memory across suspend ----------------------------------------------------------------

@pytest.mark.parametrize(("fake", "modules"), [(DEBIAN, ["nvidia", "nvidia-current"]), (NOBLE, ["nvidia"])])
def test_the_module_options_file(fake, modules):
    text = render("rigforge-nvidia-power.conf.j2", fake=fake)
    options = [line.split() for line in text.splitlines() if line.startswith("options ")]
    assert [o[1] for o in options] == modules
    wanted = ["NVreg_PreserveVideoMemoryAllocations=1", "NVreg_TemporaryFilePath=/var/tmp"]
    assert all(o[2:] == wanted for o in options)


@pytest.mark.parametrize(("registered", "need"), [
    ({"__nvidia_driver_power_options": {"changed": True}, **LOADED}, True),
    ({"__nvidia_driver_power_options_removed": {"changed": True}, **LOADED}, True),
    # No module loaded: it reads the option when it loads.
    ({"__nvidia_driver_power_options": {"changed": True}}, False),
    # The run reboots after writing it.
    ({"__nvidia_driver_power_options": {"changed": True}, **LOADED,
      "__nvidia_driver_reboot_planned": True}, False),
    ({"__nvidia_driver_power_options": {"changed": False}, **LOADED}, False),
])
def test_a_changed_option_asks_for_a_reboot_where_a_module_is_loaded(registered, need):
    assert value(role_vars(**registered), "power_options_need_reboot") is need


def test_the_suspend_units_found_and_missing():
    found = {"files": [{"path": "/usr/lib/systemd/system/nvidia-suspend.service"},
                       {"path": "/lib/systemd/system/nvidia-suspend.service"},
                       {"path": "/usr/lib/systemd/system/nvidia-resume.service"}]}
    variables = role_vars(__nvidia_driver_suspend_unit_files=found)
    assert value(variables, "suspend_units_found") == ["nvidia-resume.service", "nvidia-suspend.service"]
    assert value(variables, "suspend_units_missing") == ["nvidia-hibernate.service"]


def test_every_entry_point_ends_with_the_settings_after_verifying():
    verify = _load("tasks/verify.yml")
    assert verify[-1]["ansible.builtin.import_tasks"] == "gpu_settings.yml"
    nouveau = [t.get("ansible.builtin.template", {}).get("src") for t in _load("tasks/nouveau.yml")]
    assert "rigforge-nvidia-power.conf.j2" in nouveau
