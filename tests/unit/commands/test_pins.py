from types import SimpleNamespace

import pytest

from provision import pins
from provision.commands import pins as command
from provision.commands.interaction import Interaction
from provision.errors import DeclinedError, UsageError


def _pin(old, new):
    return SimpleNamespace(component="ollama", version="0.33.3", arch="amd64", old=old, new=new)


@pytest.fixture
def planned(monkeypatch):
    found, written = [], []
    monkeypatch.setattr(pins, "plan", lambda ws, components, version: found)
    monkeypatch.setattr(pins, "write", lambda ws, chosen: written.append(chosen) or ws.root / "all.yml")
    return found, written


def test_an_unknown_component_is_refused_before_anything_is_shown(workspace):
    shown = []
    with pytest.raises(UsageError, match="pins exist for"):
        command.update(workspace, ("nope",), None, ui=Interaction(), show=shown.append)
    assert shown == []


def test_values_are_shown_then_written_only_once_confirmed(workspace, planned):
    found, written = planned
    found.append(_pin("a" * 64, "b" * 64))
    shown = []
    with pytest.raises(DeclinedError):
        command.update(workspace, (), None, ui=Interaction(confirm=lambda q: False), show=shown.append)
    assert shown == [found] and written == []
    result = command.update(workspace, (), None, ui=Interaction(), show=shown.append)
    assert result.path == workspace.root / "all.yml" and written == [found]


def test_nothing_to_change_asks_nothing(workspace, planned):
    planned[0].append(_pin("a" * 64, "a" * 64))
    result = command.update(workspace, (), None, ui=Interaction(confirm=lambda q: pytest.fail(q)),
                            show=lambda found: None)
    assert result.path is None and result.changed == []
