"""NVIDIA Xid events in the kernel log (``journalctl -k``, ``dmesg``, ``dmesg -T``, syslog).

The driver logs each GPU error as one line::

    NVRM: Xid (PCI:0000:01:00): 79, pid=1234, name=python3, GPU has fallen off the bus.

Newer drivers add ``pid=`` and then ``name=`` (``pid='<unknown>', name=<unknown>`` when no
process is to blame); older ones print the message right after the number. What
each number means, and its usual fix, is the fact table's ``xid_events``
(:meth:`provision.gpu.table.Table.xid_event`).

Newer drivers may report a GPU that dropped off the PCIe bus with a multi-line message and no
Xid line (NVIDIA/NVSentinel#155, leptonai/gpud#1209); it is reported as Xid 79 with
``inferred`` set, unless an Xid 79 line names the same GPU.

>>> parse_kernel_xid("[ 2.5] NVRM: Xid (PCI:0000:01:00): 79, pid=0, GPU has fallen off the bus.")[0].xid
79
"""

import re
from dataclasses import dataclass

from provision.gpu.parsing import output_lines


@dataclass(frozen=True)
class XidEvent:
    """One Xid line: the GPU's PCI address as logged (``0000:01:00``), the Xid number, the
    process the driver blamed (None when not printed or ``<unknown>``), the rest of the line,
    and the time the log line carries, as printed (None when it has none)."""

    pci: str
    xid: int
    pid: int | None
    process: str | None
    message: str
    time: str | None
    inferred: bool = False


_XID = re.compile(
    r"NVRM: Xid \((?:PCI:)?(?P<pci>[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2})(?:\.\d)?\): "
    r"(?P<xid>\d+)(?:, |,?$)(?:pid=(?P<pid>'<unknown>'|\d+), )?(?:name=(?P<name>.*?), )?(?P<message>.*)$"
)
# The time a log line starts with: dmesg's seconds since boot, dmesg -T's ctime, ISO 8601
# (journalctl -o short-iso, dmesg --time-format iso), or syslog's "Mon DD HH:MM:SS" (any
# locale's month, as journalctl prints it: "mar 06", "3月 13").
_TIMES = (
    re.compile(r"^\[\s*(?P<t>\d+\.\d+)\]"),
    re.compile(r"^\[(?P<t>[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4})\]"),
    re.compile(r"^(?P<t>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[^ ]*)"),
    re.compile(r"^(?P<t>\S+ +\d{1,2} \d\d:\d\d:\d\d) "),
)
_FALLEN = re.compile(
    r"The NVIDIA GPU (?P<pci>[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2})(?:\.\d)?\s+"
    r"\(PCI ID: [^)]*\) installed in this system has\s+fallen off the bus[^\n]*"
)


def _time(prefix: str) -> str | None:
    for pattern in _TIMES:
        match = pattern.match(prefix.strip())
        if match:
            return match["t"]
    return None


def _event(line: str) -> XidEvent | None:
    match = _XID.search(line)
    if not match:
        return None
    pid = match["pid"]
    name = match["name"]
    return XidEvent(
        pci=match["pci"].lower(),
        xid=int(match["xid"]),
        pid=int(pid) if pid and pid.isdigit() else None,
        process=None if name in (None, "<unknown>") else name,
        message=match["message"].strip(),
        time=_time(line[: match.start()]),
    )


def _fallen_off_without_xid(lines: list[str], events: list[XidEvent]) -> list[XidEvent]:
    """The multi-line "The NVIDIA GPU ... has fallen off the bus" message, as Xid 79."""
    starts = [n for n, line in enumerate(lines) if "NVRM: The NVIDIA GPU " in line]
    found = []
    for start in starts:
        joined = " ".join(line.split("NVRM:", 1)[-1].strip() for line in lines[start : start + 3])
        match = _FALLEN.search("NVRM: " + joined)
        if not match:
            continue
        pci = match["pci"].lower()
        if any(e.xid == 79 and e.pci == pci for e in events):
            continue
        found.append(XidEvent(pci, 79, None, None, " ".join(match[0].split()),
                              _time(lines[start].split("NVRM:", 1)[0]), inferred=True))
    return found


def parse_kernel_xid(text: str) -> list[XidEvent]:
    """Every Xid event in a kernel log, in the log's order; [] when there is none."""
    lines = output_lines(text)
    events = [event for event in map(_event, lines) if event]
    return events + _fallen_off_without_xid(lines, events)
