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


# --- synthetic events, in the shapes ansible-runner 2.4.3 sends for ansible-core 2.19 --------

HOST = "rig1"
TASK = "Install the base packages."


def _feed(*events, on_update=None):
    collector = EventCollector(on_update)
    for kind, data in events:
        assert collector({"event": kind, "event_data": data}) is False
    return collector.result


def _stats(failures=0, dark=0, ok=1):
    counts = {"ok": {HOST: ok}, "changed": {}, "failures": {}, "dark": {}, "skipped": {},
              "processed": {HOST: 1}}
    if failures:
        counts["failures"] = {HOST: failures}
    if dark:
        counts["dark"] = {HOST: dark}
    return ("playbook_on_stats", counts)


def _failed(res, **extra):
    return ("runner_on_failed", {"host": HOST, "task": TASK, "role": "base", "res": res, **extra})


# What Ansible returns when it cannot read a module's output: the msg says only that.
UNREADABLE = {"msg": "Module result deserialization failed: No start of json char found",
              "changed": False, "exception": "(traceback unavailable)"}


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        # Recorded: the module's process SIGTERMed by a shutdown, its shell reports 143.
        ({"module_stdout": "", "module_stderr": "Terminated\n", "rc": 143}, "(rc 143; Terminated)"),
        ({"module_stdout": "", "module_stderr": "", "rc": -13}, "(rc -13)"),
        ({"module_stdout": "", "module_stderr": "Shared connection to 10.213.0.7 closed.\r\n",
          "rc": 255}, "(rc 255; Shared connection to 10.213.0.7 closed.)"),
        ({"module_stdout": "", "rc": 1,
          "module_stderr": "Connection to 10.213.0.7 closed by remote host.\r\n"},
         "(rc 1; Connection to 10.213.0.7 closed by remote host.)"),
        ({"module_stdout": "Shared connection to 10.213.0.7 closed.\r\n", "module_stderr": "",
          "rc": 143}, "(rc 143)"),
    ],
)
def test_a_module_that_died_with_its_host_counts_as_unreachable(raw, detail):
    result = _feed(("runner_on_start", {"host": HOST, "task": TASK}),
                   _failed({**UNREADABLE, **raw}), _stats(failures=1))
    host = result.hosts[HOST]
    assert (host.status, host.failed, host.unreachable) == ("unreachable", 0, 1)
    assert host.to_dict()["status"] == "unreachable"
    assert host.messages == [
        f"unreachable during {TASK!r}: the connection to the host was lost: "
        f"Module result deserialization failed: No start of json char found {detail}"
    ]
    result.rc = 2
    assert not result.succeeded


@pytest.mark.parametrize(
    ("res", "message"),
    [
        # The module answered: a command that itself exited 143 is a failure on a live host.
        ({"msg": "non-zero return code", "rc": 143, "stdout": "", "stderr": "", "cmd": ["x"]},
         "non-zero return code"),
        # A module that crashed: its traceback, not a lost connection.
        ({**UNREADABLE, "module_stdout": "", "rc": 1,
          "module_stderr": "Traceback (most recent call last):\n  File \"x\"\nValueError: boom\n"},
         "Module result deserialization failed: No start of json char found "
         "(rc 1; ValueError: boom)"),
        # Killed, but it had printed something: the host was still there to run it.
        ({**UNREADABLE, "module_stdout": "half a result", "module_stderr": "", "rc": 143},
         "Module result deserialization failed: No start of json char found (rc 143)"),
    ],
)
def test_a_module_that_failed_on_a_live_host_stays_failed(res, message):
    result = _feed(_failed(res), _stats(failures=1))
    host = result.hosts[HOST]
    assert (host.status, host.failed, host.unreachable) == ("failed", 1, 0)
    assert host.messages == [f"{TASK}: {message}"]


def test_an_ignored_failure_is_not_counted_as_unreachable():
    lost = {**UNREADABLE, "module_stdout": "", "module_stderr": "Terminated\n", "rc": 143}
    result = _feed(_failed(lost, ignore_errors=True), _stats())
    host = result.hosts[HOST]
    assert (host.status, host.failed, host.unreachable, host.messages) == ("ok", 0, 0, [])


def test_an_unreachable_host_keeps_its_count_and_message():
    res = {"msg": "Failed to connect to the host via ssh: ssh: connect to host 10.213.0.7 port 22: "
                  "No route to host", "unreachable": True, "changed": False}
    result = _feed(("runner_on_unreachable", {"host": HOST, "task": TASK, "res": res}),
                   _stats(dark=1, ok=0))
    host = result.hosts[HOST]
    assert (host.status, host.failed, host.unreachable) == ("unreachable", 0, 1)
    assert host.messages == [f"unreachable during {TASK!r}: {res['msg']}"]


DOWNLOAD = "Download the CUDA keyring package and check its SHA-256."


def _retry(attempts, retries, **res):
    return ("runner_retry", {"host": HOST, "task": DOWNLOAD, "role": "nvidia_cuda_repo",
                             "res": {"attempts": attempts, "retries": retries,
                                     "_ansible_retry": True, "changed": False, "failed": True,
                                     **res}})


def test_retries_are_noted_with_the_next_attempt_and_the_reason():
    updates = []
    flags = []

    def on_update(result, name):
        updates.append(name)
        flags.append(result.hosts[name].retrying)

    result = _feed(
        ("runner_on_start", {"host": HOST, "task": DOWNLOAD}),
        # get_url's shapes (recorded): a refused connection, then a 503.
        _retry(1, 4, msg="Request failed: <urlopen error [Errno 111] Connection refused>"),
        _retry(2, 4, msg="Request failed", status_code=503,
               response="HTTP Error 503: Service Unavailable"),
        ("runner_on_ok", {"host": HOST, "task": DOWNLOAD, "res": {"changed": False,
                                                                    "attempts": 3}}),
        _stats(),
        on_update=on_update,
    )
    host = result.hosts[HOST]
    assert host.retry_notes == [
        f'retrying "{DOWNLOAD}" (attempt 2 of 4): Request failed: '
        "<urlopen error [Errno 111] Connection refused>",
        f'retrying "{DOWNLOAD}" (attempt 3 of 4): Request failed: '
        "HTTP Error 503: Service Unavailable",
    ]
    assert flags[:4] == [False, True, True, False]  # retrying only until the task ends
    assert updates.count(HOST) >= 4
    assert host.to_dict()["retries"] == 2
    assert (host.status, host.failed) == ("ok", 0)
    assert result.to_dict()["hosts"][0]["retries"] == 2


def test_a_retried_command_says_what_it_printed():
    result = _feed(_retry(1, 4, msg="non-zero return code", rc=100, stdout="",
                          stderr="E: Failed to fetch http://deb.debian.org/pool/g/git.deb  "
                                 "Temporary failure resolving 'deb.debian.org'\n"))
    assert result.hosts[HOST].retry_notes == [
        f'retrying "{DOWNLOAD}" (attempt 2 of 4): non-zero return code: E: Failed to fetch '
        "http://deb.debian.org/pool/g/git.deb  Temporary failure resolving 'deb.debian.org'"
    ]
    assert result.hosts[HOST].retrying


def test_a_run_without_retries_reports_zero():
    result = _replay("runner_events_preflight_failed.json")
    assert [h.to_dict()["retries"] for h in result.hosts.values()] == [0]
