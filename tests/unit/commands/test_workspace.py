from provision.commands.workspace import init


def test_init_returns_the_workspace_and_what_it_wrote(tmp_path):
    result = init(tmp_path / "ws")
    assert result.workspace.root == (tmp_path / "ws").resolve()
    assert {"ansible.cfg", "site.yml", "inventory/hosts.yml", "playbooks/base.yml"} <= set(result.written)
    again = init(tmp_path / "ws", force=True)
    assert "inventory/hosts.yml" not in again.written  # the user's files are kept
