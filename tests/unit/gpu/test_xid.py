"""provision/gpu/xid.py: Xid events in the kernel log (recorded outputs: test_recorded_outputs.py;
what each Xid means: test_table.py)."""

from pathlib import Path

from provision.gpu.table import table
from provision.gpu.xid import parse_kernel_xid

DATA = Path(__file__).parents[1] / "data" / "gpu" / "kernel_xid"


def test_every_recorded_xid_but_the_nvlink_one_is_in_the_table():
    numbers = {event.xid for path in DATA.glob("*.txt") for event in parse_kernel_xid(path.read_text())}
    assert {13, 31, 43, 45, 48, 63, 79, 94, 119} <= numbers
    # Xid 32 (invalid push buffer stream, an old driver's) is not in the table: the check shows it by number.
    assert {n for n in numbers if table().xid_event(n) is None} == {32}


def test_an_xid_79_line_is_not_reported_twice_by_its_fallen_off_the_bus_lines():
    events = parse_kernel_xid((DATA / "dmesg_ctime_xid79_unknown_process.txt").read_text())
    assert [(e.xid, e.inferred) for e in events] == [(79, False)]


def test_time_formats_and_a_log_without_nvrm():
    assert parse_kernel_xid("") == []
    line = ("2026-09-14T20:30:27-0400 host kernel: NVRM: Xid (PCI:0000:01:00): 79, pid=0, "
            "GPU has fallen off the bus.")
    assert parse_kernel_xid(line)[0].time == "2026-09-14T20:30:27-0400"
