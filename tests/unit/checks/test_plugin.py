"""The pytest plugin of the checks (provision/checks/plugin.py), in a child pytest as
`rigforge verify` runs it: the report it writes and the variables it reads."""

import json
import os
import subprocess
import sys


def test_the_report_plugin_keeps_a_checks_warning_with_its_result(tmp_path, workspace):
    """The plugin that `rigforge verify` reads: a RigforgeWarning raised by a passing check
    travels with that check's result."""
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
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = {r["check"]: r for r in json.loads(report.read_text())}
    assert results["test_warns"]["outcome"] == "passed"
    assert results["test_warns"]["warning"] == "branch 535 is old"
    assert "warning" not in results["test_quiet"]


def test_the_checks_plugin_reads_the_vars_file_instead_of_ansible(tmp_path):
    """The child pytest of `verify` must not load Ansible's inventory machinery."""
    vars_file = tmp_path / "vars.json"
    vars_file.write_text(json.dumps({"rig1": {"rigforge_components": ["base"]}}))
    code = (
        "import sys, types\n"
        "from provision.checks import plugin\n"
        "config = types.SimpleNamespace(getoption=lambda name: {"
        f"'--rigforge-vars': {str(vars_file)!r}, '--rigforge-workspace': '/nonexistent'}}[name])\n"
        "print(plugin._workspace_vars(config))\n"
        "print(any(m == 'ansible' or m.startswith('ansible.') for m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.splitlines() == ["{'rig1': {'rigforge_components': ['base']}}", "False"]


def test_only_the_chosen_tiers_run_and_a_findings_fix_is_reported(tmp_path, workspace):
    (tmp_path / "test_demo.py").write_text(
        "import pytest\nfrom provision.checks import fail\n"
        "pytestmark = pytest.mark.component('nvidia_driver')\n"
        "def test_installed():\n    pass\n"
        "@pytest.mark.tier('health')\n"
        "def test_link():\n    fail('GPU 0 runs at x4 of x16', 'reseat the card')\n"
        "@pytest.mark.tier('workload')\n"
        "def test_container():\n    pass\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")

    def run(*extra):
        report = tmp_path / "report.json"
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "provision.checks.plugin",
             f"--rigforge-workspace={workspace.root}", f"--rigforge-report={report}", *extra,
             str(tmp_path / "test_demo.py")],
            cwd=tmp_path, capture_output=True, text=True, check=False,
            env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
        return {r["check"]: r for r in json.loads(report.read_text())}

    every = run()
    assert {c: (r["tier"], r["outcome"]) for c, r in every.items()} == {
        "test_installed": ("install", "passed"), "test_link": ("health", "failed"),
        "test_container": ("workload", "passed")}
    assert every["test_link"]["message"] == "GPU 0 runs at x4 of x16. Fix: reseat the card"
    assert every["test_link"]["fix"] == "reseat the card" and every["test_installed"]["fix"] == ""
    assert sorted(run("--rigforge-tiers=install,workload")) == ["test_container", "test_installed"]
