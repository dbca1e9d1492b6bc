"""The child pytest that `rigforge verify` runs: what it collects and where it records."""

from pathlib import Path

from provision import assets, registry, verify
from provision.inventory import Host
from provision.targets import Target


def target(name, *components):
    return Target(Host(name, "10.0.0.5"), list(components), {})


def test_only_the_modules_of_the_hosts_components_are_collected():
    modules = verify.check_modules([target("a", "base", "docker"), target("b", "base", "ollama")])
    assert [Path(m).name for m in modules] == ["test_base.py", "test_docker.py", "test_ollama.py"]
    assert all(Path(m).is_file() for m in modules)


def test_every_component_has_a_check_module():

    for name in registry.names():
        assert (assets.checks_dir() / f"test_{name}.py").is_file(), name


def test_without_components_the_whole_directory_is_collected():
    assert verify.check_modules([target("a")]) == [str(assets.checks_dir())]


def test_the_command_records_commands_in_the_workspace(workspace, tmp_path):
    command = verify.pytest_command(workspace, [target("a", "base")], None,
                                    tmp_path / "r.json", tmp_path / "j.xml")
    assert f"--rigforge-prefetch={workspace.state_dir / verify.PREFETCH_DIR}" in command
    assert command[3:4] == [str(assets.checks_dir() / "test_base.py")]


def test_recorded_hosts_share_one_process_and_the_others_get_one_each(workspace, monkeypatch):
    from provision.checks import prefetch

    directory = workspace.state_dir / verify.PREFETCH_DIR
    directory.mkdir(parents=True)
    for name in ("a", "c"):
        prefetch.record_path(directory, name).write_text("[]")
    groups = []

    def check_group(ws, group, components, fetched=None):
        groups.append(sorted(t.host.name for t in group))
        return verify.VerifyResult(pytest_rc=0)

    monkeypatch.setattr(verify, "_check_group", check_group)
    monkeypatch.setattr("provision.hosts.write_ssh_config", lambda ws: None)
    verify.run_checks(workspace, [target(n, "base") for n in "abcd"], None)
    assert sorted(groups) == [["a", "c"], ["b"], ["d"]]


def test_the_vars_file_holds_every_host_of_the_group(tmp_path):
    import json

    path = verify._write_vars(tmp_path, [target("a", "base"), target("b", "base")])
    assert set(json.loads(path.read_text())) == {"a", "b"}


def test_the_driver_check_warns_of_a_branch_past_its_end_of_life_chosen_or_installed():
    from provision.gpu.stack import eol_warnings

    assert eol_warnings("535", "570.195.03") == [
        "Driver branch 535 reached its end of life in 2026-06 (no more security fixes); move to 580, "
        "the long-term branch, supported to 2028-06 (`rigforge update-drivers --branch 580`).",
        "The installed driver branch 570 reached its end of life in 2026-02 (no more security fixes); "
        "move to 580, the long-term branch, supported to 2028-06 (`rigforge update-drivers --branch 580`).",
    ]
    assert eol_warnings("580", "580.95.05") == []


def test_the_report_plugin_keeps_a_checks_warning_with_its_result(tmp_path, workspace):
    """The plugin that `rigforge verify` reads: a RigforgeWarning raised by a passing check
    travels with that check's result."""
    import json
    import subprocess
    import sys

    (tmp_path / "test_demo.py").write_text(
        "import warnings\nimport pytest\nfrom provision.checks import RigforgeWarning\n"
        "pytestmark = pytest.mark.component('nvidia_driver')\n"
        "def test_warns():\n    warnings.warn(RigforgeWarning('branch 535 is old'))\n"
        "def test_quiet():\n    pass\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "provision.checks.plugin",
         f"--rigforge-workspace={workspace.root}", f"--rigforge-report={report}",
         str(tmp_path / "test_demo.py")],
        cwd=tmp_path, capture_output=True, text=True, check=False,
        env={**__import__("os").environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = {r["check"]: r for r in json.loads(report.read_text())}
    assert results["test_warns"]["outcome"] == "passed"
    assert results["test_warns"]["warning"] == "branch 535 is old"
    assert "warning" not in results["test_quiet"]


def test_verify_collects_the_checks_warnings_per_host():
    result = verify.VerifyResult(checks=[
        verify.CheckResult("rig1", "nvidia_driver", "test_driver_branch_is_supported", "passed",
                           warning="Driver branch 535 reached its end of life"),
        verify.CheckResult("rig1", "base", "test_os_is_supported", "passed")])
    assert "warning" not in result.checks[1].to_dict()
    assert result.checks[0].to_dict()["warning"] == "Driver branch 535 reached its end of life"


def test_verify_json_carries_the_warnings():
    result = verify.VerifyResult(warnings={"rig1": ["Driver branch 535 reached its end of life"]})
    assert result.to_dict()["warnings"] == {"rig1": ["Driver branch 535 reached its end of life"]}
