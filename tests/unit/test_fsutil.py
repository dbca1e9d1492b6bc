import os

import pytest

from provision import fsutil


def test_a_write_is_atomic_with_its_mode_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "sub" / "known_hosts"
    fsutil.write_text(path, "one\n", mode=0o600)
    fsutil.write_text(path, "two\n", mode=0o600)
    assert path.read_text() == "two\n" and oct(path.stat().st_mode & 0o777) == "0o600"
    assert os.listdir(path.parent) == ["known_hosts"]


def test_bytes_are_written_as_they_are(tmp_path):
    path = tmp_path / "ci" / "rigforge.whl"
    fsutil.write_bytes(path, b"PK\x03\x04\r\n\x00")
    assert path.read_bytes() == b"PK\x03\x04\r\n\x00" and oct(path.stat().st_mode & 0o777) == "0o644"
    assert os.listdir(path.parent) == ["rigforge.whl"]


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "hosts.yml"
    fsutil.write_text(path, "old\n")
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        fsutil.write_text(path, "new\n")
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["hosts.yml"]


def test_a_tree_is_replaced_by_an_exact_copy(tmp_path):
    source, dest = tmp_path / "src", tmp_path / "dest"
    (source / "a").mkdir(parents=True)
    (source / "a" / "x.yml").write_text("x")
    (source / "__pycache__").mkdir()
    (dest / "stale").mkdir(parents=True)
    fsutil.replace_tree(source, dest)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == ["a", "a/x.yml"]
    assert sorted(os.listdir(tmp_path)) == ["dest", "src"]
