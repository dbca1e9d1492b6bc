import pytest

from provision.commands.interaction import Interaction
from provision.commands.update_drivers import update_drivers
from provision.errors import UsageError
from provision.inventory import Host, Inventory
from tests.conftest import snapshot


@pytest.mark.parametrize("branch", ["57", "latest", "5755"])
def test_a_branch_that_is_not_three_digits_is_refused(workspace, branch):
    with pytest.raises(UsageError, match="invalid --branch"):
        update_drivers(workspace, branch, None, 1, Interaction())


def test_no_host_that_selects_the_driver_is_refused_and_nothing_asked(workspace):
    inventory = Inventory(workspace.inventory)
    inventory.add(Host("rig1", "10.0.0.5"))
    inventory.save()
    before, asked = snapshot(workspace.root), []
    said = []
    with pytest.raises(UsageError, match="no host selects the nvidia_driver component"):
        update_drivers(workspace, "580", None, 1, Interaction(confirm=asked.append, say=said.append))
    assert asked == [] and snapshot(workspace.root) == before
    assert said == ["rig1: left out (it does not select nvidia_driver)"]
