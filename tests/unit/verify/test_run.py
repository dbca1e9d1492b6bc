"""The child pytest that `rigforge verify` runs (provision/verify/run.py): its command line,
the groups of hosts that share a process, and the variables it is handed."""

import json
import xml.etree.ElementTree as ET

from provision import assets
from provision.inventory import Host
from provision.targets import Target
from provision.verify import run
from provision.verify.results import VerifyResult
from provision.verify.spec import PREFETCH_DIR


def target(name, *components):
    return Target(Host(name, "10.0.0.5"), list(components), {})


def test_the_command_records_commands_in_the_workspace(workspace, tmp_path):
    command = run.pytest_command(workspace, [target("a", "base")], None,
                                    tmp_path / "r.json", tmp_path / "j.xml")
    assert f"--rigforge-prefetch={workspace.state_dir / PREFETCH_DIR}" in command
    assert command[3:4] == [str(assets.checks_dir() / "test_base.py")]


def test_recorded_hosts_share_one_process_and_the_others_get_one_each(workspace, monkeypatch):
    from provision.checks import prefetch

    directory = workspace.state_dir / PREFETCH_DIR
    directory.mkdir(parents=True)
    for name in ("a", "c"):
        prefetch.record_path(directory, name).write_text("[]")
    groups = []

    def check_group(ws, group, components, fetched=None, tiers=None):
        groups.append(sorted(t.host.name for t in group))
        return VerifyResult(pytest_rc=0)

    monkeypatch.setattr(run, "_check_group", check_group)
    monkeypatch.setattr("provision.hosts.write_ssh_config", lambda ws: None)
    run.run_checks(workspace, [target(n, "base") for n in "abcd"], None)
    assert sorted(groups) == [["a", "c"], ["b"], ["d"]]


def test_the_vars_file_holds_every_host_of_the_group(tmp_path):
    path = run._write_vars(tmp_path, [target("a", "base"), target("b", "base")])
    assert set(json.loads(path.read_text())) == {"a", "b"}


def test_verify_vars_file_leaves_out_secrets(tmp_path):
    target = Target(Host("rig1", "10.0.0.5"), ["base"], {
        "rigforge_components": ["base"], "ansible_become_password": "s3cret",
        "ollama_api_token": "t0ken", "docker_users": ["alice"],
    })
    path = run._write_vars(tmp_path, [target])
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    text = path.read_text()
    assert "s3cret" not in text and "t0ken" not in text
    assert json.loads(text) == {"rig1": {"rigforge_components": ["base"], "docker_users": ["alice"]}}


def test_the_groups_results_are_merged_into_one(workspace, monkeypatch):
    from provision.verify.results import CheckResult

    def check_group(ws, group, components, fetched=None, tiers=None):
        name = group[0].host.name
        return VerifyResult(
            checks=[CheckResult(name, "base", "test_os", "passed", warning="old branch"),
                    CheckResult(name, "base", "test_disk", "passed", warning="old branch")],
            junit_xml=f'<testsuites><testsuite name="rigforge-verify-{name}"/></testsuites>',
            pytest_rc=5 if name == "a" else 1, output=f"{name}\n")

    monkeypatch.setattr(run, "_check_group", check_group)
    monkeypatch.setattr("provision.hosts.write_ssh_config", lambda ws: None)
    result = run.run_checks(workspace, [target("a", "base"), target("b", "base")], None)
    assert [c.host for c in result.checks] == ["a", "a", "b", "b"]
    assert result.warnings == {"a": ["old branch"], "b": ["old branch"]}
    assert result.pytest_rc == 1 and sorted(result.output.split()) == ["a", "b"]
    assert ET.fromstring(result.junit_xml).tag == "testsuites"
    assert len(ET.fromstring(result.junit_xml)) == 2
