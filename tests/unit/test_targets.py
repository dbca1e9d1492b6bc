import pytest

from provision import targets
from provision.errors import UsageError
from provision.inventory import Host, Inventory


@pytest.fixture
def fleet(two_rigs):
    inventory = Inventory(two_rigs.inventory)
    inventory.add(Host("lab3", "10.0.0.7", groups=["lab"]))
    inventory.save()
    return two_rigs


def test_a_limit_matches_names_patterns_and_groups_in_inventory_order(fleet):
    inventory = Inventory(fleet.inventory)
    assert [h.name for h in targets.parse_limit(inventory, None)] == ["rig1", "rig2", "lab3"]
    assert [h.name for h in targets.parse_limit(inventory, "lab, rig*")] == ["rig1", "rig2", "lab3"]
    assert [h.name for h in targets.parse_limit(inventory, "rig2")] == ["rig2"]


def test_a_limit_that_matches_nothing_names_the_hosts_and_groups(fleet):
    with pytest.raises(UsageError, match="matches no host") as err:
        targets.parse_limit(Inventory(fleet.inventory), "gpu*")
    assert "rig1, rig2, lab3" in err.value.hint and "lab" in err.value.hint


def test_an_empty_inventory_says_how_to_add_a_host(workspace):
    with pytest.raises(UsageError, match="no hosts in") as err:
        targets.parse_limit(Inventory(workspace.inventory), None)
    assert "rigforge host add" in err.value.hint


def test_each_target_gets_its_components_and_the_reason(fleet):
    chosen = targets.resolve(fleet, "rig1", ["base"])
    assert [(t.host.name, t.components, t.reason, t.auto) for t in chosen] == [
        ("rig1", ["base"], "rigforge_components lists them", False)]
