"""provision.sandbox.host: the state record, host keys, the nspawn command line, pid checks,
and how the wait for SSH reports a host that does not come up."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provision.errors import SandboxError
from provision.sandbox import host as host_mod
from provision.sandbox.host import (
    HostState,
    SandboxHost,
    _is_zombie,
    leader_of,
    nspawn_alive,
    nspawn_argv,
    read_host_keys,
    wait_for_ssh,
)


def test_host_state_round_trips_and_ignores_unknown_fields(tmp_path):
    state = HostState("rig1", "10.213.0.11", "rfs11", "rigforge-rig1", "/img", nspawn_pid=7)
    path = tmp_path / "state.json"
    state.save(path)
    assert HostState.load(path) == state
    assert path.stat().st_mode & 0o777 == 0o600
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "future_field": 1}))
    assert HostState.load(path) == state


def test_host_state_records_its_release_and_old_records_are_bookworm(tmp_path):
    path = tmp_path / "state.json"
    state = HostState("rig1", "10.213.0.11", "rfs11", "rigforge-rig1", "/img/trixie-0", release="trixie")
    state.save(path)
    assert json.loads(path.read_text())["release"] == "trixie"
    assert HostState.load(path) == state and HostState.load(path).release == "trixie"
    data = json.loads(path.read_text())
    del data["release"]  # written before releases were selectable
    path.write_text(json.dumps(data))
    assert HostState.load(path).release == "bookworm"


def test_host_keys_are_read_from_disk_without_comments(tmp_path):
    ssh = tmp_path / "etc/ssh"
    ssh.mkdir(parents=True)
    (ssh / "ssh_host_ecdsa_key.pub").write_text("ecdsa-sha2-nistp256 AAAAE2 root@rig1\n")
    (ssh / "ssh_host_ed25519_key.pub").write_text("ssh-ed25519 AAAAC3 root@rig1\n")
    keys = read_host_keys(tmp_path)
    assert keys == ("ssh-ed25519 AAAAC3", "ecdsa-sha2-nistp256 AAAAE2")
    host = SandboxHost("rig1", "10.213.0.11", 22, "rig", Path("/k"), keys, True, 5)
    assert host.known_hosts() == ("10.213.0.11 ssh-ed25519 AAAAC3\n10.213.0.11 ecdsa-sha2-nistp256 AAAAE2\n")
    other_port = SandboxHost("rig1", "10.213.0.11", 2222, "rig", Path("/k"), keys[:1], True, 5)
    assert other_port.known_hosts() == "[10.213.0.11]:2222 ssh-ed25519 AAAAC3\n"


def test_a_truncated_host_key_file_is_skipped(tmp_path):
    ssh = tmp_path / "etc/ssh"
    ssh.mkdir(parents=True)
    (ssh / "ssh_host_ed25519_key.pub").write_text("ssh-ed25519\n")  # sshd was killed mid-write
    (ssh / "ssh_host_rsa_key.pub").write_text("ssh-rsa AAAAB3\n")
    assert read_host_keys(tmp_path) == ("ssh-rsa AAAAB3",)
    assert read_host_keys(tmp_path / "missing") == ()


def test_nspawn_command_line():
    argv = nspawn_argv("rig1", Path("/sb/merged"), "rigforge-rig1", Path("/sb/docker"))
    assert argv[:4] == ["systemd-nspawn", "--boot", "--register=no", "--keep-unit"]
    assert "--machine=rig1" in argv and "--directory=/sb/merged" in argv
    assert "--network-namespace-path=/run/netns/rigforge-rig1" in argv
    assert "--bind=/sb/docker:/var/lib/docker" in argv
    assert argv[-1] == "--console=read-only"


# --- pids ---------------------------------------------------------------------------------


def test_a_pid_is_trusted_only_if_it_is_our_nspawn():
    assert not nspawn_alive(None, "rig1")
    assert not nspawn_alive(0, "rig1")
    assert not nspawn_alive(os.getpid(), "rig1")  # alive, but python, not systemd-nspawn


def test_an_exited_child_is_reaped_and_not_alive():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    host_mod._CHILDREN[child.pid] = child
    assert not nspawn_alive(child.pid, "rig1")
    assert child.pid not in host_mod._CHILDREN


def test_zombies_and_vanished_pids_count_as_dead():
    assert not _is_zombie(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        for _ in range(100):  # exited but not yet waited for: a zombie
            if _is_zombie(child.pid):
                break
            time.sleep(0.05)
        assert _is_zombie(child.pid)
    finally:
        child.wait()
    assert _is_zombie(child.pid)  # reaped: no /proc entry at all


def test_a_process_without_a_pid_1_child_has_no_leader():
    assert leader_of(os.getpid()) is None
    assert leader_of(2**22 + 1) is None  # above the kernel's pid limit: never exists


# --- waiting for SSH ----------------------------------------------------------------------


def _host(address="192.0.2.1", port=22, keys=()):
    return SandboxHost("rig1", address, port, "rig", Path("/k"), keys, True, None)


def test_a_host_that_stops_while_booting_is_reported_with_its_console(tmp_path):
    console = tmp_path / "console.log"
    console.write_text("Welcome to Debian\nFailed to mount /sys/fs/cgroup\n")
    with pytest.raises(SandboxError, match="rig1 stopped while booting") as err:
        wait_for_ssh(_host, lambda: False, console, timeout=5)
    assert "Failed to mount /sys/fs/cgroup" in err.value.message
    assert str(console) in err.value.hint


def test_a_host_whose_ssh_never_answers_times_out_naming_the_login(tmp_path, monkeypatch):
    monkeypatch.setattr(host_mod, "_port_open", lambda address, port: False)
    with pytest.raises(SandboxError) as err:
        wait_for_ssh(_host, lambda: True, tmp_path / "console.log", timeout=0.3)
    assert err.value.message == "rig1 did not answer on ssh://rig@192.0.2.1 within 0.3 s"


def test_an_open_port_without_host_keys_on_disk_is_not_up_yet(tmp_path, monkeypatch):
    """sshd listens before a login can be trusted: no keys read yet means wait, not log in."""
    monkeypatch.setattr(host_mod, "_port_open", lambda address, port: True)
    monkeypatch.setattr(host_mod, "ssh_login_works", lambda host: pytest.fail("logged in without keys"))
    with pytest.raises(SandboxError, match="did not answer"):
        wait_for_ssh(_host, lambda: True, tmp_path / "console.log", timeout=0.3)
    keyed = _host(keys=("ssh-ed25519 AAAA",))
    monkeypatch.setattr(host_mod, "ssh_login_works", lambda host: True)
    assert wait_for_ssh(lambda: keyed, lambda: True, tmp_path / "console.log", timeout=0.3) is keyed


def test_the_port_check_says_whether_something_listens():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        assert host_mod._port_open("127.0.0.1", port)
    assert not host_mod._port_open("127.0.0.1", port)
