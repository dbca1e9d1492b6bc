"""Reused verify results (provision/verify/memo.py): only when the host's answers and every
local input are unchanged.

The child pytest and the round trip are replaced where a test is about what reaches them; the
round trips themselves, and the digest the results are kept under, are tested with the
prefetch (tests/unit/checks/test_prefetch.py).
"""

import json
import xml.etree.ElementTree as ET

import pytest

from provision import verify
from provision.checks import prefetch
from provision.inventory import Host as InventoryHost
from provision.targets import Target
from provision.verify import memo, run
from provision.verify.spec import PREFETCH_DIR


def target(name, *components, user="admin", **variables):
    return Target(InventoryHost(name, "10.0.0.5", user=user), list(components), variables)


def test_the_local_key_follows_every_local_input(monkeypatch):
    base = memo.local_key(target("a", "base", x=1), None)
    assert memo.local_key(target("a", "base", x=1), None) == base
    changed = [
        memo.local_key(target("a", "base", x=2), None),            # a variable
        memo.local_key(target("a", "base", "docker", x=1), None),  # the host's components
        memo.local_key(target("a", "base", x=1), ["base"]),        # --components
        memo.local_key(target("b", "base", x=1), None),            # another host
        memo.local_key(target("a", "base", user="root", x=1), None),  # no sudo
    ]
    assert base not in changed and len(set(changed)) == len(changed)
    monkeypatch.setattr(memo, "code_fingerprint", lambda: "other code")
    assert memo.local_key(target("a", "base", x=1), None) != base


def test_secrets_only_reach_the_key_through_the_same_filter_as_the_vars_file():
    key = memo.local_key(target("a", "base", x=1, api_password="one"), None)
    assert memo.local_key(target("a", "base", x=1, api_password="two"), None) == key


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="rigforge-verify">
<testcase classname="...work.provision.checks.test_base" name="test_os[ssh://a]" time="0.1"/>
<testcase classname="...work.provision.checks.test_base" name="test_os[ssh://a-b]" time="0.2">
<failure message="no">boom</failure></testcase>
<testcase classname="...work.provision.checks.test_docker" name="test_os[ssh://a]" time="0.3">
<skipped message="gpu" type="pytest.skip">gpu</skipped></testcase>
</testsuite></testsuites>"""

CHECKS = [
    {"host": "a", "nodeid": "../../work/provision/checks/test_base.py::test_os[ssh://a]"},
    {"host": "a-b", "nodeid": "../../work/provision/checks/test_base.py::test_os[ssh://a-b]"},
    {"host": "a", "nodeid": "../../work/provision/checks/test_docker.py::test_os[ssh://a]"},
]


def test_a_groups_junit_is_split_by_host_through_the_node_ids():
    cases = memo.testcases_by_host(JUNIT, CHECKS)
    assert {h: len(c) for h, c in cases.items()} == {"a": 2, "a-b": 1}
    assert "failure" in cases["a-b"][0]


def test_a_reused_suite_counts_its_testcases_and_says_whose_results_they_are():
    cases = memo.testcases_by_host(JUNIT, CHECKS)
    suite = ET.fromstring(memo.suite("a", cases["a"], "2026-12-01T10:00:00Z"))
    assert suite.get("name") == "rigforge-verify-a"
    assert (suite.get("tests"), suite.get("skipped"), suite.get("failures")) == ("2", "1", "0")
    prop = suite.find("properties/property")
    assert prop.get("value") == "2026-12-01T10:00:00Z"


def check_dicts(host, outcome="passed"):
    return [{"host": host, "component": "base", "check": "test_os", "outcome": outcome,
             "message": "", "nodeid": f"x/test_base.py::test_os[ssh://{host}]"}]


def junit_for(*hosts):
    cases = "".join(f'<testcase classname="x.test_base" name="test_os[ssh://{h}]" time="0.1"/>'
                    for h in hosts)
    return f'<testsuites><testsuite name="rigforge-verify">{cases}</testsuite></testsuites>'


@pytest.fixture
def fleet(workspace, monkeypatch):
    """Hosts a, b (recorded) and c (not); verify's round trip answers from ``answers``."""
    records = workspace.state_dir / PREFETCH_DIR
    records.mkdir(parents=True)
    for name in "ab":
        prefetch.record_path(records, name).write_text('["true"]')
    answers = {"a": "digest-a", "b": "digest-b"}
    groups, fetches = [], []

    def fetch(ws, targets, directory, while_waiting=None):
        if while_waiting:
            while_waiting()
        fetches.append(sorted(t.host.name for t in targets))
        return {t.host.name: prefetch.Fetched(["true"], 1, [(0, b"", b"")], answers[t.host.name])
                for t in targets}

    def check_group(ws, group, components, fetched=None, tiers=None):
        names = [t.host.name for t in group]
        groups.append((sorted(names), sorted(n for n in fetched or {} if n in names)))
        return verify.VerifyResult(
            checks=[verify.CheckResult(**c) for n in names for c in check_dicts(n)],
            junit_xml=junit_for(*names), pytest_rc=0)

    monkeypatch.setattr(memo, "fetch", fetch)
    monkeypatch.setattr(run, "_check_group", check_group)
    monkeypatch.setattr("provision.hosts.write_ssh_config", lambda ws: None)
    targets = [target(n, "base") for n in "abc"]
    return workspace, targets, answers, groups, fetches


def remember(workspace, targets, pure=True, rc=0):
    names = [t.host.name for t in targets]
    result = verify.VerifyResult(
        checks=[verify.CheckResult(**c) for n in names for c in check_dicts(n)],
        junit_xml=junit_for(*names), pytest_rc=rc)
    probes = {t.host.name: {"digest": f"digest-{t.host.name}", "pure": pure} for t in targets}
    memo.remember(workspace, targets, None, result, probes)


def test_without_kept_results_nothing_extra_is_fetched(fleet):
    workspace, targets, _, groups, fetches = fleet
    result = verify.run_checks(workspace, targets, None)
    assert fetches == [] and result.reused == {}
    assert sorted(groups) == [(["a", "b"], []), (["c"], [])]


def test_a_host_whose_answers_are_unchanged_gets_its_results_without_pytest(fleet):
    workspace, targets, answers, groups, fetches = fleet
    remember(workspace, targets[:2])
    answers["b"] = "digest-b-changed"
    result = verify.run_checks(workspace, targets, None)
    assert fetches == [["a", "b"]]
    assert sorted(groups) == [(["b"], ["b"]), (["c"], [])]  # b's round trip handed on
    assert set(result.reused) == {"a"}
    assert sorted(c.host for c in result.checks) == ["a", "b", "c"]
    suites = ET.fromstring(result.junit_xml).findall("testsuite")
    assert "rigforge-verify-a" in [s.get("name") for s in suites]
    assert result.to_dict()["reused_results"].keys() == {"a"}
    assert "nodeid" not in result.to_dict()["checks"][0]


def test_full_evaluates_every_host_and_asks_nothing_extra(fleet):
    workspace, targets, _, groups, fetches = fleet
    remember(workspace, targets[:2])
    result = verify.run_checks(workspace, targets, None, reuse=False)
    assert fetches == [] and result.reused == {}
    assert sorted(groups) == [(["a", "b"], []), (["c"], [])]


def test_a_change_of_variables_means_evaluating_again(fleet):
    workspace, targets, _, groups, _ = fleet
    remember(workspace, targets[:1])
    targets[0].vars["docker_users"] = ["someone"]
    assert verify.run_checks(workspace, targets, None).reused == {}
    assert (["a", "b"], ["a"]) in groups


def test_reused_failures_still_fail(fleet):
    workspace, targets, _, _, _ = fleet
    result = verify.VerifyResult(checks=[verify.CheckResult(**check_dicts("a", "failed")[0])],
                                 junit_xml=junit_for("a"), pytest_rc=1)
    memo.remember(workspace, targets[:1], None, result, {"a": {"digest": "digest-a", "pure": True}})
    again = verify.run_checks(workspace, targets[:1], None)
    assert again.reused and not again.succeeded and again.pytest_rc == 1


@pytest.mark.parametrize("pure, rc", [(False, 0), (True, 2), (True, 3)])
def test_results_are_kept_only_from_a_whole_round_trip_and_a_finished_run(fleet, pure, rc):
    workspace, targets, _, _, _ = fleet
    remember(workspace, targets[:1])
    memo_dir = workspace.state_dir / memo.MEMO_DIR
    assert memo.load(memo_dir, "a") is not None
    remember(workspace, targets[:1], pure=pure, rc=rc)
    assert memo.load(memo_dir, "a") is None  # and the old ones are dropped too


def test_kept_results_are_private_and_hold_no_answers(fleet):
    workspace, targets, _, _, _ = fleet
    remember(workspace, targets[:1])
    path = memo.memo_path(workspace.state_dir / memo.MEMO_DIR, "a")
    assert path.stat().st_mode & 0o077 == 0
    assert set(json.loads(path.read_text())) == {"key", "evaluated", "checks", "testcases"}
