"""What the health checks conclude from a GPU host's parsed outputs: each problem with its cause
and fix, as pure functions of the parsers' results (the checks in
provision/checks/test_nvidia_driver_health.py run the commands and fail with these).

Sources, checked 2026-12-08:
- a pending row remap takes effect at the next GPU reset, and unaffected work keeps running; a
  remapping failure is judged by NVIDIA's RMA policy:
  https://docs.nvidia.com/deploy/a100-gpu-mem-error-mgmt/error-recovery-and-response-flags.html
- a page pending retirement needs a driver reload (a GPU reset or a reboot):
  https://docs.nvidia.com/deploy/dynamic-page-retirement/visibility.html
- an uncorrectable error's recovery: terminate the GPU's processes and ``nvidia-smi -r``, or
  reboot (the same page);
- ``pcie.link.gen.current`` "may be reduced when the GPU is not in use" (nvidia-smi
  --help-query-gpu), and recorded idle cards show it (tests/unit/data/gpu/nvidia_smi_health/
  l40s_eight_gpus_pcie_idle: Gen 1 of 4): only the link's width is judged on a verify, which
  runs on an idle rig.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from provision.gpu.nvidia_smi_health import SmiHealth, SmiRemappedRows
from provision.gpu.xid import XidEvent

#: Catalog categories whose events are the application's, not the card's.
APPLICATION = "application"
#: The catalog's immediate action for an event that needs none.
NO_ACTION = "IGNORE"
XID_CATALOG = "https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html"
RESET = "stop the GPU's processes, then `sudo nvidia-smi -r -i {gpu}`, or reboot (`sudo reboot`)"


@dataclass(frozen=True)
class Problem:
    cause: str
    fix: str


def _gpu(row: SmiHealth | SmiRemappedRows) -> str:
    index = getattr(row, "index", None)
    name = f"GPU {index}" if index is not None else "GPU"
    where = row.pci_bus_id or row.uuid
    return f"{name} ({where})" if where else name


def _which(row: SmiHealth | SmiRemappedRows) -> str:
    """The -i argument for nvidia-smi that names this GPU."""
    index = getattr(row, "index", None)
    return str(index) if index is not None else (row.uuid or row.pci_bus_id or "0")


def xid_findings(events: Iterable[XidEvent], catalog) -> tuple[list[Problem], list[str]]:
    """(problems, notes): an Xid of the card (memory, bus, firmware, GSP, hang, NVLink) needing
    an action is a problem; an application's Xid, or one NVIDIA says needs no action at once,
    is a note (a warning on a passing check). Each event once per GPU and number."""
    problems, notes, seen = [], [], set()
    for event in events:
        if (event.pci, event.xid) in seen:
            continue
        seen.add((event.pci, event.xid))
        info = catalog(event.xid)
        where = f"Xid {event.xid} on PCI:{event.pci}" + (f" at {event.time}" if event.time else "")
        if info is None:
            problems.append(Problem(f"{where} ({event.message.strip()}): not in rigforge's Xid catalog",
                                    f"look it up in NVIDIA's Xid catalog ({XID_CATALOG})"))
        elif info.category == APPLICATION or info.immediate == NO_ACTION:
            notes.append(f"{where}: {info.meaning} ({info.category}). {info.fix}")
        else:
            problems.append(Problem(f"{where}: {info.meaning} ({info.category})", info.fix))
    return problems, notes


def link_problems(rows: Iterable[SmiHealth]) -> list[Problem]:
    """A PCIe link narrower than the card and slot allow (x4 or x8 of x16): a riser, a slot
    wired narrower, lanes shared with an M.2 drive, or a card not seated."""
    return [
        Problem(f"{_gpu(r)} runs its PCIe link at x{r.pcie_width_current} of x{r.pcie_width_max}"
                f" (Gen {r.pcie_gen_current} of {r.pcie_gen_max})",
                "power off and reseat the card in a slot wired x16 (check the board's manual for lanes "
                "shared with M.2 drives, and any riser cable), then `rigforge verify --tier health`")
        for r in rows
        if r.pcie_width_current is not None and r.pcie_width_max is not None
        and r.pcie_width_current < r.pcie_width_max
    ]


def memory_problems(rows: Iterable[SmiHealth], remapped: Iterable[SmiRemappedRows]) -> list[Problem]:
    """Uncorrectable ECC errors since the driver loaded, pages waiting to be retired, and row
    remaps pending or failed."""
    found = []
    for r in rows:
        if r.ecc_uncorrected_volatile:
            found.append(Problem(
                f"{_gpu(r)} had {r.ecc_uncorrected_volatile} uncorrectable ECC errors since the driver "
                "loaded",
                RESET.format(gpu=_which(r)) + "; if they recur, the card needs service"))
        if r.retired_pages_pending:
            found.append(Problem(f"{_gpu(r)} has memory pages waiting to be retired",
                                 RESET.format(gpu=_which(r)) + " (the pages retire when the driver reloads)"))
    for r in remapped:
        if r.failure:
            found.append(Problem(f"{_gpu(r)} failed to remap a memory row",
                                 "the card is past NVIDIA's row-remapping RMA threshold: contact its vendor"))
        elif r.pending:
            found.append(Problem(f"{_gpu(r)} has a memory row remap pending",
                                 RESET.format(gpu=_which(r))
                                 + " (the row is remapped at the next GPU reset)"))
    return found


def persistence_problems(rows: Iterable[SmiHealth], wanted: bool) -> list[Problem]:
    if not wanted:
        return []
    return [
        Problem(f"{_gpu(r)} is not in persistence mode (nvidia_driver_persistence_mode is true)",
                "`sudo systemctl restart nvidia-persistenced rigforge-gpu-settings`, or re-apply the "
                "driver: `rigforge provision --components nvidia_driver`")
        for r in rows if r.persistence_mode is False
    ]


def power_problems(rows: list[SmiHealth], configured: dict) -> list[Problem]:
    """Each configured power limit (key: GPU index or UUID) against the card's current limit."""
    found = []
    for key, watts in sorted((configured or {}).items(), key=lambda kv: str(kv[0])):
        row = next((r for r in rows if str(key) in (str(r.index), r.uuid)), None)
        if row is None:
            found.append(Problem(
                f"nvidia_driver_power_limit_watts names GPU {key}, which this host does not have",
                "name a GPU index or UUID from `nvidia-smi -L` in nvidia_driver_power_limit_watts"))
        elif row.power_limit_w is None:
            found.append(Problem(f"{_gpu(row)} reports no power limit, {watts} W is configured",
                                 "this card does not let its power limit be set: remove it from "
                                 "nvidia_driver_power_limit_watts"))
        elif abs(row.power_limit_w - float(watts)) >= 1:
            found.append(Problem(
                f"{_gpu(row)} power limit is {row.power_limit_w:g} W, {watts} W is configured",
                "`sudo systemctl restart rigforge-gpu-settings` (and `journalctl -u rigforge-gpu-settings` "
                "if it fails), or re-apply the driver: `rigforge provision --components nvidia_driver`"))
    return found


#: nvidia-smi's failure kinds (provision/gpu/nvidia_smi.py) with the driver module loaded.
_SMI_FAILURES = {
    "version_mismatch": ("the loaded driver module and its libraries differ (an update replaced the "
                         "libraries under the running module)", "reboot the host: `sudo reboot`"),
    "no_devices": ("the driver module is loaded but no GPU initialised (fallen off the bus?)",
                   "reboot the host (`sudo reboot`); if it recurs, check the card's power cables and "
                   "seating"),
    "no_driver": ("nvidia-smi cannot talk to the driver", "reboot the host: `sudo reboot`"),
}


def smi_failure(output: str, rc: int) -> Problem:
    """The problem a failed nvidia-smi shows, in its own words where rigforge knows no better."""
    from provision.gpu.nvidia_smi import parse_nvidia_smi_failure

    failure = parse_nvidia_smi_failure(output)
    if failure is not None:
        cause, fix = _SMI_FAILURES[failure.kind]
        return Problem(f"nvidia-smi failed: {cause}", fix)
    said = output.strip().splitlines()
    return Problem(f"nvidia-smi failed: {said[0] if said else f'exit status {rc}'}",
                   "reboot the host (`sudo reboot`), then `rigforge doctor`")


def summary(problems: list[Problem]) -> tuple[str, str]:
    """One check's failure: the causes, and the fixes (each once), joined."""
    return "; ".join(p.cause for p in problems), "; ".join(dict.fromkeys(p.fix for p in problems))
