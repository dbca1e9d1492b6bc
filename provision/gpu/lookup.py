"""The facts table (:mod:`provision.gpu.table`) looked up for one host: its OS row, its GPUs'
generations, the CUDA releases and NVIDIA's repo for it."""

from provision.gpu import pci, table
from provision.gpu.model import HostFacts
from provision.gpu.pci_bus import GpuDevice

#: The row used for a host that was not probed (no OS facts).
UNPROBED_DEFAULTS = "ubuntu-24.04"

OS_NAMES = {"debian": "Debian", "ubuntu": "Ubuntu"}


def cuda_releases() -> tuple[str, ...]:
    """The CUDA releases rigforge knows (cuda_version must be one of them)."""
    return table.table().cuda_releases


def cuda_min_driver(cuda_version: str) -> int | None:
    """The driver branch a CUDA release needs: ``cuda_min_driver("12.8") == 570``."""
    return table.table().cuda_min_branch(cuda_version)


def generation(arch: str) -> table.Generation | None:
    return table.table().generations.get(arch)


def open_module_architectures() -> tuple[str, ...]:
    return tuple(name for name, gen in table.table().generations.items() if gen.open)


def open_only_architectures() -> tuple[str, ...]:
    return tuple(name for name, gen in table.table().generations.items() if gen.open_only)


def version(text: str) -> tuple[int, ...]:
    """A dotted version as numbers, to compare: ``version("12.10") > version("12.9")``."""
    return tuple(int(part) for part in text.split("."))


def os_key(facts: HostFacts) -> tuple[str, str] | None:
    """("ubuntu", "24.04") or ("debian", "12"): the key of the host's OS row; None if not probed."""
    if not facts.os_id:
        return None
    release = facts.os_version or ""
    if facts.os_id == "debian":
        release = release.split(".")[0]
    return (facts.os_id, release)


def os_name(key: tuple[str, str] | None) -> str:
    if key is None:
        return "this host"
    row = os_row(key)
    if row:
        return row["name"]
    return f"{OS_NAMES.get(key[0], key[0])} {key[1]}".strip()


def os_row(key: tuple[str, str] | None) -> dict | None:
    """The table's row for an OS key ("ubuntu", "24.04"), or None for an OS rigforge lacks."""
    return table.table().os_row(f"{key[0]}-{key[1]}" if key else None)


def supported(key: tuple[str, str] | None) -> bool:
    return os_row(key) is not None


def defaults_row(key: tuple[str, str] | None) -> tuple[tuple[str, str], dict]:
    """The OS row whose defaults apply: the host's own, else its family's first, else Ubuntu 24.04."""
    row = os_row(key)
    if row is None:
        family = [r for r in table.table().os_rows.values() if key and r["id"] == key[0]]
        row = family[0] if family else table.table().os_row(UNPROBED_DEFAULTS)
    assert row is not None
    return (row["id"], row["version"]), row


def known_gpus(facts: HostFacts) -> list[tuple[GpuDevice, str]]:
    """The host's GPUs whose architecture is known, each with it."""
    pairs = []
    for gpu in facts.gpus:
        arch = gpu.architecture or pci.architecture(gpu.device_id)
        if arch:
            pairs.append((gpu, arch))
    return pairs


def labels(gpus: list[tuple[GpuDevice, str]]) -> str:
    """The GPUs' names for a message, each once."""
    names: list[str] = []
    for gpu, _ in gpus:
        if gpu.label not in names:
            names.append(gpu.label)
    return ", ".join(names)


def compute(gpu: GpuDevice) -> tuple[int, int] | None:
    """The GPU's compute capability: its chip's, else its architecture's first."""
    found = pci.chip(gpu.device_id)
    if found:
        return found.compute_capability
    arch = gpu.architecture or pci.architecture(gpu.device_id)
    return pci.ARCHITECTURE_COMPUTE_CAPABILITY.get(arch) if arch else None


def cuda_repo(os_id: str | None, os_version: str | None, arch: str | None) -> str | None:
    """NVIDIA's CUDA repo directory for a host, e.g. ``"ubuntu2404/x86_64"``; None if there is none."""
    row = os_row(os_key(HostFacts(os_id, os_version)))
    if row is None or not row.get("cuda_repo"):
        return None
    machine = row["cuda_repo_arches"].get(arch or "x86_64")
    return f"{row['cuda_repo']}/{machine}" if machine else None
