"""The whole loop for the base component on a real sandbox host.

The tests share one fresh host of their own and run in file order: plan, provision, idempotence,
drift detected by verify, repair with plain ansible-playbook.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import new_rig, rigforge

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    """A host of its own: these tests start from a fresh host and run in order."""
    yield from new_rig(tmp_path_factory, "w")


def _host_stats(report: dict, name: str) -> dict:
    (stats,) = [h for h in report["hosts"] if h["host"] == name]
    return stats


def test_sandbox_is_registered_with_its_host_key(rig):
    hosts = json.loads(rigforge(rig.workspace, "host", "list", "--json").stdout)
    (entry,) = [h for h in hosts if h["name"] == rig.name]
    assert entry["user"] == "rig" and entry["groups"] == ["sandbox"]
    assert entry["address"] in (rig.workspace / "known_hosts").read_text()
    assert rig.ssh("id -un").stdout.strip() == "rig"
    assert rig.ssh("sudo -n id -un").stdout.strip() == "root"


def test_plan_shows_changes_and_changes_nothing(rig):
    proc = rigforge(rig.workspace, "plan", "--json")
    report = json.loads(proc.stdout)
    assert report["run"]["changed_tasks"], "a fresh host must have something to change"
    assert rig.ssh("dpkg-query -W -f='${Status}' htop", check=False).returncode != 0


def test_provision_converges_and_is_idempotent(rig):
    proc = rigforge(rig.workspace, "provision", "--yes", "--check-idempotence", "--json")
    report = json.loads(proc.stdout)
    assert _host_stats(report["run"], rig.name)["changed"] > 0
    second = _host_stats(report["idempotence"], rig.name)
    assert second["changed"] == 0 and second["failed"] == 0
    assert report["idempotence"]["changed_tasks"] == []


def test_a_converged_re_run_skips_ansible_and_repeats_the_last_runs_warnings(rig):
    report = json.loads(rigforge(rig.workspace, "provision", "--yes", "--json").stdout)
    assert report["converged"][rig.name]["ran"] == []
    record = json.loads((rig.workspace / ".rigforge" / "converged.json").read_text())
    kept = record["hosts"][rig.name].get("warnings", [])
    assert _host_stats(report["run"], rig.name)["warnings"] == kept
    assert report["converged"][rig.name]["warnings_of_last_run"] == kept
    # A sandbox runs this machine's kernel, which rarely has headers in Debian's archive.
    no_headers = rig.ssh('apt-cache show "linux-headers-$(uname -r)"', check=False).returncode != 0
    if no_headers:
        assert any("linux-headers-" in w for w in kept), kept
        table = rigforge(rig.workspace, "provision", "--yes")
        assert "(reported by the run of" in " ".join(table.stdout.split())


def test_verify_passes(rig):
    proc = rigforge(rig.workspace, "verify", "--format", "json")
    report = json.loads(proc.stdout)
    assert report["status"] == "passed"
    outcomes = {c["check"]: c["outcome"] for c in report["checks"]}
    assert outcomes["test_base_packages_installed"] == "passed"
    assert outcomes["test_unattended_upgrades_blacklist"] == "passed"
    assert all(c["component"] == "base" and c["host"] == rig.name for c in report["checks"])
    recorded = json.loads((rig.workspace / ".rigforge" / "verify-commands" / f"{rig.name}.json").read_text())
    assert any("dpkg-query" in c and "htop" in c for c in recorded)


def _verify_json(rig, *args) -> tuple[dict, str]:
    proc = rigforge(rig.workspace, "verify", "--format", "json", *args, check=False)
    return json.loads(proc.stdout), proc.stderr


def _outcomes(report: dict) -> list[tuple]:
    return sorted((c["check"], c["outcome"], c["message"]) for c in report["checks"])


def test_results_are_reused_only_while_the_hosts_answers_are_byte_identical(rig):
    evaluated, _ = _verify_json(rig)  # recorded last time: all answered by the round trip
    assert evaluated["reused_results"] == {} and evaluated["status"] == "passed"
    reused, stderr = _verify_json(rig)
    assert list(reused["reused_results"]) == [rig.name]
    assert "results reused" in stderr
    assert _outcomes(reused) == _outcomes(evaluated)
    full, _ = _verify_json(rig, "--full")
    assert full["reused_results"] == {} and _outcomes(full) == _outcomes(evaluated)
    # One changed byte in one file a check reads: evaluated again, and the drift is seen.
    blacklist = "/etc/apt/apt.conf.d/51rigforge-unattended-upgrades"
    rig.ssh(f"sudo -n cp {blacklist} /tmp/blacklist && echo '// x' | sudo -n tee -a {blacklist}")
    try:
        drifted, _ = _verify_json(rig)
        assert drifted["reused_results"] == {}
    finally:
        rig.ssh(f"sudo -n cp /tmp/blacklist {blacklist}")
    again, _ = _verify_json(rig)
    assert again["reused_results"] == {} and _outcomes(again) == _outcomes(evaluated)


def test_idempotence_check_names_a_task_that_always_changes(rig):
    site = rig.workspace / "site.yml"
    original = site.read_text()
    site.write_text(original + (
        "- name: A play that is not idempotent.\n  hosts: all\n  gather_facts: false\n"
        "  tasks:\n    - name: Touch a file every time.\n"
        "      ansible.builtin.command: touch /tmp/rigforge-not-idempotent\n"
    ))
    try:
        proc = rigforge(rig.workspace, "provision", "--yes", "--check-idempotence", check=False)
    finally:
        site.write_text(original)
    assert proc.returncode == 1
    assert f"not idempotent: {rig.name}: Touch a file every time." in proc.stderr


def test_verify_fails_and_names_the_check_when_a_package_is_removed(rig, tmp_path):
    # The last verify's record is there, so these results come from the one-round-trip
    # prefetch: it must still see the host as it is now.
    assert (rig.workspace / ".rigforge" / "verify-commands" / f"{rig.name}.json").is_file()
    rig.ssh("sudo -n apt-get remove -y -q htop")
    proc = rigforge(rig.workspace, "verify", check=False)
    assert proc.returncode == 1
    assert "results reused" not in proc.stderr  # kept results never hide a drift
    assert re.search(rf"FAILED {rig.name} test_base_packages_installed: .*htop", proc.stderr)
    junit = tmp_path / "verify.xml"
    rigforge(rig.workspace, "verify", "--format", "junit", "--output", str(junit), check=False)
    assert "<failure" in junit.read_text() and "htop" in junit.read_text()


def test_plain_ansible_playbook_repairs_the_host_without_rigforge(rig):
    """The no-lock-in promise: the workspace is an ordinary Ansible project."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "RIGFORGE_"))}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")

    def play() -> str:
        proc = subprocess.run(
            ["ansible-playbook", "site.yml"], cwd=rig.workspace, env=env,
            capture_output=True, text=True, timeout=900, check=False,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc.stdout

    recap = re.compile(rf"^{rig.name}\s+: ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0",
                       re.MULTILINE)
    assert int(recap.search(play()).group(1)) >= 1, "htop had to be reinstalled"
    assert int(recap.search(play()).group(1)) == 0
    rigforge(rig.workspace, "verify")
    repaired, _ = _verify_json(rig)
    assert repaired["status"] == "passed" and list(repaired["reused_results"]) == [rig.name]
