import json

import pytest

from provision import deploy
from provision.errors import UsageError
from provision.runner import HostResult, RunResult
from tests.conftest import snapshot


def _result(**statuses) -> RunResult:
    result = RunResult(rc=0)
    for name, status in statuses.items():
        host = HostResult(name)
        if status == "failed":
            host.failed = 1
        elif status == "unreachable":
            host.unreachable = 1
        result.hosts[name] = host
    return result


def test_last_run_keeps_every_hosts_latest_outcome(workspace):
    deploy.record(workspace, _result(rig1="ok", rig2="unreachable", rig3="failed"))
    assert deploy.failed_last_time(workspace) == ["rig2", "rig3"]
    deploy.record(workspace, _result(rig2="ok"))  # a --retry-failed run of rig2 only
    assert deploy.failed_last_time(workspace) == ["rig3"]
    saved = json.loads((workspace.state_dir / "last-run.json").read_text())
    assert saved == {"hosts": {"rig1": "ok", "rig2": "ok", "rig3": "failed"}}


def test_nothing_to_retry_is_bad_input(workspace):
    with pytest.raises(UsageError, match="no host failed"):
        deploy.failed_last_time(workspace)
    deploy.record(workspace, _result(rig1="ok"))
    with pytest.raises(UsageError, match="no host failed"):
        deploy.failed_last_time(workspace)


def test_retry_failed_cli_paths(cli, workspace):
    before = snapshot(workspace.root)
    result = cli("provision", "--yes", "--retry-failed")
    assert result.exit_code == 2 and "no host failed" in result.output
    result = cli("provision", "--yes", "--retry-failed", "--limit", "rig1")
    assert result.exit_code == 2 and "cannot be combined" in result.output
    assert snapshot(workspace.root) == before


def test_pin_branch_records_the_new_branch_and_reports_shadowing(two_rigs):
    workspace = two_rigs
    host_vars = workspace.root / "inventory" / "host_vars"
    (host_vars / "rig2.yml").write_text('nvidia_driver_branch: "570"\n')
    assert deploy.pin_branch(workspace, ["rig1", "rig2"], "575") == ["rig2"]
    text = workspace.inventory.read_text()
    assert text.count("nvidia_driver_branch: '575'") + text.count('nvidia_driver_branch: "575"') \
        + text.count("nvidia_driver_branch: 575") == 2
