import socket

from provision.commands.probe import probe
from provision.inventory import Host, Inventory
from tests.conftest import snapshot


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_host_is_reported_failed_and_nothing_is_recorded(workspace):
    inventory = Inventory(workspace.inventory)
    inventory.add(Host("rig1", "127.0.0.1", port=_closed_port()))
    inventory.save()
    before = snapshot(workspace.root / "inventory")
    report = probe(workspace, ("rig1",), record=True)
    assert report.failed
    (entry,) = report.to_list()
    assert entry["host"] == "rig1" and entry["facts"] is None and entry["error"]
    assert snapshot(workspace.root / "inventory") == before
