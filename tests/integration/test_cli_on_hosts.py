"""The real ``rigforge`` command against a workspace with a live sandbox host:
bad input, secrets and generated files."""

import os
import secrets
import subprocess
import sys

import pytest

from provision.inventory import Host, Inventory
from tests.conftest import snapshot
from tests.integration.conftest import rigforge

pytestmark = pytest.mark.integration

# The known-hosts setting with any separator ssh accepts ("=" or spaces).
INSECURE = ("host_key_checking = False", "StrictHostKeyChecking=no", "StrictHostKeyChecking no",
            "UserKnownHostsFile=/dev/null", "UserKnownHostsFile /dev/null")


def test_generated_files_never_disable_host_key_checking(rig):
    for path in rig.workspace.rglob("*"):
        if path.is_file() and "artifacts" not in path.parts:
            text = path.read_text(errors="replace")
            for bad in INSECURE:
                assert bad not in text, f"{bad!r} in {path}"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["host", "add", "bad name", "--address", "10.0.0.5"], "invalid host name"),
        (["host", "add", "rig2", "--address", "10.0.0.256"], "invalid address"),
        (["host", "add", "rig2", "--address", "10.0.0.5", "--port", "0"], "invalid port"),
        (["sandbox", "up", "UPPER"], "invalid"),
        (["provision", "--yes", "--components", "base,warp"], "unknown component 'warp'"),
        (["verify", "--limit", "nowhere"], "matches no host"),
    ],
)
def test_bad_input_exits_2_and_leaves_every_file_alone(rig, args, needle):
    before = snapshot(rig.workspace)
    proc = rigforge(rig.workspace, *args, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert needle in proc.stderr and "hint:" in proc.stderr
    assert snapshot(rig.workspace) == before


def test_duplicate_host_exits_2(rig):
    before = snapshot(rig.workspace)
    proc = rigforge(rig.workspace, "host", "add", rig.name, "--address", "10.0.0.5", check=False)
    assert proc.returncode == 2 and "already in" in proc.stderr
    proc = rigforge(rig.workspace, "sandbox", "up", rig.name, check=False)
    assert proc.returncode == 2 and "already in" in proc.stderr
    assert snapshot(rig.workspace) == before


def test_corrupt_hosts_yml_exits_2(rig):
    inventory = rig.workspace / "inventory" / "hosts.yml"
    good = inventory.read_text()
    inventory.write_text(good + "  broken: [\n")
    try:
        before = snapshot(rig.workspace)
        proc = rigforge(rig.workspace, "provision", "--yes", check=False)
        assert proc.returncode == 2 and "not valid YAML" in proc.stderr
        assert snapshot(rig.workspace) == before
    finally:
        inventory.write_text(good)


def test_become_password_is_prompted_for_and_never_written(rig):
    """A sudo user that needs a password: --ask-become-pass works, and the secret
    appears nowhere in output, the workspace or ansible-runner's artifacts."""
    sentinel = "rf-sentinel-" + secrets.token_hex(8)
    alice = f"{rig.name}-alice"
    rig.ssh(
        "sudo -n useradd -m -s /bin/bash alice"
        f" && echo 'alice:{sentinel}' | sudo -n chpasswd"
        " && sudo -n install -d -m 700 -o alice -g alice /home/alice/.ssh"
        " && sudo -n install -m 600 -o alice -g alice ~/.ssh/authorized_keys /home/alice/.ssh/"
        " && echo 'alice ALL=(ALL) ALL' | sudo -n tee /etc/sudoers.d/alice >/dev/null"
    )
    inventory = Inventory(rig.workspace / "inventory" / "hosts.yml")
    me = inventory.get(rig.name)
    inventory.add(Host(alice, me.address, "alice", me.port, me.key, []))
    inventory.save()
    try:
        without = rigforge(rig.workspace, "provision", "--yes", "--limit", alice, check=False)
        assert without.returncode == 1
        proc = rigforge(
            rig.workspace, "-vvvv", "provision", "--yes", "--limit", alice, "--ask-become-pass",
            input=sentinel + "\n", check=False,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert sentinel not in proc.stdout + proc.stderr
        leaks = [
            str(p) for p in rig.workspace.rglob("*")
            if p.is_file() and sentinel.encode() in p.read_bytes()
        ]
        assert leaks == []
    finally:
        rigforge(rig.workspace, "host", "remove", alice)


def test_vaulted_become_password_is_used_and_never_written(rig, tmp_path):
    """The same user story with the password in an ansible-vault encrypted host_vars file:
    neither the become password nor the vault password appears in output, the workspace or
    ansible-runner's artifacts, even at -vvvv."""
    sentinel = "rf-sentinel-" + secrets.token_hex(8)
    vault_password = "rf-vault-" + secrets.token_hex(8)
    bob = f"{rig.name}-bob"
    rig.ssh(
        "id bob >/dev/null 2>&1 || sudo -n useradd -m -s /bin/bash bob"
        f" && echo 'bob:{sentinel}' | sudo -n chpasswd"
        " && sudo -n install -d -m 700 -o bob -g bob /home/bob/.ssh"
        " && sudo -n install -m 600 -o bob -g bob ~/.ssh/authorized_keys /home/bob/.ssh/"
        " && echo 'bob ALL=(ALL) ALL' | sudo -n tee /etc/sudoers.d/bob >/dev/null"
    )
    # Outside the workspace, where a user keeps it; its bytes are searched for all the same.
    password_file = tmp_path / "vault-password"
    password_file.write_text(vault_password + "\n")
    password_file.chmod(0o600)
    encrypted = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-vault"), "encrypt_string",
         "--vault-password-file", str(password_file), "--stdin-name", "ansible_become_password"],
        input=sentinel, capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    assert "$ANSIBLE_VAULT" in encrypted and sentinel not in encrypted
    host_vars_dir = rig.workspace / "inventory" / "host_vars"
    made_dir = not host_vars_dir.exists()
    host_vars_dir.mkdir(exist_ok=True)
    host_vars = host_vars_dir / f"{bob}.yml"
    inventory = Inventory(rig.workspace / "inventory" / "hosts.yml")
    me = inventory.get(rig.name)
    inventory.add(Host(bob, me.address, "bob", me.port, me.key, []))
    inventory.save()
    artifacts = rig.workspace / ".rigforge" / "runner" / "artifacts"
    try:
        without = rigforge(rig.workspace, "provision", "--yes", "--limit", bob, check=False)
        assert without.returncode == 1, "bob's sudo must need the password"
        host_vars.write_text("---\n" + encrypted)
        before = set(artifacts.iterdir())
        proc = rigforge(
            rig.workspace, "-vvvv", "provision", "--yes", "--limit", bob,
            "--vault-password-file", str(password_file), check=False,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        # The run's artifacts are there to search, with Ansible's -vvvv output in them.
        (run_dir,) = set(artifacts.iterdir()) - before
        assert "ESTABLISH SSH CONNECTION FOR USER: bob" in (run_dir / "stdout").read_text()
        for secret in (sentinel, vault_password):
            assert secret not in proc.stdout + proc.stderr
            leaks = [
                str(p) for p in rig.workspace.rglob("*")
                if p.is_file() and secret.encode() in p.read_bytes()
            ]
            assert leaks == [], secret
    finally:
        host_vars.unlink(missing_ok=True)
        if made_dir:
            host_vars_dir.rmdir()
        rigforge(rig.workspace, "host", "remove", bob)


def test_probe_records_facts_and_refuses_a_changed_host_key(rig, tmp_path):
    import json
    import subprocess

    inventory = rig.workspace / "inventory" / "hosts.yml"
    proc = rigforge(rig.workspace, "probe", rig.name, "--json")
    (entry,) = json.loads(proc.stdout)
    facts = entry["facts"]
    assert (facts["os"]["id"], facts["os"]["version"], facts["arch"]) == ("debian", "12", "x86_64")
    assert facts["secure_boot"]["enforcing"] is False
    assert entry["recommended"]["nvidia_driver_source"] == "debian"
    assert entry["recommended"]["cuda_version"] == "11.8"
    saved = Inventory(inventory)
    assert "rigforge_facts:" in inventory.read_text()
    assert "# rigforge keeps your comments" in inventory.read_text()
    assert saved.get(rig.name) is not None

    known = rig.workspace / "known_hosts"
    original = known.read_text()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")],
                   check=True)
    other = (tmp_path / "k.pub").read_text().split()[1]
    lines = [
        " ".join([*line.split()[:2], other]) if line.split()[1:2] == ["ssh-ed25519"] else line
        for line in original.splitlines()
    ]
    known.write_text("\n".join(lines) + "\n")
    try:
        bad = rigforge(rig.workspace, "probe", rig.name, "--no-record", check=False)
        assert bad.returncode == 1
        assert "host key" in (bad.stdout + bad.stderr)
    finally:
        known.write_text(original)
