"""Digests that kept results depend on: the workspace's (converged record, verify's variables)
and rigforge's own code (verify's kept results)."""

import hashlib
from pathlib import Path

from provision import converged, fingerprint
from provision.verify import vars as verify_vars


def test_fingerprint_follows_the_workspace_but_not_rigforge_state(workspace):
    first = fingerprint.workspace_fingerprint(workspace)
    (workspace.state_dir / "whatever.json").write_text("{}")
    assert fingerprint.workspace_fingerprint(workspace) == first
    all_yml = workspace.root / "inventory" / "group_vars" / "all.yml"
    all_yml.write_text(all_yml.read_text() + "docker_users: [bob]\n")
    assert fingerprint.workspace_fingerprint(workspace) != first


def test_the_converged_record_and_verifys_variables_are_kept_under_the_same_fingerprint(workspace):
    assert converged.fingerprint(workspace) == fingerprint.workspace_fingerprint(workspace)
    assert verify_vars.workspace_fingerprint is fingerprint.workspace_fingerprint


def test_the_code_fingerprint_covers_the_checks():
    assert any(p.name == "test_docker.py" for p in fingerprint._PACKAGE.rglob("*.py"))
    assert len(fingerprint.code_fingerprint()) == 64


def digest_of(root: Path, rel: str, suffix: str = "") -> str:
    h = hashlib.sha256()
    fingerprint.hash_tree(h, root, Path(rel), suffix)
    return h.hexdigest()


def test_a_tree_digest_follows_names_and_bytes_but_not_compiled_python(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "a.py").write_text("x = 1\n")
    (tmp_path / "d" / "sub" / "b.yml").write_text("b: 1\n")
    first = digest_of(tmp_path, "d")
    (tmp_path / "d" / "__pycache__").mkdir()
    (tmp_path / "d" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "d" / "c.pyc").write_bytes(b"\0")
    assert digest_of(tmp_path, "d") == first
    (tmp_path / "d" / "sub" / "b.yml").rename(tmp_path / "d" / "sub" / "c.yml")
    assert digest_of(tmp_path, "d") != first  # same bytes, another name


def test_a_tree_digest_can_keep_to_one_kind_of_file_and_a_missing_path_adds_nothing(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.py").write_text("x = 1\n")
    only_py = digest_of(tmp_path, "d", ".py")
    (tmp_path / "d" / "notes.txt").write_text("not code\n")
    assert digest_of(tmp_path, "d", ".py") == only_py
    assert digest_of(tmp_path, "d") != only_py
    assert digest_of(tmp_path, "nowhere") == hashlib.sha256().hexdigest()
