"""The event collector, fed with events recorded from real ansible-runner runs.

Recorded against a Debian 12 test host with the base role: one run where a second host
was unreachable, one where preflight failed on disk space.
"""

import json
from pathlib import Path

import pytest

from provision.runner import EventCollector

DATA = Path(__file__).parent / "data"


def _replay(name: str, on_update=None):
    collector = EventCollector(on_update)
    for event in json.loads((DATA / name).read_text()):
        assert collector(event) is False, "events must not be kept on disk"
    return collector.result


def test_converge_with_an_unreachable_host():
    updates = []
    result = _replay(
        "runner_events_converge_one_unreachable.json", lambda r, h: updates.append(h)
    )
    mine, ghost = result.hosts["mine"], result.hosts["ghost"]
    assert (mine.status, mine.ok, mine.changed, mine.failed) == ("changed", 15, 1, 0)
    assert ghost.status == "unreachable" and ghost.unreachable == 1
    assert "Failed to connect to the host via ssh" in ghost.messages[0]
    assert [t.task for t in result.changed_tasks] == [
        "Keep the NVIDIA and CUDA packages out of unattended upgrades."
    ]
    assert "linux-headers-6.18.44-fc-v657 is not in the apt sources" in mine.warnings[0]
    assert {"mine", "ghost"} <= set(updates)
    result.rc = 4
    assert not result.succeeded


def test_preflight_failure_is_reported_with_its_message():
    result = _replay("runner_events_preflight_failed.json")
    mine = result.hosts["mine"]
    assert mine.status == "failed"
    assert mine.messages == [
        "Assert that the root filesystem has enough free space.: Only 78.1 GiB are free on / of "
        "mine, but 100000 GiB are required (base_min_free_disk_gb). Free some space, grow the "
        "disk, or lower base_min_free_disk_gb."
    ]
    assert result.changed_tasks == []


@pytest.mark.parametrize("rc", [0, 2])
def test_success_needs_rc_zero_and_no_failed_host(rc):
    result = _replay("runner_events_preflight_failed.json")
    result.rc = rc
    assert not result.succeeded
