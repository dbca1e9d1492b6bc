"""The converged check on a real host: a converged re-run reads the state in one SSH session
and runs no Ansible; drift, a changed variable, and --full make Ansible run again."""

import json

import pytest

from tests.integration.conftest import rigforge

pytestmark = [pytest.mark.integration]

BASE_ONLY = ("--components", "base")
UU_CONF = "/etc/apt/apt.conf.d/51rigforge-unattended-upgrades"


def _provision(rig, *args):
    proc = rigforge(rig.workspace, "provision", "--yes", "--json", *BASE_ONLY, *args, timeout=1200)
    report = json.loads(proc.stdout)
    assert report["run"]["status"] == "successful", proc.stdout[-3000:]
    return report


def _ansible_runs(rig) -> set[str]:
    artifacts = rig.workspace / ".rigforge" / "runner" / "artifacts"
    return {p.name for p in artifacts.iterdir()} if artifacts.is_dir() else set()


@pytest.fixture(scope="module")
def converged_rig(rig):
    """The shared host, provisioned (base) so that a record of the converged state exists."""
    report = _provision(rig)
    assert rig.name in report["converged"], report
    yield rig


def test_a_converged_rerun_runs_no_ansible(converged_rig):
    rig = converged_rig
    before = _ansible_runs(rig)
    report = _provision(rig)
    (host,) = report["run"]["hosts"]
    assert report["converged"][rig.name] == {"ran": [], "skipped": ["base"], "reasons": {},
                                            "warnings_of_last_run": host["warnings"]}
    assert host["changed"] == 0
    assert _ansible_runs(rig) == before
    human = rigforge(rig.workspace, "provision", "--yes", *BASE_ONLY)
    assert f"{rig.name}: converged (base)" in human.stdout


def test_drift_on_the_host_is_repaired_by_a_plain_rerun(converged_rig):
    rig = converged_rig
    rig.ssh(f"sudo -n rm {UU_CONF}")
    report = _provision(rig)
    decision = report["converged"][rig.name]
    assert decision["ran"] == ["base"] and "drifted" in decision["reasons"]["base"]
    assert any("unattended" in t["task"] for t in report["run"]["changed_tasks"])
    assert rig.ssh(f"test -f {UU_CONF} && echo present").stdout.strip() == "present"
    assert _provision(rig)["converged"][rig.name]["ran"] == []


def test_a_changed_variable_runs_the_component(converged_rig):
    rig = converged_rig
    # A directory, as the other modules use: next to it, host_vars/NAME.yml would be ignored.
    extra = rig.workspace / "inventory" / "host_vars" / rig.name / "converged_test.yml"
    extra.parent.mkdir(parents=True, exist_ok=True)
    extra.write_text("base_extra_packages: [jq, rsync, tree]\n")
    try:
        report = _provision(rig)
        decision = report["converged"][rig.name]
        assert decision["ran"] == ["base"], decision
        assert "desired state changed" in decision["reasons"]["base"]
        assert "ii" in rig.ssh("dpkg-query -W -f='${db:Status-Abbrev}' tree").stdout
    finally:
        extra.unlink()
        rig.ssh("sudo -n apt-get remove -y -q tree >/dev/null")
    # Back to the old variables: the host still has `tree`, which base does not remove, but
    # the desired state changed again, so base runs (and converges) once more.
    assert _provision(rig)["converged"][rig.name]["ran"] == ["base"]
    assert _provision(rig)["converged"][rig.name]["ran"] == []


def test_full_runs_ansible_even_when_converged(converged_rig):
    rig = converged_rig
    before = _ansible_runs(rig)
    report = _provision(rig, "--full")
    assert "converged" not in report
    assert report["run"]["hosts"][0]["ok"] > 0
    assert _ansible_runs(rig) != before
