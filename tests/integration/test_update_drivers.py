"""`rigforge update-drivers` through the real CLI, on two sandbox hosts of this module's own.

Both hosts live in one workspace (the first made by ``new_rig``, the second added to it with
``rigforge sandbox up``) and take the cuda-repo source, branch 570, from the STAND-IN for
NVIDIA's CUDA apt repository (not NVIDIA's packages), applied with ``rigforge provision``. The
sandbox profile has no GPU and never reboots, so the module check, the GPU check and DKMS are
reported as skipped with their reasons.

The first host also carries STAND-IN GPU consumers, labelled so on the host:

* a systemd service named ``ollama`` that only sleeps (it is not Ollama);
* a ``docker`` command in /usr/local/bin that is not Docker: a python3 script answering
  ``ps -q --no-trunc``, ``inspect`` (the fields of the real JSON the role reads), ``stop`` and
  ``start`` from a state file, with three "running" containers: one with ``--gpus all``
  (a device request with capability gpu), one with ``--runtime nvidia``, one without a GPU;
* an apt hook that logs the consumers that run whenever apt invokes dpkg, so that the test
  sees what ran *during* the switch.

The tests run in file order on the same hosts.
"""

import base64
import json
import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from provision.gpu.table import table as facts_table
from tests.integration.conftest import Rig, new_rig, rigforge
from tests.integration.standins import shared_cuda_standin

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FAIL_VAR = "__nvidia_driver_update_fail_after_switch"
RECORD = "/var/lib/rigforge/driver-before-update.json"
DRIVER_ROLES = ("nvidia_driver", "nvidia_cuda_repo")

STANDIN_DIR = "/var/lib/rigforge-standin-docker"
PROBE_LOG = "/var/log/rigforge-standin-consumers.log"
GPUS_ALL_ID = "a1" * 32   # `docker run --gpus all`
RUNTIME_ID = "b2" * 32    # `docker run --runtime nvidia`
CPU_ID = "c3" * 32        # no GPU: must be left running

OLLAMA_UNIT = """\
# STAND-IN GPU consumer for rigforge's tests/integration/test_update_drivers.py.
# It is NOT Ollama: it only sleeps, under the name that the update looks for.
[Unit]
Description=STAND-IN GPU consumer named ollama (sleeps; rigforge test, not Ollama)

[Service]
ExecStart=/bin/sleep infinity

[Install]
WantedBy=multi-user.target
"""

DOCKER_STANDIN = f'''\
#!/usr/bin/python3
"""STAND-IN for the docker CLI (rigforge tests/integration/test_update_drivers.py), NOT Docker.

Answers `ps -q --no-trunc`, `inspect ID...`, `stop ID...` and `start ID...` from the state file
{STANDIN_DIR}/containers.json and logs every call to {STANDIN_DIR}/calls.log.
"""
import json
import sys

STATE = "{STANDIN_DIR}/containers.json"


def main(argv):
    with open("{STANDIN_DIR}/calls.log", "a") as log:
        log.write(" ".join(argv) + "\\n")
    with open(STATE) as f:
        containers = json.load(f)
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    if command == "ps":
        for c in containers:
            if c["State"]["Running"]:
                print(c["Id"] if "--no-trunc" in args else c["Id"][:12])
        return 0
    if command == "inspect":
        found = [c for c in containers if c["Id"] in args]
        print(json.dumps(found, indent=4))
        missing = [a for a in args if a not in {{c["Id"] for c in found}}]
        for name in missing:
            print(f"Error: No such object: {{name}}", file=sys.stderr)
        return 1 if missing else 0
    if command in ("stop", "start"):
        for c in containers:
            if c["Id"] in args:
                c["State"]["Running"] = command == "start"
                print(c["Id"])
        with open(STATE, "w") as f:
            json.dump(containers, f)
        return 0
    print(f"docker stand-in: unsupported command {{command!r}}", file=sys.stderr)
    return 1


sys.exit(main(sys.argv[1:]))
'''


def _container(cid: str, name: str, host_config: dict) -> dict:
    """The fields of `docker inspect` that matter here, with the real names and shapes."""
    return {"Id": cid, "Name": f"/{name}", "State": {"Status": "running", "Running": True},
            "Config": {"Image": "busybox"},
            "HostConfig": {"Runtime": "runc", "DeviceRequests": None, "Devices": [], **host_config}}


CONTAINERS = [
    _container(GPUS_ALL_ID, "llm", {"DeviceRequests": [
        {"Driver": "", "Count": -1, "DeviceIDs": None, "Capabilities": [["gpu"]], "Options": {}}]}),
    _container(RUNTIME_ID, "trainer", {"Runtime": "nvidia"}),
    _container(CPU_ID, "web", {}),
]

PROBE = f"""\
#!/bin/sh
# STAND-IN probe for rigforge's tests/integration/test_update_drivers.py: apt runs it before
# each dpkg call (DPkg::Pre-Invoke) and it logs which GPU consumers run. Never fails.
running=$(/usr/local/bin/docker ps -q --no-trunc | tr '\\n' ' ')
echo "ollama=$(systemctl is-active ollama) containers=$running" >> {PROBE_LOG} 2>/dev/null
exit 0
"""

APT_HOOK = """\
// STAND-IN probe for rigforge's tests/integration/test_update_drivers.py.
DPkg::Pre-Invoke { "/usr/local/sbin/rigforge-standin-consumer-probe"; };
"""


def _put(rig: Rig, path: str, text: str, mode: str = "0644") -> None:
    data = base64.b64encode(text.encode()).decode()
    path = shlex.quote(path)
    rig.ssh(f"echo {data} | base64 -d | sudo -n tee {path} >/dev/null && sudo -n chmod {mode} {path}")


def _install_consumers(rig: Rig) -> None:
    """The STAND-IN consumers and the apt probe (see the module docstring)."""
    rig.ssh(f"sudo -n mkdir -p {STANDIN_DIR}")
    _put(rig, "/etc/systemd/system/ollama.service", OLLAMA_UNIT)
    _put(rig, "/usr/local/bin/docker", DOCKER_STANDIN, "0755")
    _put(rig, f"{STANDIN_DIR}/containers.json", json.dumps(CONTAINERS))
    _put(rig, "/usr/local/sbin/rigforge-standin-consumer-probe", PROBE, "0755")
    _put(rig, "/etc/apt/apt.conf.d/99rigforge-standin-consumer-probe", APT_HOOK)
    rig.ssh("sudo -n systemctl daemon-reload && sudo -n systemctl enable --now ollama.service")


def _host_vars(rig: Rig) -> Path:
    path = rig.workspace / "inventory" / "host_vars" / rig.name
    path.mkdir(parents=True, exist_ok=True)
    return path


def _state(rig: Rig) -> str:
    """Everything an update could change, as one comparable text."""
    return rig.ssh(
        "dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}\\n'; apt-mark showhold;"
        f" ls -1 /etc/modprobe.d /etc/apt/sources.list.d /etc/apt/preferences.d; sudo -n cat {RECORD}",
        check=False,
    ).stdout


def _installed(rig: Rig) -> dict[str, str]:
    out = rig.ssh("dpkg-query -W -f='${db:Status-Abbrev}|${Package}|${Version}\\n'").stdout
    return {name: version for abbrev, name, version in (line.split("|") for line in out.splitlines())
            if abbrev.startswith(("ii", "hi"))}


def _held(rig: Rig) -> set[str]:
    return set(rig.ssh("apt-mark showhold").stdout.split())


def _driver(rig: Rig) -> dict[str, str]:
    """The installed driver packages (of any branch, by the facts table's hold patterns)."""
    patterns = "|".join(facts_table().packages_of_driver("debian")["hold"])
    return {p: v for p, v in _installed(rig).items() if re.match(patterns, p) and re.match(r"^\d{3}\.", v)}


def _assert_on_branch(rig: Rig, branch: str) -> None:
    driver, held = _driver(rig), _held(rig)
    # NVIDIA's debian12 names: one nvidia-driver for every branch, behind the pinning package.
    wanted = {f"nvidia-driver-pinning-{branch}", "nvidia-driver", "nvidia-kernel-dkms", "libcuda1"}
    assert set(driver) == wanted, driver
    assert all(v.startswith(f"{branch}.") for v in driver.values()), driver
    assert wanted <= held, held
    pin = f"/etc/apt/preferences.d/nvidia-driver-pinning-{branch}"
    assert rig.ssh(f"test -f {pin}", check=False).returncode == 0


def _ollama(rig: Rig) -> tuple[str, str]:
    """(state, invocation id) of the stand-in ollama service: a restart gets a new id."""
    out = rig.ssh("systemctl show -p ActiveState -p InvocationID ollama.service").stdout
    fields = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return fields["ActiveState"], fields["InvocationID"]


def _containers(rig: Rig) -> dict[str, bool]:
    state = json.loads(rig.ssh(f"cat {STANDIN_DIR}/containers.json").stdout)
    return {c["Id"]: c["State"]["Running"] for c in state}


def _docker_calls(rig: Rig) -> list[str]:
    return rig.ssh(f"cat {STANDIN_DIR}/calls.log", check=False).stdout.splitlines()


def _reset_probes(rig: Rig) -> None:
    rig.ssh(f"sudo -n truncate -s 0 {PROBE_LOG} {STANDIN_DIR}/calls.log")


def _probe_lines(rig: Rig) -> list[str]:
    return rig.ssh(f"cat {PROBE_LOG}").stdout.splitlines()


def _assert_consumers_stopped_while_apt_ran(rig: Rig) -> None:
    """Each time apt ran dpkg, ollama was stopped and only the container without a GPU ran."""
    probes = _probe_lines(rig)
    assert probes, "apt never ran dpkg"
    for line in probes:
        assert line.startswith("ollama=inactive "), probes
        assert GPUS_ALL_ID not in line and RUNTIME_ID not in line and CPU_ID in line, probes


def _ansible_output(workspace: Path) -> str:
    """Ansible's own output of the latest run (ansible-runner's artifacts), whitespace folded."""
    runs = sorted((workspace / ".rigforge" / "runner" / "artifacts").glob("*/stdout"),
                  key=lambda p: p.stat().st_mtime)
    return " ".join(runs[-1].read_text().split())


def _update(workspace: Path, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    proc = rigforge(workspace, "update-drivers", "--yes", *args, check=False, timeout=1800)
    return proc, time.monotonic() - started


@pytest.fixture(scope="module")
def standin(rig):
    """The process-wide stand-in (served on the bridge, which exists while ``rig`` is up)."""
    return shared_cuda_standin()


@pytest.fixture(scope="module")
def hosts(tmp_path_factory, standin):
    """Two provisioned hosts on branch 570 in one workspace; the first with the stand-in consumers."""
    made = new_rig(tmp_path_factory, "ud")
    first = next(made)
    second = Rig(first.workspace, f"{first.name}b")
    try:
        rigforge(first.workspace, "sandbox", "up", second.name, timeout=600)
        for host in (first, second):
            (_host_vars(host) / "update_drivers_test.yml").write_text(yaml.safe_dump({
                "rigforge_components": ["base", "nvidia_driver"],
                "nvidia_driver_source": "cuda-repo",
                "nvidia_driver_branch": "570",
                **standin.role_vars,
            }))
        started = time.monotonic()
        rigforge(first.workspace, "provision", "--yes", timeout=1800)
        print(f"provision of 2 hosts (base, nvidia_driver 570): {time.monotonic() - started:.0f} s")
        _install_consumers(first)
        for host in (first, second):
            _assert_on_branch(host, "570")
        yield first, second
    finally:
        rigforge(first.workspace, "sandbox", "down", second.name, check=False)
        made.close()


def test_a_failure_rolls_the_host_back_and_stops_the_rollout(hosts):
    """Two hosts, --serial 1, the first fails right after its switch to 575: it is back on 570
    with its holds and consumers, the report says what happened, the second host is untouched."""
    first, second = hosts
    workspace = first.workspace
    force = _host_vars(first) / "zz_force_failure.yml"
    force.write_text(f"{FAIL_VAR}: true\n")
    second_before = _state(second)
    _, ollama_before = _ollama(first)
    _reset_probes(first)
    try:
        proc, elapsed = _update(workspace, "--branch", "575", "--serial", "1")
    finally:
        force.unlink()
    print(f"update-drivers, first host failing and rolled back: {elapsed:.0f} s")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    err = " ".join(proc.stderr.split())
    assert f"{first.name}: " in proc.stderr
    assert "Failing on purpose right after the switch to branch 575" in err
    assert (f"The driver update of {first.name} to branch 575 (cuda-repo, proprietary) failed at "
            '"Fail on purpose right after the switch (tests only)."') in err
    assert "Rolled back to the recorded branch 570 (cuda-repo, proprietary)." in err
    assert re.search(r"Now: branch 570 \(570\.[0-9.]+, proprietary\) is installed, 4 driver packages, "
                     r"all held\.", err), err
    assert "GPU consumers started again: the ollama service, container llm, container trainer." in err
    assert f"recorded in {RECORD}" in err and "The rollout stops here" in err

    # The first host: back on 570, held, as recorded before the switch.
    _assert_on_branch(first, "570")
    assert not [p for p, v in _installed(first).items() if "575" in p or v.startswith("575.")]
    record = json.loads(first.ssh(f"sudo -n cat {RECORD}").stdout)
    assert (record["branch"], record["source"], record["flavor"], record["update_to"]) == (
        "570", "cuda-repo", "proprietary", "575")
    assert set(record["packages"]) == set(_driver(first)) and set(record["held"]) == set(record["packages"])

    # The switch happened (575 was installed, then rolled back) with the consumers stopped.
    output = _ansible_output(workspace)
    assert "Held: libcuda1 nvidia-driver nvidia-driver-pinning-575 nvidia-kernel-dkms" in output
    assert "Held: libcuda1 nvidia-driver nvidia-driver-pinning-570 nvidia-kernel-dkms" in output
    _assert_consumers_stopped_while_apt_ran(first)
    # ... and running again after the rollback; the container without a GPU was never stopped.
    state, ollama_after = _ollama(first)
    assert state == "active" and ollama_after != ollama_before
    assert _containers(first) == {GPUS_ALL_ID: True, RUNTIME_ID: True, CPU_ID: True}
    assert not [c for c in _docker_calls(first) if CPU_ID in c and c.startswith(("stop", "start"))]

    # The second host was never reached: nothing on it changed.
    assert _state(second) == second_before
    assert "575" not in second_before
    assert "rigforge-standin" not in second.ssh("ls /etc/apt/apt.conf.d").stdout


def test_provision_converges_after_the_rollback(hosts):
    first, _ = hosts
    proc = rigforge(first.workspace, "provision", "--yes", "--limit", first.name, "--json", timeout=1800)
    run = json.loads(proc.stdout)["run"]
    assert run["status"] == "successful"
    changed = [t for t in run["changed_tasks"] if t["role"] in DRIVER_ROLES]
    assert changed == [], changed
    _assert_on_branch(first, "570")


def test_update_switches_the_branch_with_the_consumers_stopped(hosts):
    first, second = hosts
    workspace = first.workspace
    second_before = _state(second)
    _, ollama_before = _ollama(first)
    _reset_probes(first)
    proc, elapsed = _update(workspace, "--branch", "575", "--limit", first.name, "--json")
    print(f"update-drivers 570 -> 575: {elapsed:.0f} s")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = json.loads(proc.stdout)["run"]
    assert run["status"] == "successful"
    assert [h["host"] for h in run["hosts"]] == [first.name]

    _assert_on_branch(first, "575")
    assert not [p for p in _installed(first) if "570" in p]
    record = json.loads(first.ssh(f"sudo -n cat {RECORD}").stdout)
    assert (record["branch"], record["update_to"]) == ("570", "575")

    # Consumers: stopped while apt switched the packages, running again afterwards.
    _assert_consumers_stopped_while_apt_ran(first)
    state, ollama_after = _ollama(first)
    assert state == "active" and ollama_after != ollama_before
    assert _containers(first) == {GPUS_ALL_ID: True, RUNTIME_ID: True, CPU_ID: True}
    calls = _docker_calls(first)
    assert f"stop {GPUS_ALL_ID} {RUNTIME_ID}" in calls and f"start {GPUS_ALL_ID} {RUNTIME_ID}" in calls, calls

    # What a GPU-less sandbox cannot check is reported as skipped, with the reason.
    output = _ansible_output(workspace)
    assert "SKIPPED: DKMS rebuild: no kernel to build for on" in output
    assert "not installed by the package manager, e.g. a container sharing its host kernel" in output
    assert "SKIPPED: loaded module version check: no NVIDIA GPU was found" in output
    assert "SKIPPED: GPU check (nvidia-smi): no NVIDIA GPU was found" in output
    assert "Reboot skipped (nvidia_driver_skip_reboot is true)" in output
    assert re.search(r"Updated \S+ from branch 570 \(570\.[0-9.]+, proprietary\) "
                     r"to branch 575 \(cuda-repo, proprietary\)\.", output), output[-2000:]
    assert _state(second) == second_before


def test_a_second_update_changes_nothing(hosts):
    first, _ = hosts
    record_before = first.ssh(f"sudo -n cat {RECORD}").stdout
    _, ollama_before = _ollama(first)
    _reset_probes(first)
    proc, elapsed = _update(first.workspace, "--branch", "575", "--limit", first.name, "--json")
    print(f"update-drivers 575 -> 575 (nothing to do): {elapsed:.0f} s")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = json.loads(proc.stdout)["run"]
    assert run["changed_tasks"] == [], run["changed_tasks"]
    assert [h["changed"] for h in run["hosts"]] == [0]
    _assert_on_branch(first, "575")
    # Nothing to switch: apt never ran dpkg, the consumers were left alone, and the record
    # still describes the last real update.
    assert _probe_lines(first) == []
    assert _ollama(first) == ("active", ollama_before)
    assert _docker_calls(first) == []
    assert first.ssh(f"sudo -n cat {RECORD}").stdout == record_before
    assert "already has branch 575 (cuda-repo, proprietary)" in _ansible_output(first.workspace)
