import configparser

import pytest
import yaml

from provision import registry, workspace
from provision.errors import UsageError, WorkspaceError
from tests.conftest import snapshot

# The known-hosts setting with any separator ssh accepts ("=" or spaces).
INSECURE = ("host_key_checking = False", "StrictHostKeyChecking=no", "StrictHostKeyChecking no",
            "UserKnownHostsFile=/dev/null", "UserKnownHostsFile /dev/null")


def test_init_writes_a_plain_ansible_project(tmp_path):
    ws, _ = workspace.init(tmp_path / "ws")
    for name in ("ansible.cfg", "site.yml", ".gitignore", "inventory/hosts.yml",
                 "inventory/group_vars/all.yml", "inventory/group_vars/sandbox.yml",
                 "known_hosts", "roles/base/tasks/main.yml", "playbooks/base.yml"):
        assert (ws.root / name).is_file(), name
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ws.ansible_cfg)
    assert cfg["defaults"]["host_key_checking"] == "True"
    assert cfg["defaults"]["roles_path"] == "roles"
    assert "UserKnownHostsFile=known_hosts" in cfg["ssh_connection"]["ssh_args"]
    assert "StrictHostKeyChecking=yes" in cfg["ssh_connection"]["ssh_args"]
    assert cfg["ssh_connection"]["pipelining"] == "True"
    site = yaml.safe_load((ws.root / "site.yml").read_text())
    assert [play["ansible.builtin.import_playbook"] for play in site] == [
        f"playbooks/{name}.yml" for name in registry.names()
    ], "one playbook per component, in stack order"
    assert yaml.safe_load((ws.root / "inventory/group_vars/all.yml").read_text()) == {
        "rigforge_components": "auto"
    }, "the stack is chosen from each host's facts unless the user lists it"
    assert ".rigforge/" in (ws.root / ".gitignore").read_text()


def test_generated_files_never_disable_host_key_checking(tmp_path):
    ws, _ = workspace.init(tmp_path / "ws")
    for path in ws.root.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            for bad in INSECURE:
                assert bad not in text, f"{bad!r} in {path}"


def test_init_refuses_an_existing_workspace_and_changes_nothing(tmp_path):
    ws, _ = workspace.init(tmp_path / "ws")
    before = snapshot(ws.root)
    with pytest.raises(WorkspaceError, match="already holds") as err:
        workspace.init(ws.root)
    assert "--force" in err.value.hint
    assert snapshot(ws.root) == before


def test_force_refreshes_generated_files_and_keeps_user_data(tmp_path):
    ws, _ = workspace.init(tmp_path / "ws")
    ws.inventory.write_text(ws.inventory.read_text() + "# mine\n")
    ws.known_hosts.write_text("10.0.0.5 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI\n")
    (ws.root / "site.yml").write_text("broken")
    (ws.root / "roles/base/tasks/main.yml").write_text("broken")
    workspace.init(ws.root, force=True)
    assert ws.inventory.read_text().endswith("# mine\n")
    assert "10.0.0.5" in ws.known_hosts.read_text()
    assert "import_playbook" in (ws.root / "site.yml").read_text()
    assert (ws.root / "roles/base/tasks/main.yml").read_text() != "broken"
    assert not list(ws.root.glob(".roles.*")), "staging directories must be cleaned up"


def test_a_rigforge_source_without_ci_is_refused_and_nothing_is_written(tmp_path):
    with pytest.raises(UsageError, match="without --ci") as err:
        workspace.init(tmp_path / "ws", rigforge_source="wheel")
    assert "--ci github" in err.value.hint
    assert not (tmp_path / "ws").exists()


def test_init_ci_github_writes_the_workflow_and_the_rigforge_it_installs(tmp_path):
    _, written = workspace.init(tmp_path / "ws", ci="github")
    assert {".github/workflows/rigforge.yml", "ci/rigforge-source"} <= set(written)
    assert any(name.startswith("ci/rigforge-") and name.endswith(".whl") for name in written)
    again = snapshot(tmp_path / "ws")
    with pytest.raises(WorkspaceError, match="already holds"):
        workspace.init(tmp_path / "ws", ci="github")
    assert snapshot(tmp_path / "ws") == again


def test_open_workspace_without_one_says_how_to_create_it(tmp_path):
    with pytest.raises(WorkspaceError, match="no rigforge workspace") as err:
        workspace.open_workspace(tmp_path)
    assert "rigforge init" in err.value.hint
