"""A wheel of the running rigforge, built from its own files, for `rigforge init --ci github`.

rigforge is on no package index: the CI workflow installs the wheel that init writes into the
workspace. The wheel has the layout of the one pyproject.toml's hatch build makes: the package
``provision/`` (without ``__pycache__``/``*.pyc``) and the shipped roles, playbooks and templates
as ``provision/_data/{roles,playbooks,templates}``. It is built the same way whether rigforge
runs from a checkout (editable) or from a wheel, and it is deterministic: sorted entries, fixed
timestamps, so the same rigforge always writes the same bytes.
"""

import base64
import csv
import hashlib
import importlib.metadata
import io
import zipfile
from pathlib import Path

from provision import __version__, assets
from provision.errors import UsageError

NAME = "rigforge"
TAG = "py3-none-any"
#: The earliest time a zip entry can carry: no build time leaks into the bytes.
EPOCH = (1980, 1, 1, 0, 0, 0)
DATA_DIRS = ("roles", "playbooks", "templates")
#: The metadata fields copied from the installed distribution, besides Name and Version.
COPIED_FIELDS = ("Summary", "License", "Requires-Python", "Provides-Extra", "Requires-Dist")


def filename(version: str = __version__) -> str:
    return f"{NAME}-{version}-{TAG}.whl"


def _skipped(relative: Path) -> bool:
    return "__pycache__" in relative.parts or relative.suffix == ".pyc"


def _tree(root: Path, prefix: str, skip_top: tuple[str, ...] = ()) -> dict[str, Path]:
    found = {}
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if path.is_file() and not _skipped(relative) and relative.parts[0] not in skip_top:
            found[f"{prefix}/{relative.as_posix()}"] = path
    return found


def files() -> dict[str, Path]:
    """Archive name -> file, for everything the wheel carries besides its .dist-info."""
    package = Path(__file__).resolve().parent  # provision/, wherever it was installed
    found = _tree(package, "provision", skip_top=("_data",))  # re-added below, from assets
    for name in DATA_DIRS:
        found |= _tree(getattr(assets, f"{name}_dir")(), f"provision/_data/{name}")
    return dict(sorted(found.items()))


def _distribution() -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution(NAME)
    except importlib.metadata.PackageNotFoundError:
        raise UsageError(
            "this rigforge is not installed as a Python distribution, so its requirements and "
            "entry points are unknown and no wheel of it can be built",
            hint="install it (`pip install -e .` in the checkout), or pass "
            "--rigforge-source git+URL@COMMIT",
        ) from None


def _metadata(dist: importlib.metadata.Distribution) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {NAME}", f"Version: {__version__}"]
    for field in COPIED_FIELDS:
        lines += [f"{field}: {value}" for value in dist.metadata.get_all(field) or []]
    return "\n".join(lines) + "\n"


def _entry_points(dist: importlib.metadata.Distribution) -> str:
    groups: dict[str, list[str]] = {}
    for ep in dist.entry_points:
        groups.setdefault(ep.group, []).append(f"{ep.name} = {ep.value}")
    return "".join(f"[{group}]\n" + "\n".join(sorted(eps)) + "\n\n" for group, eps in sorted(groups.items()))


def _wheel_file() -> str:
    return f"Wheel-Version: 1.0\nGenerator: rigforge {__version__}\nRoot-Is-Purelib: true\nTag: {TAG}\n"


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _record(entries: dict[str, bytes], record_name: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for name, data in entries.items():
        writer.writerow([name, _digest(data), len(data)])
    writer.writerow([record_name, "", ""])
    return out.getvalue().encode()


def _add(archive: zipfile.ZipFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = zipfile.ZipInfo(name, date_time=EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100000 | mode) << 16
    archive.writestr(info, data, compresslevel=9)


def build() -> bytes:
    """The wheel's bytes (name it ``filename()``)."""
    dist = _distribution()
    sources = files()
    entries = {name: path.read_bytes() for name, path in sources.items()}
    modes = {name: 0o755 if path.stat().st_mode & 0o111 else 0o644 for name, path in sources.items()}
    info = f"{NAME}-{__version__}.dist-info"
    entries[f"{info}/METADATA"] = _metadata(dist).encode()
    entries[f"{info}/WHEEL"] = _wheel_file().encode()
    entries[f"{info}/entry_points.txt"] = _entry_points(dist).encode()
    entries[f"{info}/RECORD"] = _record(entries, f"{info}/RECORD")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            _add(archive, name, data, modes.get(name, 0o644))
    return buffer.getvalue()
