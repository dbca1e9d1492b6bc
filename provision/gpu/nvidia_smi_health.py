"""nvidia-smi's health fields: PCIe link, ECC, retired pages and remapped rows, persistence
and power limits (``--query-gpu`` and ``--query-remapped-rows``, CSV).

Both parsers take the field names the query asked for (:data:`NVIDIA_SMI_HEALTH_FIELDS`,
:data:`NVIDIA_SMI_REMAPPED_ROWS_FIELDS`), as ``--format=csv,noheader,nounits`` prints no
header; output with a header (plain ``--format=csv``, the usual recording) is read by its
column names instead, with units (``700.00 W``) dropped and fields it lacks read as None.
A value in brackets (``[N/A]``, ``[Not Supported]``, ``[Unknown Error]``) reads as None.

``pcie.link.gen.current`` drops at idle (nvidia-smi --help-query-gpu: "may be reduced when the
GPU is not in use"): compare widths, or generations under load.
"""

import csv
import re
from dataclasses import dataclass

from provision.gpu.commands import NVIDIA_SMI_HEALTH_FIELDS, NVIDIA_SMI_REMAPPED_ROWS_FIELDS
from provision.gpu.nvidia_smi import smi_int as _int  # one reading of an nvidia-smi number
from provision.gpu.parsing import ParseError, output_lines


@dataclass(frozen=True)
class SmiHealth:
    """One GPU's row of NVIDIA_SMI_HEALTH; None where the GPU or query did not report it."""

    index: int | None
    uuid: str | None
    pci_bus_id: str | None
    pcie_gen_current: int | None
    pcie_gen_max: int | None
    pcie_width_current: int | None
    pcie_width_max: int | None
    ecc_uncorrected_volatile: int | None
    retired_pages_pending: bool | None
    persistence_mode: bool | None
    power_limit_w: float | None
    enforced_power_limit_w: float | None
    default_power_limit_w: float | None


@dataclass(frozen=True)
class SmiRemappedRows:
    """One GPU's row of NVIDIA_SMI_REMAPPED_ROWS (Ampere and newer datacenter GPUs)."""

    pci_bus_id: str | None
    uuid: str | None
    correctable: int | None
    uncorrectable: int | None
    pending: bool | None
    failure: bool | None


_FIELD = re.compile(r"^[a-z][A-Za-z0-9_.]*$")
# Other spellings of the same field (nvidia-smi --help-query-gpu: "pci.bus_id" or "gpu_bus_id").
_ALIASES = {"gpu_bus_id": "pci.bus_id", "gpu_uuid": "uuid"}
_FLAGS = {"enabled": True, "yes": True, "disabled": False, "no": False}


def _rows(text: str, fields: tuple[str, ...]) -> list[dict[str, str | None]]:
    """The CSV rows as {field: value}, by the header when there is one, else by ``fields``."""
    rows = [row for row in csv.reader(output_lines(text), skipinitialspace=True)
            if any(cell.strip() for cell in row)]
    if not rows:
        return []
    header = [cell.split(" [")[0].strip() for cell in rows[0]]
    if all(_FIELD.match(name) for name in header):
        fields, rows = tuple(header), rows[1:]
    fields = tuple(_ALIASES.get(name, name) for name in fields)
    found = []
    for row in rows:
        if len(row) != len(fields):
            raise ParseError(f"expected {len(fields)} columns from nvidia-smi, got: {', '.join(row)!r}")
        found.append({name: _value(cell) for name, cell in zip(fields, row, strict=True)})
    return found


def _value(cell: str) -> str | None:
    cell = cell.strip()
    return None if not cell or cell == "N/A" or (cell.startswith("[") and cell.endswith("]")) else cell


def _watts(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.split()[0])
    except ValueError:
        raise ParseError(f"not a power in nvidia-smi output: {value!r}") from None


def _flag(value: str | None) -> bool | None:
    if value is None:
        return None
    if value.lower() not in _FLAGS:
        raise ParseError(f"not Enabled/Disabled or Yes/No in nvidia-smi output: {value!r}")
    return _FLAGS[value.lower()]


def parse_nvidia_smi_health(text: str, fields: tuple[str, ...] = NVIDIA_SMI_HEALTH_FIELDS) -> list[SmiHealth]:
    """Rows of NVIDIA_SMI_HEALTH (or of any ``--query-gpu`` CSV with a header)."""
    return [
        SmiHealth(
            index=_int(cell.get("index")),
            uuid=cell.get("uuid"),
            pci_bus_id=cell.get("pci.bus_id"),
            pcie_gen_current=_int(cell.get("pcie.link.gen.current")),
            pcie_gen_max=_int(cell.get("pcie.link.gen.max")),
            pcie_width_current=_int(cell.get("pcie.link.width.current")),
            pcie_width_max=_int(cell.get("pcie.link.width.max")),
            ecc_uncorrected_volatile=_int(cell.get("ecc.errors.uncorrected.volatile.total")),
            retired_pages_pending=_flag(cell.get("retired_pages.pending")),
            persistence_mode=_flag(cell.get("persistence_mode")),
            power_limit_w=_watts(cell.get("power.limit")),
            enforced_power_limit_w=_watts(cell.get("enforced.power.limit")),
            default_power_limit_w=_watts(cell.get("power.default_limit")),
        )
        for cell in _rows(text, fields)
    ]


def parse_nvidia_smi_remapped_rows(
    text: str, fields: tuple[str, ...] = NVIDIA_SMI_REMAPPED_ROWS_FIELDS
) -> list[SmiRemappedRows]:
    """Rows of NVIDIA_SMI_REMAPPED_ROWS (``--query-remapped-rows``, with or without header)."""
    return [
        SmiRemappedRows(
            pci_bus_id=cell.get("pci.bus_id"),
            uuid=cell.get("uuid"),
            correctable=_int(cell.get("remapped_rows.correctable")),
            uncorrectable=_int(cell.get("remapped_rows.uncorrectable")),
            pending=_flag(cell.get("remapped_rows.pending")),
            failure=_flag(cell.get("remapped_rows.failure")),
        )
        for cell in _rows(text, fields)
    ]
