"""rigforge's own SSH (provision/remote.py), against a real SSH server on loopback.

The real ``ssh`` client runs through the workspace's ssh_config and known_hosts, as for any
host; the server (tests/unit/loopback_sshd.py) runs each command on this machine.
"""

import time

import pytest

from provision import remote
from tests.unit.loopback_sshd import host_in, keygen, public_line


@pytest.fixture
def rig(workspace, tmp_path):
    sshd = host_in(workspace, tmp_path)
    yield sshd
    sshd.close()


def test_a_script_runs_in_one_session_and_its_output_and_status_come_back(workspace, rig):
    done = remote.run(workspace, "rig1", "echo out; printf 'bin\\377'; echo err >&2; exit 3")
    assert (done.host, done.rc, done.stdout, done.stderr) == ("rig1", 3, "out\nbin\ufffd", "err\n")
    assert done.error == "ssh exited 3: err"
    assert rig.commands == ["sh -s"] and rig.users == ["rig"] * len(rig.users)
    assert remote.run(workspace, "rig1", "true").error is None


def test_no_command_of_the_script_can_read_the_rest_of_it_as_input(workspace, rig):
    done = remote.run(workspace, "rig1", "cat\necho still here\nread x; echo \"read $?\"")
    assert done.stdout == "still here\nread 1\n"


def test_sessions_share_one_connection_unless_a_fresh_one_is_asked_for(workspace, rig):
    for _ in range(3):
        assert remote.run(workspace, "rig1", "echo hi").stdout == "hi\n"
    assert rig.connections == 1
    remote.run(workspace, "rig1", "true", fresh=True)
    remote.run(workspace, "rig1", "true", fresh=True)
    assert rig.connections == 3 and len(rig.commands) == 5


def test_a_changed_host_key_is_refused_before_anything_runs(workspace, rig, tmp_path):
    other = public_line(keygen(tmp_path / "other"))
    workspace.known_hosts.write_text(f"[127.0.0.1]:{rig.port} {other}\n")
    with pytest.raises(remote.Unreachable) as caught:
        remote.run(workspace, "rig1", "echo ran", fresh=True)
    assert caught.value.kind == "host-key-changed" and caught.value.key_type == "ED25519"
    assert str(caught.value) == "ssh exited 255: Host key verification failed."
    assert rig.commands == []


def test_an_unknown_host_key_is_refused_whatever_the_ssh_config_says(workspace, rig):
    workspace.known_hosts.write_text("")
    config = workspace.ssh_config.read_text()
    workspace.ssh_config.write_text(config.replace("StrictHostKeyChecking yes", "StrictHostKeyChecking no")
                                    .replace("BatchMode yes", "BatchMode no"))
    with pytest.raises(remote.Unreachable) as caught:
        remote.run(workspace, "rig1", "echo ran", fresh=True)
    assert caught.value.kind == "host-key-unknown" and rig.commands == []
    assert workspace.known_hosts.read_text() == ""  # nothing was learnt


def test_a_key_the_host_does_not_accept_is_refused_without_a_prompt(workspace, rig):
    rig.authorized.clear()
    with pytest.raises(remote.Unreachable) as caught:
        remote.run(workspace, "rig1", "echo ran", fresh=True)
    assert caught.value.kind == "auth" and "Permission denied" in caught.value.detail
    assert rig.commands == []


def test_overrides_win_over_the_ssh_config(workspace, rig):
    with pytest.raises(remote.Unreachable) as caught:
        remote.run(workspace, "rig1", "true", fresh=True, overrides={"Port": 1})
    assert caught.value.kind == "connect" and caught.value.detail == "Connection refused"
    remote.run(workspace, "rig1", "true", fresh=True, overrides={"User": "bob"})
    assert rig.users[-1] == "bob"


def test_a_host_that_does_not_answer_in_time_is_unreachable(workspace, tmp_path):
    slow = host_in(workspace, tmp_path, "slow", delay=10)
    try:
        started = time.monotonic()
        with pytest.raises(remote.Unreachable) as caught:
            remote.run(workspace, "slow", "true", timeout=1, fresh=True)
        assert time.monotonic() - started < 5
        assert caught.value.kind == "timeout" and caught.value.detail == "no answer within 1 s"
        assert str(caught.value).startswith("ssh failed: ") and "timed out after 1" in str(caught.value)
    finally:
        slow.close()


def test_without_an_ssh_client_the_host_is_unreachable(workspace, rig, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(remote.Unreachable) as caught:
        remote.run(workspace, "rig1", "true")
    assert caught.value.kind == "not-run" and str(caught.value).startswith("ssh failed: ")


def test_every_host_is_read_at_once_and_one_failure_stays_its_own(workspace, rig, tmp_path):
    """Each session waits until both have started: only sessions run at once meet."""
    other = host_in(workspace, tmp_path, "rig2")
    down = host_in(workspace, tmp_path, "rig3")
    down.close()
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    script = (f"mktemp {meeting}/s.XXXXXX >/dev/null; i=0; "
              f"while [ $(ls {meeting} | wc -l) -lt 2 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; "
              f"ls {meeting} | wc -l")
    try:
        answers = remote.run_all(workspace, ["rig1", "rig2", "rig3"], script, timeout=30)
    finally:
        other.close()
    assert [answers[h].stdout.strip() for h in ("rig1", "rig2")] == ["2", "2"]
    assert isinstance(answers["rig3"], remote.Unreachable) and answers["rig3"].kind == "connect"
    assert remote.run_all(workspace, [], script) == {}


def test_a_missing_ssh_config_is_written_and_an_existing_one_left_alone(workspace, rig):
    workspace.ssh_config.unlink()
    assert remote.run_all(workspace, ["rig1"], "echo hi")["rig1"].stdout == "hi\n"
    edited = workspace.ssh_config.read_text() + "# the user's\n"
    workspace.ssh_config.write_text(edited)
    remote.run_all(workspace, ["rig1"], "true")
    assert workspace.ssh_config.read_text() == edited


def test_the_command_line_insists_on_the_workspaces_known_hosts(workspace):
    argv = remote.command(workspace, "rig1", fresh=True, overrides={"IdentityFile": "/a b/key"})
    assert argv[:3] == ["ssh", "-F", str(workspace.ssh_config)]
    assert argv[-2:] == ["rig1", "sh -s"]
    options = [argv[i + 1] for i, a in enumerate(argv) if a == "-o"]
    assert options == ["StrictHostKeyChecking=yes", f"UserKnownHostsFile={workspace.known_hosts}",
                       "BatchMode=yes", "ControlMaster=no", "ControlPath=none",
                       'IdentityFile="/a b/key"']
