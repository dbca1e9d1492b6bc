"""``rigforge pins update``: fetch the vendors' checksums, show them, write them once confirmed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from provision.commands.interaction import Interaction
from provision.errors import DeclinedError
from provision.workspace import Workspace


@dataclass
class PinsResult:
    found: list = field(default_factory=list)
    changed: list = field(default_factory=list)
    #: Where they were written (None: every value was already pinned).
    path: Path | None = None

    def to_dict(self) -> dict:
        return {"pins": [p.to_dict() for p in self.found]}


def update(workspace: Workspace, components: tuple[str, ...], version: str | None, *,
           ui: Interaction, show: Callable[[list], None]) -> PinsResult:
    """Every check runs before ``show``; nothing is written unless ``ui.confirm`` agrees."""
    from provision import pins

    found = pins.plan(workspace, list(components) or list(pins.COMPONENTS), version)
    show(found)
    result = PinsResult(found, [p for p in found if p.old != p.new])
    if not result.changed:
        return result
    if not ui.confirm(f"Write {len(result.changed)} pins to inventory/group_vars/all.yml?"):
        raise DeclinedError("not confirmed: nothing was written")
    result.path = pins.write(workspace, found)
    return result
