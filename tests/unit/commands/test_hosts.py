import json

import pytest

from provision.commands import hosts
from provision.errors import UsageError


def test_a_host_is_added_with_its_key_listed_and_removed(workspace, ssh_server):
    keys = []
    added = hosts.add(workspace, lambda key: keys.append(key) or True, "rig1", "127.0.0.1",
                      "alice", ssh_server.port, None, ["gpu"])
    assert added.groups == ["gpu"] and keys[0].fingerprint.startswith("SHA256:")
    assert [h.to_dict() for h in hosts.list_all(workspace)] == [json.loads(json.dumps(added.to_dict()))]
    assert hosts.remove(workspace, "rig1").name == "rig1"
    assert hosts.list_all(workspace) == []


def test_a_key_the_user_does_not_trust_adds_nothing(workspace, ssh_server):
    with pytest.raises(UsageError):
        hosts.add(workspace, lambda key: False, "rig1", "127.0.0.1", port=ssh_server.port)
    assert hosts.list_all(workspace) == []
