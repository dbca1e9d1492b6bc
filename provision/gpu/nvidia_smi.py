"""What ``nvidia-smi`` prints: the probe's query, the plain table, and its failures.

>>> parse_nvidia_smi_query("0, NVIDIA A100, 535.104.05, 40960, 00000000:01:00.0")[0].memory_total_mib
40960
"""

import csv
import re
from dataclasses import dataclass

from provision.gpu.commands import NVIDIA_SMI_QUERY_FIELDS
from provision.gpu.parsing import ParseError, output_lines


@dataclass(frozen=True)
class SmiGpu:
    """One row of the NVIDIA_SMI_QUERY output."""

    index: int | None
    name: str
    driver_version: str | None
    memory_total_mib: int | None
    pci_bus_id: str | None


def _smi_value(value: str) -> str | None:
    value = value.strip()
    return None if value in ("", "N/A", "[N/A]", "[Not Supported]") else value


def smi_int(value: str | None) -> int | None:
    if value is None:
        return None
    number = value.split()[0]
    if not number.isdigit():
        raise ParseError(f"not a number in nvidia-smi output: {value!r}")
    return int(number)


def parse_nvidia_smi_query(text: str) -> list[SmiGpu]:
    """Rows of NVIDIA_SMI_QUERY (``csv,noheader,nounits``).

    A header line (``--format=csv``) is also understood: columns are then matched by name,
    units such as ``46068 MiB`` are dropped, and missing columns read as None.
    """
    rows = [row for row in csv.reader(output_lines(text), skipinitialspace=True)
            if any(c.strip() for c in row)]
    if not rows:
        return []
    fields: tuple[str, ...] = NVIDIA_SMI_QUERY_FIELDS
    if "name" in (cell.strip() for cell in rows[0]) or rows[0][0].strip().startswith("index"):
        fields = tuple(cell.split(" [")[0].strip() for cell in rows[0])
        rows = rows[1:]
    if "name" not in fields:
        raise ParseError("nvidia-smi query output has no name column")
    gpus = []
    for row in rows:
        if len(row) != len(fields):
            raise ParseError(f"expected {len(fields)} columns from nvidia-smi, got: {', '.join(row)!r}")
        cell = {field: _smi_value(value) for field, value in zip(fields, row, strict=True)}
        gpus.append(
            SmiGpu(
                index=smi_int(cell.get("index")),
                name=cell["name"] or "",
                driver_version=cell.get("driver_version"),
                memory_total_mib=smi_int(cell.get("memory.total")),
                pci_bus_id=cell.get("pci.bus_id"),
            )
        )
    return gpus


@dataclass(frozen=True)
class SmiTable:
    """What the plain ``nvidia-smi`` table says (for display; prefer the query for data)."""

    driver_version: str
    cuda_version: str | None
    gpu_names: tuple[str, ...]
    memory_total_mib: tuple[int, ...]
    width: int  # of the table's borders: 79, 89 or 91 columns


_SMI_HEADER = re.compile(
    r"NVIDIA-SMI\s+(?P<smi>\S+)\s+(?:Driver|KMD) Version:\s+(?P<driver>\S+)"
    r"(?:\s+CUDA(?: UMD)? Version:\s+(?P<cuda>\S+))?"
)
_SMI_GPU_ROW = re.compile(
    r"^\|\s*(?P<index>\d+)\s+(?P<name>.*?)\s+(?:On|Off|N/A)\s*\|\s*"
    r"(?:[0-9A-Fa-f]{4,8}:)?[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7]"
)
_SMI_MEMORY = re.compile(r"(?P<used>\d+)MiB\s*/\s*(?P<total>\d+)MiB")


def parse_nvidia_smi_table(text: str) -> SmiTable:
    """The header and GPU rows of the ``nvidia-smi`` table, in any layout seen so far.

    79 columns up to 470, 89 at 535, 91 from 550; ``|---`` or ``+---`` under the header;
    from 610 ``KMD Version`` / ``CUDA UMD Version`` replace ``Driver`` / ``CUDA Version``.
    """
    lines = output_lines(text)
    header = next((m for m in map(_SMI_HEADER.search, lines) if m), None)
    if header is None:
        raise ParseError("no NVIDIA-SMI header line in the output")
    borders = [len(line.rstrip()) for line in lines if line.startswith(("+-", "|="))]
    names: list[str] = []
    totals: list[int] = []
    for number, line in enumerate(lines):
        row = _SMI_GPU_ROW.match(line)
        if not row:
            continue
        names.append(row["name"])
        following = lines[number + 1] if number + 1 < len(lines) else ""
        memory = _SMI_MEMORY.search(following)
        if memory:
            totals.append(int(memory["total"]))
    cuda = header["cuda"]
    return SmiTable(
        driver_version=header["driver"],
        cuda_version=None if cuda in (None, "N/A") else cuda,
        gpu_names=tuple(names),
        memory_total_mib=tuple(totals),
        width=max(borders, default=0),
    )


@dataclass(frozen=True)
class SmiFailure:
    """Why nvidia-smi failed: kind is "no_driver", "version_mismatch" or "no_devices"."""

    kind: str
    nvml_library_version: str | None = None


_NVML_VERSION = re.compile(r"NVML library version:\s*(\S+)")
# The apostrophe is sometimes a typographic one in pasted reports.
_NO_DRIVER = re.compile(r"couldn.t communicate with the NVIDIA driver")


def parse_nvidia_smi_failure(output: str) -> SmiFailure | None:
    """Classify nvidia-smi's failure text; None when the output is not one of the known failures."""
    text = "\n".join(output_lines(output))
    if _NO_DRIVER.search(text):
        return SmiFailure("no_driver")
    if "Driver/library version mismatch" in text:
        version = _NVML_VERSION.search(text)
        return SmiFailure("version_mismatch", version.group(1) if version else None)
    if "No devices were found" in text:
        return SmiFailure("no_devices")
    return None


def classify_nvidia_smi_failure(output: str) -> str | None:
    """ "no_driver" (module not loaded), "version_mismatch" (reboot needed after an update),
    "no_devices" (module loaded, GPU did not initialise), or None."""
    failure = parse_nvidia_smi_failure(output)
    return failure.kind if failure else None
