from pathlib import Path

from provision import assets

ROOT = Path(__file__).resolve().parents[2]


def test_from_a_checkout_the_shipped_files_are_at_the_top_of_the_repository():
    assert assets.data_root() == ROOT
    assert (assets.roles_dir() / "base" / "tasks" / "main.yml").is_file()
    assert (assets.playbooks_dir() / "update_drivers.yml").is_file()
    assert (assets.templates_dir() / "component_playbook.yml.j2").is_file()
    assert (assets.checks_dir() / "test_base.py").is_file()
