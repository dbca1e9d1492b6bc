"""verify's variables (provision/verify/vars.py): resolved through Ansible once, then kept
while the workspace is unchanged."""

import json
import subprocess
import sys

from provision import hostvars
from provision.inventory import Host, Inventory
from provision.verify import vars as verify_vars


def add_host(workspace, name="rig1", **hvars):
    inventory = Inventory(workspace.inventory)
    inventory.add(Host(name, "10.0.0.5"))
    inventory.save()
    host_vars = workspace.inventory.parent / "host_vars"
    host_vars.mkdir(exist_ok=True)
    (host_vars / f"{name}.yml").write_text(json.dumps(hvars))


def counting(monkeypatch):
    calls = []
    real = hostvars.resolve

    def resolve(ws):
        calls.append(ws)
        return real(ws)

    monkeypatch.setattr(hostvars, "resolve", resolve)
    return calls


def test_vars_are_resolved_once_and_reused_until_a_file_changes(workspace, monkeypatch):
    add_host(workspace, docker_users=["alice"])
    calls = counting(monkeypatch)
    first = verify_vars.host_vars(workspace)
    assert first["rig1"]["docker_users"] == ["alice"] and len(calls) == 1
    assert verify_vars.host_vars(workspace) == first and len(calls) == 1
    (workspace.inventory.parent / "host_vars" / "rig1.yml").write_text(json.dumps({"docker_users": ["bob"]}))
    assert verify_vars.host_vars(workspace)["rig1"]["docker_users"] == ["bob"] and len(calls) == 2


def test_the_kept_file_holds_no_secret_at_any_depth_and_only_its_owner_reads_it(workspace):
    add_host(workspace, ansible_become_password="s3cret-one", docker_users=["alice"],
             ollama_environment={"OLLAMA_API_TOKEN": "s3cret-two", "OLLAMA_DEBUG": "1"},
             mirrors=[{"url": "http://m", "password": "s3cret-three"}])
    hosts = verify_vars.host_vars(workspace)
    path = workspace.state_dir / verify_vars.CACHE
    text = path.read_text()
    assert "s3cret" not in text and oct(path.stat().st_mode & 0o777) == "0o600"
    assert hosts["rig1"]["ollama_environment"] == {"OLLAMA_DEBUG": "1"}
    assert hosts["rig1"]["mirrors"] == [{"url": "http://m"}]


def test_a_corrupt_kept_file_is_resolved_again(workspace, monkeypatch):
    add_host(workspace)
    verify_vars.host_vars(workspace)
    (workspace.state_dir / verify_vars.CACHE).write_text("{half")
    calls = counting(monkeypatch)
    assert "rig1" in verify_vars.host_vars(workspace) and len(calls) == 1


def test_verify_with_kept_vars_does_not_import_ansible(workspace):
    add_host(workspace)
    verify_vars.host_vars(workspace)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from provision import targets\n"
        "from provision.verify import vars as verify_vars\n"
        "from provision.workspace import open_workspace\n"
        f"ws = open_workspace(Path({str(workspace.root)!r}))\n"
        "chosen = targets.resolve(ws, None, None, verify_vars.host_vars)\n"
        "assert [t.host.name for t in chosen] == ['rig1']\n"
        "print(any(m == 'ansible' or m.startswith('ansible.') for m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"
