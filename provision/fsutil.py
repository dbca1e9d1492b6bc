"""Atomic file and directory writes: a killed rigforge never leaves a half-written file."""

import os
import shutil
import tempfile
from pathlib import Path


def write_text(path: Path, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` via a temp file in the same directory and ``os.replace``."""
    write_bytes(path, text.encode("utf-8"), mode)


def write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically, as ``write_text`` does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def replace_tree(source: Path, dest: Path) -> None:
    """Make ``dest`` an exact copy of ``source``; readers see the old tree or the new one."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    new = staging / "new"
    shutil.copytree(source, new, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    old = staging / "old"
    try:
        if dest.exists():
            os.replace(dest, old)
        os.replace(new, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
