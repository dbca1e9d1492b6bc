"""The progress display and the summary table, fed through the event collector."""

import io

from rich.console import Console

from provision.progress import Progress, summary_table
from provision.runner import EventCollector

HOST = "rig1"
KEYRING = "Download the CUDA keyring package and check its SHA-256."
PACKAGES = "Install the base packages."


def _event(kind, task, **res):
    return {"event": kind, "event_data": {"host": HOST, "task": task, "res": res}}


def _run(events, hosts=(HOST,)):
    """Feed ``events`` through a Progress on a pipe (the log mode); returns (output, result)."""
    stream = io.StringIO()
    with Progress("provision", list(hosts), stream=stream) as progress:
        collector = EventCollector(progress.update)
        for event in events:
            collector(event)
    return stream.getvalue(), collector.result


RETRIED = [
    _event("runner_on_start", KEYRING),
    _event("runner_retry", KEYRING, attempts=1, retries=4, failed=True,
           msg="Request failed: <urlopen error [Errno 111] Connection refused>"),
    _event("runner_retry", KEYRING, attempts=2, retries=4, failed=True, msg="Request failed",
           status_code=503, response="HTTP Error 503: Service Unavailable"),
    _event("runner_on_ok", KEYRING, changed=True),
    {"event": "playbook_on_stats", "event_data": {
        "ok": {HOST: 1}, "changed": {HOST: 1}, "failures": {}, "dark": {}, "skipped": {}}},
]


def test_each_retry_is_one_line_in_the_log_in_order():
    out, _ = _run(RETRIED)
    assert out.splitlines() == [
        f"provision: {HOST}",
        f'  {HOST}: retrying "{KEYRING}" (attempt 2 of 4): Request failed: '
        "<urlopen error [Errno 111] Connection refused>",
        f'  {HOST}: retrying "{KEYRING}" (attempt 3 of 4): Request failed: '
        "HTTP Error 503: Service Unavailable",
        f"  {HOST}: changed  {KEYRING}",
    ]


def test_messages_are_printed_verbatim_on_one_line():
    """Brackets are not rich markup (a "[/...]" used to crash the display), and a long
    message is not wrapped at the pipe's 80 columns."""
    msg = ("E: Could not open lock file [/var/lib/dpkg/lock-frontend] - open (13: Permission "
           "denied) [held] and a tail long enough to pass eighty columns")
    out, _ = _run([_event("runner_on_failed", PACKAGES, msg=msg)])
    assert f"  {HOST}: FAILED   {PACKAGES}: {msg}\n" in out


def test_the_summary_counts_retries_per_host():
    _, result = _run(RETRIED)
    stream = io.StringIO()
    Console(file=stream, width=200).print(summary_table(result, "provision"))
    header = next(line for line in stream.getvalue().splitlines() if "unreachable" in line)
    row = next(line for line in stream.getvalue().splitlines() if HOST in line)
    cells = [c.strip() for c in row.strip("│┃ ").split("│")]
    columns = [c.strip() for c in header.strip("│┃ ").replace("┃", "│").split("│")]
    assert dict(zip(columns, cells, strict=True)) == {
        "host": HOST, "result": "changed", "ok": "1", "changed": "1", "failed": "0",
        "unreachable": "0", "skipped": "0", "retries": "2"}


def test_the_live_table_shows_a_host_that_is_retrying():
    progress = Progress("provision", [HOST], stream=io.StringIO())
    collector = EventCollector()
    for event in RETRIED[:3]:
        collector(event)
    stream = io.StringIO()
    Console(file=stream, width=300).print(progress._table(collector.result))
    row = next(line for line in stream.getvalue().splitlines() if HOST in line)
    assert "retrying" in row and "(attempt 3 of 4)" in row and "[Errno 111]" not in row
    collector(RETRIED[3])
    stream = io.StringIO()
    Console(file=stream, width=300).print(progress._table(collector.result))
    row = next(line for line in stream.getvalue().splitlines() if HOST in line)
    assert "running" in row and "attempt" not in row and KEYRING in row
