"""``rigforge init``: a workspace, and what was written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from provision import workspace as ws_mod


@dataclass
class InitResult:
    workspace: ws_mod.Workspace
    written: list[str]


def init(directory: Path, force: bool = False, ci: str | None = None,
         rigforge_source: str | None = None) -> InitResult:
    return InitResult(*ws_mod.init(directory, force=force, ci=ci, rigforge_source=rigforge_source))
