"""`rigforge ci` pieces that need no host: the workspace copy, the JUnit report (the workflow that
runs it in CI: test_ci_source.py)."""

import xml.etree.ElementTree as ET

from provision.ci import CiResult, Step, ci_workspace, junit_xml
from provision.inventory import Host, Inventory
from provision.verify import VerifyResult


def test_ci_copy_has_the_stack_but_not_the_users_hosts(workspace, tmp_path):
    inventory = Inventory(workspace.inventory)
    inventory.add(Host("rig1", "10.0.0.5"))
    inventory.save()
    workspace.known_hosts.write_text("10.0.0.5 ssh-ed25519 AAAA\n")
    (workspace.root / "inventory/host_vars").mkdir()
    (workspace.root / "inventory/host_vars/rig1.yml").write_text("secret_thing: 1\n")
    copy = ci_workspace(workspace, tmp_path / "ci")
    assert Inventory(copy.inventory).hosts() == []
    assert copy.known_hosts.read_text() == ""
    assert not (copy.root / "inventory/host_vars").exists()
    assert (copy.root / "roles/base/tasks/main.yml").is_file()
    assert (copy.root / "inventory/group_vars/sandbox.yml").is_file()
    assert (copy.root / "site.yml").read_text() == (workspace.root / "site.yml").read_text()


def test_junit_has_the_steps_then_the_checks():
    checks = (
        '<?xml version="1.0"?><testsuites><testsuite name="rigforge-verify" tests="1">'
        '<testcase classname="test_base" name="test_os_is_supported[ssh://ci1]"/>'
        "</testsuite></testsuites>"
    )
    result = CiResult("ci1", [Step("provision", True, 12.5), Step("idempotence", False, 3.0,
                                                                 "changed: Touch a file.")],
                      VerifyResult(junit_xml=checks))
    root = ET.fromstring(junit_xml(result))
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["rigforge-ci", "rigforge-verify"]
    cases = suites[0].findall("testcase")
    assert [c.get("name") for c in cases] == ["provision", "idempotence"]
    assert cases[1].find("failure").get("message") == "changed: Touch a file."
    assert suites[0].get("failures") == "1"
    assert not result.ok
