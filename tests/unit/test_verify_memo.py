"""Reused verify results: only when the host's answers and every local input are unchanged.

The round trips really run, against testinfra's ``local://`` backend (the prefetch only sees
backend.run); the child pytest is replaced where a test is about what reaches it.
"""

import json
import xml.etree.ElementTree as ET

import pytest
from testinfra.backend import get_backend
from testinfra.host import Host

from provision import verify, verify_memo
from provision.checks import prefetch
from provision.inventory import Host as InventoryHost
from provision.targets import Target


def target(name, *components, user="admin", **variables):
    return Target(InventoryHost(name, "10.0.0.5", user=user), list(components), variables)


@pytest.fixture
def state(tmp_path):
    """A file on "the host" whose content the recorded command reads."""
    state = tmp_path / "state"
    state.write_text("converged\n")
    directory = tmp_path / "rec"
    directory.mkdir()
    commands = [f"cat {state}", "printf 'bin\\0\\377'; echo err >&2; exit 3"]
    (directory / "local.json").write_text(json.dumps(commands))
    return state, directory, commands


def local_host(name="local"):
    host = Host(get_backend("local://"))  # not testinfra.get_host: that one is cached
    host.backend.get_hostname = lambda: name
    return host


def run_checks_of(directory, commands, given=None):
    """What the plugin sees when the checks run ``commands``: the prefetcher's probes."""
    host = local_host()
    fetcher = prefetch.Prefetcher(directory, given)
    fetcher.install(host)
    outputs = [host.run(c).stdout_bytes for c in commands]
    return fetcher.probes()["local"], outputs


def test_identical_answers_give_the_same_digest_and_one_changed_byte_another(state):
    path, directory, commands = state
    first, _ = run_checks_of(directory, commands)
    second, _ = run_checks_of(directory, commands)
    assert first["pure"] and second["pure"]
    assert first["digest"] == second["digest"]
    path.write_text("convergeD\n")
    third, outputs = run_checks_of(directory, commands)
    assert third["pure"] and third["digest"] != first["digest"]
    assert outputs[0] == b"convergeD\n"


def test_the_digest_tells_apart_where_bytes_sit_and_exit_statuses():
    d = prefetch.digest
    assert d("s", [(0, b"ab", b"c")]) != d("s", [(0, b"a", b"bc")])
    assert d("s", [(0, b"a", b"")]) != d("s", [(1, b"a", b"")])
    assert d("s", [(0, b"a", b"")]) != d("t", [(0, b"a", b"")])


def test_a_command_run_live_makes_the_run_impure(state):
    _, directory, commands = state
    probe, _ = run_checks_of(directory, [*commands, "echo not recorded"])
    assert not probe["pure"]
    probe, _ = run_checks_of(directory, commands[:1])  # the checks ran fewer commands
    assert not probe["pure"]
    probe, _ = run_checks_of(directory / "none", commands)  # no record: every command live
    assert not probe["pure"] and probe["digest"] is None


def test_answers_fetched_by_verify_are_used_instead_of_a_second_round_trip(state):
    path, directory, commands = state
    fetched = prefetch.fetch(local_host().backend.run, commands, sudo=False)
    carried = prefetch.Fetched.from_json(json.loads(json.dumps(fetched.to_json())))
    assert carried == fetched and carried.results[1] == (3, b"bin\0\377", b"err\n")
    path.write_text("changed after the round trip\n")
    probe, outputs = run_checks_of(directory, commands, {"local": carried})
    assert outputs[0] == b"converged\n"  # what the round trip saw, not a second look
    assert probe == {"digest": fetched.digest, "pure": True}


def test_answers_for_another_record_are_not_used(state):
    _, directory, commands = state
    stale = prefetch.fetch(local_host().backend.run, ["echo other"], sudo=False)
    probe, outputs = run_checks_of(directory, commands, {"local": stale})
    assert outputs[0] == b"converged\n" and probe["digest"] != stale.digest


def test_the_local_key_follows_every_local_input(monkeypatch):
    base = verify_memo.local_key(target("a", "base", x=1), None)
    assert verify_memo.local_key(target("a", "base", x=1), None) == base
    changed = [
        verify_memo.local_key(target("a", "base", x=2), None),            # a variable
        verify_memo.local_key(target("a", "base", "docker", x=1), None),  # the host's components
        verify_memo.local_key(target("a", "base", x=1), ["base"]),        # --components
        verify_memo.local_key(target("b", "base", x=1), None),            # another host
        verify_memo.local_key(target("a", "base", user="root", x=1), None),  # no sudo
    ]
    assert base not in changed and len(set(changed)) == len(changed)
    monkeypatch.setattr(verify_memo, "code_fingerprint", lambda: "other code")
    assert verify_memo.local_key(target("a", "base", x=1), None) != base


def test_secrets_only_reach_the_key_through_the_same_filter_as_the_vars_file():
    key = verify_memo.local_key(target("a", "base", x=1, api_password="one"), None)
    assert verify_memo.local_key(target("a", "base", x=1, api_password="two"), None) == key


def test_the_code_fingerprint_covers_the_checks():
    assert any(p.name == "test_docker.py" for p in verify_memo._PACKAGE.rglob("*.py"))
    assert len(verify_memo.code_fingerprint()) == 64


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
    cases = verify_memo.testcases_by_host(JUNIT, CHECKS)
    assert {h: len(c) for h, c in cases.items()} == {"a": 2, "a-b": 1}
    assert "failure" in cases["a-b"][0]


def test_a_reused_suite_counts_its_testcases_and_says_whose_results_they_are():
    cases = verify_memo.testcases_by_host(JUNIT, CHECKS)
    suite = ET.fromstring(verify_memo.suite("a", cases["a"], "2026-12-01T10:00:00Z"))
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
    records = workspace.state_dir / verify.PREFETCH_DIR
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

    def check_group(ws, group, components, fetched=None):
        names = [t.host.name for t in group]
        groups.append((sorted(names), sorted(n for n in fetched or {} if n in names)))
        return verify.VerifyResult(
            checks=[verify.CheckResult(**c) for n in names for c in check_dicts(n)],
            junit_xml=junit_for(*names), pytest_rc=0)

    monkeypatch.setattr(verify_memo, "fetch", fetch)
    monkeypatch.setattr(verify, "_check_group", check_group)
    monkeypatch.setattr("provision.hosts.write_ssh_config", lambda ws: None)
    targets = [target(n, "base") for n in "abc"]
    return workspace, targets, answers, groups, fetches


def remember(workspace, targets, pure=True, rc=0):
    names = [t.host.name for t in targets]
    result = verify.VerifyResult(
        checks=[verify.CheckResult(**c) for n in names for c in check_dicts(n)],
        junit_xml=junit_for(*names), pytest_rc=rc)
    probes = {t.host.name: {"digest": f"digest-{t.host.name}", "pure": pure} for t in targets}
    verify._remember(workspace, targets, None, result, probes)


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
    verify._remember(workspace, targets[:1], None, result, {"a": {"digest": "digest-a", "pure": True}})
    again = verify.run_checks(workspace, targets[:1], None)
    assert again.reused and not again.succeeded and again.pytest_rc == 1


@pytest.mark.parametrize("pure, rc", [(False, 0), (True, 2), (True, 3)])
def test_results_are_kept_only_from_a_whole_round_trip_and_a_finished_run(fleet, pure, rc):
    workspace, targets, _, _, _ = fleet
    remember(workspace, targets[:1])
    memo_dir = workspace.state_dir / verify_memo.MEMO_DIR
    assert verify_memo.load(memo_dir, "a") is not None
    remember(workspace, targets[:1], pure=pure, rc=rc)
    assert verify_memo.load(memo_dir, "a") is None  # and the old ones are dropped too


def test_kept_results_are_private_and_hold_no_answers(fleet):
    workspace, targets, _, _, _ = fleet
    remember(workspace, targets[:1])
    path = verify_memo.memo_path(workspace.state_dir / verify_memo.MEMO_DIR, "a")
    assert path.stat().st_mode & 0o077 == 0
    assert set(json.loads(path.read_text())) == {"key", "evaluated", "checks", "testcases"}
