"""What holds for every GPU component: a probed host, a supported OS, GPUs rigforge knows."""

from provision import registry
from provision.gpu import pci, table
from provision.gpu.lookup import defaults_row, os_name, supported
from provision.gpu.rules.context import Checker


def check_host(checker: Checker) -> None:
    """A probed host on a supported OS, with GPUs rigforge knows; else notes and problems."""
    gpu_work = checker.components & set(registry.gpu_packages())
    if not checker.facts.probed:
        if gpu_work:
            row, _ = defaults_row(None)
            checker.notes.append(
                f"The host was not probed: using the {os_name(row)} defaults and skipping the checks "
                "that need its OS, GPUs and Secure Boot state (run `rigforge probe`)."
            )
        return
    if gpu_work and not supported(checker.key):
        known = ", ".join(row["name"] for row in table.table().os_rows.values())
        checker.problem(
            f"{checker.os_name} is not a supported OS for {', '.join(sorted(gpu_work))}; "
            f"rigforge supports {known}.",
        )
    if gpu_work and not checker.facts.gpus:
        checker.notes.append(
            "No NVIDIA GPU was found on this host: the checks that depend on the GPU generation "
            "were skipped."
        )
    for gpu in checker.facts.gpus:
        if not (gpu.architecture or pci.architecture(gpu.device_id)) and gpu_work:
            checker.notes.append(
                f"GPU {gpu.label} (10de:{gpu.device_id}) is not in rigforge's PCI table (too new, "
                "or older than Kepler): the checks that depend on its generation were skipped."
            )
