import subprocess

import pytest

from provision import known_hosts
from provision.errors import HostFailedError, UsageError
from provision.known_hosts import HostKey


def test_fetch_reads_the_servers_key_and_fingerprint_matches_ssh_keygen(ssh_server):
    key = known_hosts.fetch("127.0.0.1", ssh_server.port)
    expected = HostKey.parse(ssh_server.pub_file.read_text())
    assert key == expected
    keygen = subprocess.run(
        ["ssh-keygen", "-lf", str(ssh_server.pub_file)], capture_output=True, text=True, check=True
    ).stdout
    assert key.fingerprint in keygen


def test_fetch_from_a_closed_port_fails_clearly():
    with pytest.raises(HostFailedError, match=r"cannot reach 127\.0\.0\.1:1"):
        known_hosts.fetch("127.0.0.1", 1, timeout=2)


def test_record_replace_and_forget(tmp_path):
    path = tmp_path / "known_hosts"
    a = HostKey("ssh-ed25519", "AAAAC3NzaC1lZDI1NTE5AAAAIA==")
    known_hosts.record(path, "10.0.0.5", 22, [a])
    known_hosts.record(path, "10.0.0.6", 2222, [a])
    assert path.read_text().splitlines() == [
        "10.0.0.5 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==",
        "[10.0.0.6]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==",
    ]
    assert path.stat().st_mode & 0o777 == 0o600
    assert known_hosts.recorded(path, "10.0.0.6", 2222) == [a]
    known_hosts.forget(path, "10.0.0.5", 22)
    assert known_hosts.recorded(path, "10.0.0.5", 22) == []
    assert known_hosts.recorded(path, "10.0.0.6", 2222) == [a]


def test_a_changed_key_is_refused(tmp_path):
    path = tmp_path / "known_hosts"
    old = HostKey("ssh-ed25519", "AAAAC3NzaC1lZDI1NTE5AAAAIA==")
    new = HostKey("ssh-ed25519", "AAAAC3NzaC1lZDI1NTE5AAAAIB==")
    known_hosts.record(path, "10.0.0.5", 22, [old])
    with pytest.raises(UsageError, match=r"but known_hosts records"):
        known_hosts.check_consistent(path, "10.0.0.5", 22, [new])
    known_hosts.check_consistent(path, "10.0.0.5", 22, [old])
