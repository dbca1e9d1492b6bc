import pytest

from provision.errors import UsageError
from provision.inventory import (
    Host,
    Inventory,
    validate_address,
    validate_group,
    validate_name,
    validate_port,
)


def test_round_trip_keeps_user_comments(workspace):
    text = workspace.inventory.read_text().replace(
        "\nall:\n", "\n# my lab, do not lose this\nall:  # top\n"
    )
    workspace.inventory.write_text(text)
    inv = Inventory(workspace.inventory)
    inv.add(Host("rig1", "10.0.0.5", "alice", 22, None, ["gpu"]))
    inv.save()
    inv = Inventory(workspace.inventory)
    inv.add(Host("rig2", "rig2.lan", None, 2222, "~/.ssh/id_ed25519", []))
    inv.save()
    saved = workspace.inventory.read_text()
    assert "# my lab, do not lose this" in saved
    assert "# top" in saved
    assert "# rigforge keeps your comments" in saved
    hosts = {h.name: h for h in Inventory(workspace.inventory).hosts()}
    assert hosts["rig1"] == Host("rig1", "10.0.0.5", "alice", 22, None, ["gpu"])
    assert hosts["rig2"].port == 2222 and hosts["rig2"].key == "~/.ssh/id_ed25519"


def test_remove_drops_host_from_groups(workspace):
    inv = Inventory(workspace.inventory)
    inv.add(Host("rig1", "10.0.0.5", groups=["gpu", "lab"]))
    inv.remove("rig1")
    inv.save()
    assert Inventory(workspace.inventory).hosts() == []
    with pytest.raises(UsageError, match="no host 'rig1'"):
        inv.remove("rig1")


def test_hosts_listed_only_in_a_group_are_found(workspace):
    workspace.inventory.write_text(
        "all:\n  children:\n    gpu:\n      hosts:\n        rig9:\n          ansible_host: 10.1.1.9\n"
    )
    (host,) = Inventory(workspace.inventory).hosts()
    assert (host.name, host.address, host.groups) == ("rig9", "10.1.1.9", ["gpu"])


def test_duplicate_host_is_refused(workspace):
    inv = Inventory(workspace.inventory)
    inv.add(Host("rig1", "10.0.0.5"))
    with pytest.raises(UsageError, match="already in"):
        inv.add(Host("rig1", "10.0.0.6"))


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("all:\n  hosts:\n    rig1: [\n", "not valid YAML at line"),
        ("- a\n- b\n", "top level is not a mapping"),
        ("all:\n  hosts: [rig1]\n", "`all.hosts` is not a mapping"),
        ("webservers: {}\n", "unexpected top-level keys"),
        ("all:\n  children:\n    gpu: 3\n", "group 'gpu' is not a mapping"),
    ],
)
def test_corrupt_inventory_is_a_clear_error(workspace, text, needle):
    workspace.inventory.write_text(text)
    with pytest.raises(UsageError, match=needle) as err:
        Inventory(workspace.inventory)
    assert err.value.hint


@pytest.mark.parametrize("name", ["rig1", "gpu-box_2", "R"])
def test_valid_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "1rig", "rig 1", "rig;rm", "a" * 64, "rig.lan", "-x"])
def test_invalid_names(name):
    with pytest.raises(UsageError, match="invalid host name"):
        validate_name(name)


@pytest.mark.parametrize("address", ["10.0.0.5", "::1", "fe80::1", "rig1.lan", "rig1"])
def test_valid_addresses(address):
    assert validate_address(address) == address


@pytest.mark.parametrize("address", ["", "10.0.0.999", "300.1.1.1", "bad host", "-x.lan", "a..b"])
def test_invalid_addresses(address):
    with pytest.raises(UsageError, match="invalid address"):
        validate_address(address)


@pytest.mark.parametrize("port", [0, -1, 65536, True])
def test_invalid_ports(port):
    with pytest.raises(UsageError, match="invalid port"):
        validate_port(port)


@pytest.mark.parametrize("group", ["all", "ungrouped", "GPU", "1x", "a-b"])
def test_invalid_groups(group):
    with pytest.raises(UsageError, match="invalid group"):
        validate_group(group)
