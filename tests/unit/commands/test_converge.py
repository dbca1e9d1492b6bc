import pytest

from provision.commands import converge
from provision.commands.interaction import Interaction
from provision.errors import DeclinedError, UsageError
from provision.inventory import Host, Inventory
from tests.conftest import snapshot


@pytest.fixture
def rig(workspace):
    inventory = Inventory(workspace.inventory)
    inventory.add(Host("rig1", "10.0.0.5"))
    inventory.save()
    return workspace


def test_bad_input_is_refused_before_anything_is_asked_or_run(rig):
    before = snapshot(rig.root)
    asked = []
    ui = Interaction(confirm=lambda q: asked.append(q) or True)
    with pytest.raises(UsageError, match="unknown component 'nope'"):
        converge.converge(rig, None, "nope", check=False, ui=ui)
    assert asked == [] and snapshot(rig.root) == before


def test_a_declined_confirmation_changes_nothing_and_says_the_choice_first(rig):
    before = snapshot(rig.root)
    said, asked = [], []
    ui = Interaction(confirm=lambda q: asked.append(q) or False, say=said.append)
    with pytest.raises(DeclinedError, match="nothing was changed"):
        converge.converge(rig, None, None, check=False, ui=ui)
    assert said == ["rig1: components base (rigforge_components lists them)"]
    assert asked == ["Provision rig1?"]
    assert snapshot(rig.root) == before


def test_a_plan_is_never_confirmed():
    class Run:
        succeeded, changed_tasks = True, []

    result = converge.ConvergeResult("plan", check=True, run=Run())
    assert result.succeeded and not result.all_converged and result.not_idempotent == []
    result.second = type("Second", (), {"succeeded": True, "changed_tasks": ["a task"]})()
    assert not result.succeeded and result.not_idempotent == ["a task"]
