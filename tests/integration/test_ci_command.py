"""`rigforge ci` end to end: a throwaway host, provision, idempotence, verify, teardown."""

import json
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import snapshot
from tests.integration.conftest import rigforge
from tests.workspaces import select_base_only

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_ci_proves_the_stack_and_leaves_nothing_behind(tmp_path):
    workspace = tmp_path / "ws"
    rigforge(workspace, "init", str(workspace), "--ci", "github")
    before = snapshot(workspace)
    junit = tmp_path / "ci.xml"
    proc = rigforge(workspace, "ci", "--components", "base", "--junit", str(junit), timeout=1800)
    assert "idempotence  ok" in proc.stdout
    root = ET.fromstring(junit.read_text())
    steps = {c.get("name"): c for c in root.find("testsuite").findall("testcase")}
    assert list(steps) == ["provision", "idempotence", "verify"]
    assert all(c.find("failure") is None for c in steps.values())
    checks = [c.get("name") for s in root.findall("testsuite")[1:] for c in s.iter("testcase")]
    assert any(name.startswith("test_base_packages_installed") for name in checks)
    left = json.loads(rigforge(workspace, "sandbox", "list", "--json").stdout)
    assert not [h for h in left if h["name"].startswith("ci")], "the ci host must be gone"
    after = {k: v for k, v in snapshot(workspace).items() if not k.startswith(".rigforge")}
    assert after == {k: v for k, v in before.items() if not k.startswith(".rigforge")}


def test_ci_fails_with_exit_1_when_the_stack_is_not_idempotent(tmp_path):
    workspace = tmp_path / "ws"
    rigforge(workspace, "init", str(workspace))
    select_base_only(workspace)
    site = workspace / "site.yml"
    site.write_text(site.read_text() + (
        "- name: A play that is not idempotent.\n  hosts: all\n  gather_facts: false\n"
        "  tasks:\n    - name: Touch a file every time.\n"
        "      ansible.builtin.command: touch /tmp/rigforge-not-idempotent\n"
    ))
    junit = tmp_path / "ci.xml"
    # No --components: narrowing works through tags, and this extra play has none.
    proc = rigforge(workspace, "ci", "--junit", str(junit), check=False, timeout=1800)
    assert proc.returncode == 1
    failure = ET.fromstring(junit.read_text()).find("testsuite/testcase[@name='idempotence']/failure")
    assert failure is not None and "Touch a file every time." in failure.get("message")
