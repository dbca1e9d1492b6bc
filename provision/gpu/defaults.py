"""What "auto" means for a host: its OS row's defaults, the flavor and branch its GPUs allow."""

from provision.gpu import pci, table
from provision.gpu.lookup import (
    defaults_row,
    generation,
    known_gpus,
    open_module_architectures,
    os_key,
    os_row,
)
from provision.gpu.model import HostFacts, Stack
from provision.gpu.pci_bus import GpuDevice

#: Flavor rule of an OS row's defaults: open kernel modules when every GPU is Turing or
#: newer (or no GPU is known), proprietary when any GPU is older.
OPEN_FROM_TURING = "open-from-turing"

#: The first Turing device ID; an unknown ID below it is taken as older (as the role does).
FIRST_TURING_DEVICE_ID = 0x1E00


def pre_turing(gpu: GpuDevice) -> bool:
    arch = gpu.architecture or pci.architecture(gpu.device_id)
    if arch:
        return arch not in open_module_architectures()
    device_id = pci.parse_device_id(gpu.device_id)
    return device_id is not None and device_id < FIRST_TURING_DEVICE_ID


def auto_flavor(facts: HostFacts, source: str, row: dict) -> str:
    """Open on Turing and newer where the source has it (Debian 12's own packages do not)."""
    flavor = "proprietary" if any(pre_turing(gpu) for gpu in facts.gpus) else "open"
    flavors = row.get("distro_driver_flavors")
    if source == "debian" and flavors and flavor not in flavors:
        return flavors[0]
    return flavor


def default_branch(facts: HostFacts, source: str, key: tuple[str, str] | None) -> str:
    """The branch "auto" means: the distribution's own for its source, else the long-term one,
    capped by the last branch of the oldest GPU generation on the host."""
    row = os_row(key) if key else None
    if source == "debian" and row and row.get("distro_driver_branch"):
        return str(row["distro_driver_branch"])
    branch = int(table.table().default_branch)
    for _, arch in known_gpus(facts):
        gen = generation(arch)
        if gen and gen.last_branch and int(gen.last_branch) < branch and arch != "Kepler":
            branch = int(gen.last_branch)
    return str(branch)


def defaults(facts: HostFacts) -> Stack:
    """The "auto" stack for a host: its OS row of the table, the flavor chosen from its GPUs.

    A host without OS facts gets the lookup.UNPROBED_DEFAULTS row (Ubuntu 24.04).
    """
    key, row = defaults_row(os_key(facts))
    values = dict(row["defaults"])
    if values["nvidia_driver_flavor"] == OPEN_FROM_TURING:
        values["nvidia_driver_flavor"] = auto_flavor(facts, values["nvidia_driver_source"], row)
    values["nvidia_driver_branch"] = default_branch(facts, values["nvidia_driver_source"], key)
    distro = values["cuda_source"] == "distro"
    values["cuda_version"] = str(row["distro_cuda"]) if distro else table.table().default_cuda
    values["cudnn_source"] = "cuda-repo"
    values["cudnn_version"] = table.table().default_cudnn
    return Stack(**values)
