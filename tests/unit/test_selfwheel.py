"""The wheel of the running rigforge that `init --ci github` writes: what it carries, that its
RECORD holds, that it is the same bytes every time, and that a rigforge installed from it
builds the same wheel again."""

import base64
import csv
import hashlib
import importlib.metadata
import io
import subprocess
import sys
import zipfile

import pytest

from provision import __version__, assets, selfwheel
from provision.errors import UsageError

INFO = f"rigforge-{__version__}.dist-info"


@pytest.fixture(scope="module")
def wheel() -> bytes:
    return selfwheel.build()


def _zip(data: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(data))


def test_it_is_named_as_pip_expects():
    assert selfwheel.filename() == f"rigforge-{__version__}-py3-none-any.whl"


def test_it_carries_the_package_and_the_shipped_content_as_the_hatch_build_lays_them_out(wheel):
    names = _zip(wheel).namelist()
    for member in ("provision/cli.py", "provision/selfwheel.py", "provision/checks/test_base.py",
                   "provision/_data/roles/base/tasks/main.yml",
                   "provision/_data/playbooks/update_drivers.yml",
                   "provision/_data/templates/github_workflow.yml.j2"):
        assert member in names, member
    roles = {p.relative_to(assets.roles_dir()).as_posix() for p in assets.roles_dir().rglob("*")
             if p.is_file() and "__pycache__" not in p.parts}
    assert {n.removeprefix("provision/_data/roles/") for n in names
            if n.startswith("provision/_data/roles/")} == roles
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert [n for n in names if not n.startswith("provision/")] == [
        f"{INFO}/METADATA", f"{INFO}/WHEEL", f"{INFO}/entry_points.txt", f"{INFO}/RECORD"]


def test_its_record_lists_every_file_with_its_digest_and_size(wheel):
    archive = _zip(wheel)
    rows = list(csv.reader(io.StringIO(archive.read(f"{INFO}/RECORD").decode())))
    assert [row[0] for row in rows] == archive.namelist()
    assert rows[-1] == [f"{INFO}/RECORD", "", ""]
    for name, digest, size in rows[:-1]:
        data = archive.read(name)
        expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert (digest, int(size)) == (f"sha256={expected}", len(data)), name


def test_its_metadata_and_entry_points_are_the_installed_distributions(wheel):
    archive, dist = _zip(wheel), importlib.metadata.distribution("rigforge")
    metadata = archive.read(f"{INFO}/METADATA").decode().splitlines()
    assert metadata[:3] == ["Metadata-Version: 2.1", "Name: rigforge", f"Version: {__version__}"]
    assert [line.removeprefix("Requires-Dist: ") for line in metadata
            if line.startswith("Requires-Dist: ")] == dist.requires
    assert f"Requires-Python: {dist.metadata['Requires-Python']}" in metadata
    assert "Tag: py3-none-any" in archive.read(f"{INFO}/WHEEL").decode()
    entry_points = archive.read(f"{INFO}/entry_points.txt").decode()
    assert "[console_scripts]\nrigforge = provision.cli:main\n" in entry_points
    assert "[pytest11]\nrigforge = provision.checks.plugin\n" in entry_points


def test_the_same_rigforge_writes_the_same_bytes(wheel):
    assert selfwheel.build() == wheel
    infos = _zip(wheel).infolist()
    assert {i.date_time for i in infos} == {selfwheel.EPOCH}
    files = [i.filename for i in infos if i.filename.startswith("provision/")]
    assert files == sorted(files)


def test_a_rigforge_run_from_its_own_wheel_builds_the_same_wheel(wheel, tmp_path):
    """The wheel is a faithful copy: installed (unpacked on sys.path), it rebuilds itself."""
    site = tmp_path / "site"
    _zip(wheel).extractall(site)
    script = ("import sys; sys.path.insert(0, sys.argv[1]); from provision import assets, selfwheel;"
              "assert str(assets.data_root()).startswith(sys.argv[1]), assets.data_root();"
              "sys.stdout.buffer.write(selfwheel.build())")
    rebuilt = subprocess.run([sys.executable, "-I", "-c", script, str(site)], cwd=tmp_path,
                             check=True, capture_output=True).stdout
    assert rebuilt == wheel


def test_a_rigforge_that_is_not_installed_cannot_build_its_wheel_and_says_what_to_do(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(UsageError, match="not installed") as err:
        selfwheel.build()
    assert "--rigforge-source git+URL@COMMIT" in err.value.hint
