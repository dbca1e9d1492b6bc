"""The converged check: the state script run for real on this machine (directly, and over
ssh), digests, decisions, the record, and that a converged re-run does not load the
inventory through Ansible."""

import json
import os
import subprocess
import sys

import pytest

from provision import converged, deploy
from provision.converged import Decision, HostState
from provision.inventory import Host, Inventory
from provision.runner import HostResult, RunResult
from tests.unit.loopback_sshd import host_in


def run_script(state_dir) -> str:
    env = {**os.environ, "RIGFORGE_STATE_DIR": str(state_dir)}
    proc = subprocess.run(["sh", "-s"], input=converged.STATE_SCRIPT, capture_output=True,
                          text=True, env=env, timeout=60, check=True)
    return proc.stdout


@pytest.fixture
def host_dir(tmp_path):
    """A state directory with one manifest naming real things on this machine."""
    state = tmp_path / "state"
    state.mkdir()
    managed = tmp_path / "managed.conf"
    managed.write_text("setting = 1\n")
    (state / "demo.manifest").write_text(
        "package dpkg\n"
        "package rigforge-no-such-package\n"
        f"file {managed}\n"
        f"stat {managed}\n"
        "group root\n"
    )
    (state / "other.manifest").write_text("package coreutils\n")
    return state, managed


def test_the_script_reads_real_state_and_a_file_edit_changes_only_its_component(host_dir):
    state_dir, managed = host_dir
    first = converged.parse_state("h", run_script(state_dir))
    assert first.error is None and first.problem is None
    assert set(first.components) == {"demo", "other"}
    assert converged.parse_state("h", run_script(state_dir)).components == first.components
    managed.write_text("setting = 2\n")
    second = converged.parse_state("h", run_script(state_dir))
    assert second.components["demo"] != first.components["demo"]
    assert second.components["other"] == first.components["other"]


def test_the_script_output_names_every_item(host_dir):
    state_dir, managed = host_dir
    out = run_script(state_dir)
    assert "@package dpkg ii " in out
    assert "no packages found matching rigforge-no-such-package" in out
    assert f"@file {managed} regular file 644 " in out
    assert "@group root root:x:0:" in out
    assert out.rstrip().endswith("@end")


def test_a_changed_manifest_changes_the_digest(host_dir):
    state_dir, _ = host_dir
    before = converged.parse_state("h", run_script(state_dir)).components["other"]
    (state_dir / "other.manifest").write_text("package coreutils\npackage dpkg\n")
    assert converged.parse_state("h", run_script(state_dir)).components["other"] != before


def test_over_ssh_the_state_of_each_host_is_read_in_one_session(workspace, host_dir, tmp_path,
                                                                monkeypatch):
    """read_states through the workspace's ssh_config, against a loopback SSH server that runs
    the script on this machine (its commands see this process's environment)."""
    state_dir, _ = host_dir
    monkeypatch.setenv("RIGFORGE_STATE_DIR", str(state_dir))
    rig, down = host_in(workspace, tmp_path, "rig1"), host_in(workspace, tmp_path, "rig2")
    down.close()
    try:
        states = converged.read_states(workspace, ["rig1", "rig2"])
    finally:
        rig.close()
    assert states["rig1"].error is None
    assert states["rig1"].components == converged.parse_state("h", run_script(state_dir)).components
    assert rig.connections == 1 and rig.commands == ["sh -s"]
    assert states["rig2"].error == (
        f"ssh exited 255: ssh: connect to host 127.0.0.1 port {down.port}: Connection refused")
    decision = converged.decide("rig2", ["demo"], {"components": {"demo": {}}}, states["rig2"], None)
    assert "state not read (ssh exited 255" in decision.reasons["demo"]


def test_package_status_and_version_are_part_of_the_state():
    def out(line):
        return f"@manifest x.manifest\npackage tool\n{line}\n@audit 0\n@end\n"

    installed = converged.parse_state("h", out("@package tool ii 1.0")).components["x"]
    assert converged.parse_state("h", out("@package tool ii 1.1")).components["x"] != installed
    assert converged.parse_state("h", out("@package tool hi 1.0")).components["x"] != installed
    gone = out("dpkg-query: no packages found matching tool")
    assert converged.parse_state("h", gone).components["x"] != installed


def test_cut_short_output_is_an_error_and_dpkg_trouble_a_problem():
    assert converged.parse_state("h", "@manifest x.manifest\npackage a\n").error
    broken = converged.parse_state("h", "@manifest x.manifest\npackage a\n@audit 3\n@end\n")
    assert broken.problem and "dpkg" in broken.problem


def test_no_manifests_means_no_components():
    state = converged.parse_state("h", "@audit 0\n@end\n")
    assert state.components == {} and state.error is None


# --- decisions --------------------------------------------------------------------------------


RECORD = {"components": {"base": {"desired": "d1", "state": "s1"},
                         "docker": {"desired": "d2", "state": "s2"}}}


def test_decide_skips_only_components_whose_both_digests_match():
    state = HostState("h", {"base": "s1", "docker": "s2-drifted"})
    d = converged.decide("h", ["base", "docker"], RECORD, state, desired=None)
    assert (d.run, d.skip) == (["docker"], ["base"])
    assert "drifted" in d.reasons["docker"]


def test_decide_reasons():
    ok = HostState("h", {"base": "s1", "docker": "s2"})
    cases = [
        (None, ok, None, "no record"),
        (RECORD, None, None, "state not read"),
        (RECORD, HostState("h", error="ssh exited 255"), None, "ssh exited 255"),
        (RECORD, HostState("h", {"base": "s1"}, problem="dpkg needs repair"), None, "dpkg"),
        (RECORD, ok, {"base": "other"}, "desired state changed"),
        (RECORD, HostState("h", {}), None, "manifest is missing"),
    ]
    for record, state, desired, reason in cases:
        d = converged.decide("h", ["base"], record, state, desired)
        assert d.run == ["base"] and reason in d.reasons["base"], (record, state, desired)
    d = converged.decide("h", ["base", "docker"], RECORD, ok, {"base": "d1", "docker": "d2"})
    assert d.run == [] and d.skip == ["base", "docker"]


# --- digests ----------------------------------------------------------------------------------


def test_desired_vars_leave_out_secrets_connection_vars_and_facts():
    kept = converged.desired_vars({
        "docker_users": ["alice"], "ansible_become_password": "x", "ansible_host": "10.0.0.1",
        "ollama_api_token": "x", "my_secret": "x", "rigforge_facts": {"disk": 1},
        "groups": {"all": ["a"]},
    })
    assert kept == {"docker_users": ["alice"]}


def test_desired_digest_follows_the_components_own_roles_and_the_vars(workspace):
    def digests(**hv):
        return converged.desired_digests(workspace, ["base", "docker"], hv)

    first = digests(docker_users=[])
    assert digests(docker_users=[]) == first
    assert digests(docker_users=["alice"]) != first
    assert digests(docker_users=[], ansible_become_password="s3cret") == first
    role_file = workspace.root / "roles" / "docker" / "defaults" / "main.yml"
    role_file.write_text(role_file.read_text() + "# edited\n")
    after = digests(docker_users=[])
    assert after["docker"] != first["docker"] and after["base"] == first["base"]


# --- the record --------------------------------------------------------------------------------


def test_remember_keeps_what_ran_or_still_holds_and_forget_drops(workspace):
    state = HostState("rig1", {"base": "s1", "docker": "s2"})
    got = converged.remember(workspace, "rig1", ["base", "docker", "conda"],
                             {"base": "d1", "docker": "d2", "conda": "d3"}, state, ["base", "docker"], "fp")
    assert got == ["base", "docker"]  # conda has no manifest on the host: it must run next time
    data = converged.load(workspace)["hosts"]["rig1"]
    assert data["selected"] == ["base", "docker", "conda"] and data["fingerprint"] == "fp"
    # A later run of base only keeps docker's entry, whose desired digest is unchanged...
    got = converged.remember(workspace, "rig1", ["base", "docker"], {"base": "d1", "docker": "d2"},
                             HostState("rig1", {"base": "s1b", "docker": "s2"}), ["base"], "fp2")
    assert got == ["base", "docker"]
    # ...but not when docker's desired state changed without docker running.
    got = converged.remember(workspace, "rig1", ["base", "docker"], {"base": "d1", "docker": "NEW"},
                             HostState("rig1", {"base": "s1b", "docker": "s2"}), ["base"], "fp3")
    assert got == ["base"]
    converged.forget(workspace, ["rig1"])
    assert converged.load(workspace)["hosts"] == {}


def test_warnings_are_kept_for_converged_re_runs_and_replaced_by_a_complete_run(workspace):
    state = HostState("rig1", {"base": "s1", "docker": "s2"})
    both = ["base", "docker"]
    digests = {"base": "d1", "docker": "d2"}
    converged.remember(workspace, "rig1", both, digests, state, both, "fp", ["no headers"])
    decision = converged.decide("rig1", both, converged.load(workspace)["hosts"]["rig1"], state, None)
    assert decision.skip == both and decision.warnings == ["no headers"] and decision.warned
    # A run of docker alone cannot tell whether base's warning still holds: it is kept.
    converged.remember(workspace, "rig1", both, digests, state, ["docker"], "fp", ["docker one"])
    assert converged.load(workspace)["hosts"]["rig1"]["warnings"] == ["no headers", "docker one"]
    # A run of everything says what holds now.
    converged.remember(workspace, "rig1", both, digests, state, both, "fp", [])
    entry = converged.load(workspace)["hosts"]["rig1"]
    assert "warnings" not in entry
    assert converged.decide("rig1", both, entry, state, None).warnings == []


def test_a_broken_or_old_record_counts_as_none(workspace):
    path = workspace.state_dir / converged.RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    assert converged.load(workspace)["hosts"] == {}
    path.write_text(json.dumps({"version": 0, "hosts": {"a": {}}}))
    assert converged.load(workspace)["hosts"] == {}


# --- the fast path through deploy ---------------------------------------------------------------


def _add_hosts(workspace, *names):
    inventory = Inventory(workspace.inventory)
    for i, name in enumerate(names):
        inventory.add(Host(name, f"10.0.0.{i + 5}"))
    inventory.save()


def test_converged_hosts_are_recognised_without_prepare(workspace, monkeypatch):
    _add_hosts(workspace, "rig1", "rig2")
    fp = converged.fingerprint(workspace)
    for name in ("rig1", "rig2"):
        converged.remember(workspace, name, ["base"], {"base": "d"}, HostState(name, {"base": "s"}),
                           ["base"], fp)
    monkeypatch.setattr(converged, "read_states",
                        lambda ws, hosts: {h: HostState(h, {"base": "s"}) for h in hosts})

    def no_prepare(*a, **k):
        raise AssertionError("prepare() ran although the workspace is unchanged")

    monkeypatch.setattr(deploy, "prepare", no_prepare)
    check = deploy.check_converged(workspace, None, None)
    assert check.all_converged and check.prepared is None
    assert check.to_dict()["rig1"] == {"ran": [], "skipped": ["base"], "reasons": {},
                                       "warnings_of_last_run": []}


def test_drift_on_one_host_runs_only_that_host_and_component(workspace, monkeypatch):
    _add_hosts(workspace, "rig1", "rig2")
    all_yml = workspace.root / "inventory" / "group_vars" / "all.yml"
    all_yml.write_text(all_yml.read_text() + "rigforge_components: [base, docker]\n")
    from provision import hostvars

    hv = hostvars.resolve(workspace)
    fp = converged.fingerprint(workspace)
    for name in ("rig1", "rig2"):
        desired = converged.desired_digests(workspace, ["base", "docker"], hv[name])
        converged.remember(workspace, name, ["base", "docker"], desired,
                           HostState(name, {"base": "s", "docker": "s"}), ["base", "docker"], fp)
    states = {"rig1": HostState("rig1", {"base": "s", "docker": "s"}),
              "rig2": HostState("rig2", {"base": "s", "docker": "DRIFT"})}
    monkeypatch.setattr(converged, "read_states", lambda ws, hosts: {h: states[h] for h in hosts})
    check = deploy.check_converged(workspace, None, None)
    assert not check.all_converged and check.prepared is not None
    prepared = deploy.narrow_to_drift(check)
    assert prepared.names == ["rig2"] and prepared.narrowing == ["docker"]
    assert check.decisions["rig1"].skip == ["base", "docker"]


def test_a_changed_variable_reruns_the_components_and_refreshes_unchanged_hosts(workspace, monkeypatch):
    _add_hosts(workspace, "rig1", "rig2")
    from provision import hostvars

    # The file exists from the start: Ansible's vars plugin caches which files exist for the
    # life of the process (a CLI run is one process), not what they contain.
    host_vars = workspace.root / "inventory" / "host_vars"
    host_vars.mkdir(exist_ok=True)
    (host_vars / "rig2.yml").write_text("base_extra_packages: []\n")
    hv = hostvars.resolve(workspace)
    fp = converged.fingerprint(workspace)
    for name in ("rig1", "rig2"):
        converged.remember(workspace, name, ["base"],
                           converged.desired_digests(workspace, ["base"], hv[name]),
                           HostState(name, {"base": "s"}), ["base"], fp)
    (host_vars / "rig2.yml").write_text("base_extra_packages: [tmux]\n")
    monkeypatch.setattr(converged, "read_states",
                        lambda ws, hosts: {h: HostState(h, {"base": "s"}) for h in hosts})
    check = deploy.check_converged(workspace, None, None)
    assert check.decisions["rig1"].run == []
    assert check.decisions["rig2"].run == ["base"]
    assert "desired state changed" in check.decisions["rig2"].reasons["base"]
    # The check itself writes nothing; once the command goes ahead, rig1's record holds for
    # the edited workspace and its next check is the fast one.
    assert converged.load(workspace)["hosts"]["rig1"]["fingerprint"] == fp
    deploy.narrow_to_drift(check)  # as the CLI does before it goes ahead
    deploy.refresh_converged(check)
    assert converged.load(workspace)["hosts"]["rig1"]["fingerprint"] == converged.fingerprint(workspace)


def test_record_after_a_run_keeps_the_good_hosts_and_forgets_the_failed(workspace, monkeypatch):
    _add_hosts(workspace, "rig1", "rig2")
    prepared = deploy.prepare(workspace, None, None, probe=False)
    converged.remember(workspace, "rig2", ["base"], {"base": "x"}, HostState("rig2", {"base": "s"}),
                       ["base"], "old")
    monkeypatch.setattr(converged, "read_states",
                        lambda ws, hosts: {h: HostState(h, {"base": "s-" + h}) for h in hosts})
    result = RunResult(rc=1)
    result.hosts["rig1"] = HostResult("rig1", ok=5, changed=1)
    result.hosts["rig2"] = HostResult("rig2", failed=1)
    recorded = deploy.record_converged(prepared, result)
    assert recorded == {"rig1": ["base"]}
    hosts = converged.load(workspace)["hosts"]
    assert set(hosts) == {"rig1"} and hosts["rig1"]["components"]["base"]["state"] == "s-rig1"


def test_converged_check_does_not_import_ansible(workspace, tmp_path):
    """The fast path's point: a converged re-run never pays for loading Ansible."""
    _add_hosts(workspace, "rig1")
    fp = converged.fingerprint(workspace)
    converged.remember(workspace, "rig1", ["base"], {"base": "d"}, HostState("rig1", {"base": "s"}),
                       ["base"], fp)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from provision import converged, deploy\n"
        "from provision.converged import HostState\n"
        "from provision.workspace import open_workspace\n"
        "converged.read_states = lambda ws, hosts: {h: HostState(h, {'base': 's'}) for h in hosts}\n"
        f"check = deploy.check_converged(open_workspace(Path({str(workspace.root)!r})), None, None)\n"
        "assert check.all_converged\n"
        "print(sorted(m for m in sys.modules if m == 'ansible' or m.startswith('ansible.')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_decision_is_a_plain_record():
    d = Decision("h", ["docker"], ["base"], {"docker": "why"})
    assert (d.host, d.run, d.skip) == ("h", ["docker"], ["base"])


def test_a_converged_re_run_repeats_the_warnings_of_the_last_run(cli, workspace, monkeypatch):
    _add_hosts(workspace, "rig1")
    warning = "linux-headers-6.1.0-x is not in the apt sources of rig1"
    converged.remember(workspace, "rig1", ["base"], {"base": "d"}, HostState("rig1", {"base": "s"}),
                       ["base"], converged.fingerprint(workspace), [warning])
    monkeypatch.setattr(converged, "read_states",
                        lambda ws, hosts: {h: HostState(h, {"base": "s"}) for h in hosts})
    table = cli("provision", "--yes")
    assert table.exit_code == 0, table.output
    assert "rig1: converged (base)" in table.output
    assert f"warning rig1: {warning} (reported by the run of " in " ".join(table.output.split())
    report = json.loads(cli("provision", "--yes", "--json").output)
    assert report["run"]["hosts"][0]["warnings"] == [warning]
    assert report["converged"]["rig1"]["warnings_of_last_run"] == [warning]
