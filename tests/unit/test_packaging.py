"""The roles, playbooks and templates must be found from a wheel, not only from a checkout."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_carries_the_ansible_content_and_init_works_from_it(tmp_path):
    pytest.importorskip("hatchling")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(ROOT)],
        check=True, capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("rigforge-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for member in ("provision/_data/roles/base/tasks/main.yml",
                   "provision/_data/roles/base/meta/argument_specs.yml",
                   "provision/_data/playbooks/update_drivers.yml",
                   "provision/_data/templates/component_playbook.yml.j2",
                   "provision/_data/templates/ansible.cfg.j2",
                   "provision/checks/test_base.py"):
        assert member in names, member
    assert any(n.endswith("entry_points.txt") for n in names)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path;"
        "from provision import assets, workspace;"
        "assert assets.data_root() == Path(sys.argv[1]) / 'provision' / '_data', assets.data_root();"
        "workspace.init(Path(sys.argv[2]))"
    )
    subprocess.run(
        [sys.executable, "-I", "-c", script, str(site), str(tmp_path / "ws")],
        check=True, capture_output=True,
    )
    assert (tmp_path / "ws/roles/base/defaults/main.yml").is_file()
    assert (tmp_path / "ws/playbooks/base.yml").is_file()


def test_test_modules_have_unique_import_names():
    """pytest imports a test module under its basename, prefixed by the packages (folders with
    __init__.py) it sits in; two modules with the same import name stop the whole collection
    ("import file mismatch"). Mirrored folders (tests/unit/commands) are packages for that reason."""
    from collections import Counter
    from pathlib import Path

    def import_name(path: Path) -> str:
        parts, folder = [path.stem], path.parent
        while (folder / "__init__.py").is_file():
            parts.insert(0, folder.name)
            folder = folder.parent
        return ".".join(parts)

    root = Path(__file__).resolve().parents[1]
    names = Counter(import_name(p) for p in root.rglob("test_*.py"))
    assert [n for n, count in names.items() if count > 1] == []
