"""The host's OS (/etc/os-release), memory (/proc/meminfo) and free disk (``df -Pk``)."""

import re
from dataclasses import dataclass

from provision.gpu.parsing import ParseError, output_lines


@dataclass(frozen=True)
class OsRelease:
    """The fields of /etc/os-release rigforge decides on (Proxmox VE reports plain Debian)."""

    id: str | None
    version_id: str | None
    codename: str | None
    pretty_name: str | None
    id_like: tuple[str, ...] = ()


def _os_release_value(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        raw = raw[1:-1]
        if raw.startswith("'"):
            return raw
        return re.sub(r"\\(.)", r"\1", raw)
    return raw


def parse_os_release(text: str) -> OsRelease:
    """KEY=value lines (quoted or not); comments and blank lines are skipped."""
    values: dict[str, str] = {}
    for line in output_lines(text):
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        values[key.strip()] = _os_release_value(raw)
    if "ID" not in values and "NAME" not in values:
        raise ParseError("no ID= or NAME= line: not an os-release file")
    return OsRelease(
        id=values.get("ID", "").lower() or None,
        version_id=values.get("VERSION_ID") or None,
        codename=values.get("VERSION_CODENAME") or values.get("UBUNTU_CODENAME") or None,
        pretty_name=values.get("PRETTY_NAME") or None,
        id_like=tuple(values.get("ID_LIKE", "").split()),
    )


# --- /proc/meminfo, df -Pk ---------------------------------------------------------------


def parse_meminfo_total_mib(text: str) -> int:
    """``MemTotal:  16314120 kB`` -> 15931 (MiB, rounded down)."""
    match = re.search(r"^MemTotal:\s+(\d+)\s*kB", "\n".join(output_lines(text)), re.MULTILINE)
    if not match:
        raise ParseError("no MemTotal line in /proc/meminfo")
    return int(match.group(1)) // 1024


def parse_df_avail_gib(text: str) -> float:
    """Available space of the one filesystem in ``df -Pk PATH`` output, in GiB (1 decimal)."""
    rows = [line.split() for line in output_lines(text) if line.strip()]
    if len(rows) < 2 or rows[0][:1] != ["Filesystem"]:
        raise ParseError("not 'df -Pk' output")
    fields = rows[-1]
    if len(fields) < 6 or not fields[3].isdigit():
        raise ParseError(f"cannot read the available column of: {' '.join(fields)!r}")
    return round(int(fields[3]) / 1024 / 1024, 1)
