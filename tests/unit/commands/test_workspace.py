from provision.commands.workspace import init


def test_init_returns_the_workspace_and_what_it_wrote(tmp_path):
    result = init(tmp_path / "ws")
    assert result.workspace.root == (tmp_path / "ws").resolve()
    assert {"ansible.cfg", "site.yml", "inventory/hosts.yml", "playbooks/base.yml"} <= set(result.written)
    again = init(tmp_path / "ws", force=True)
    assert "inventory/hosts.yml" not in again.written  # the user's files are kept


def test_init_passes_the_ci_workflow_and_its_rigforge_source_on(tmp_path):
    source = "git+https://example.org/rigforge.git@" + "a" * 40
    result = init(tmp_path / "ws", ci="github", rigforge_source=source)
    assert ".github/workflows/rigforge.yml" in result.written
    assert source in (tmp_path / "ws/ci/rigforge-source").read_text()
