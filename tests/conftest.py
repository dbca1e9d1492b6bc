from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _no_ambient_workspace(monkeypatch):
    """Tests choose their workspace explicitly; a developer's environment must not leak in."""
    monkeypatch.delenv("RIGFORGE_WORKSPACE", raising=False)
    monkeypatch.delenv("RIGFORGE_COMPONENTS", raising=False)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every path under ``root`` with its bytes: proves a failed command changed nothing."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else b"<dir>")
        for p in sorted(root.rglob("*"))
    }
