"""The ollama component's rule: a driver new enough for Ollama on the host's GPUs."""

from provision.gpu import pci, table
from provision.gpu.lookup import labels
from provision.gpu.rules.context import Checker


def check_ollama(checker: Checker) -> None:
    """A driver at Ollama's floor, which is higher for compute capability 5.0 to 6.2."""
    driver = checker.branch()
    if driver is None or (checker.facts.probed and not checker.facts.gpus):
        return
    branch, described = driver
    variables = ("nvidia_driver_branch",) if "nvidia_driver" in checker.components else ()
    fix = checker.use_branch if "nvidia_driver" in checker.components else (lambda b: f"Install driver {b}")
    ollama = table.table().raw["ollama"]
    floor, old_floor = int(ollama["min_branch"]), int(ollama["old_gpu_min_branch"])
    old = checker.gpus_of(ollama["old_gpu_generations"])
    if old and branch < old_floor:
        gpu, arch = old[0]
        found = pci.chip(gpu.device_id)
        capability = ""
        if found:
            capability = ", compute capability {}.{}".format(*found.compute_capability)
        checker.problem(
            f"Ollama needs driver >= {old_floor} for compute capability 5.0 to 6.2 GPUs "
            f"({labels(old)}: {arch}{capability}); {described}. {fix(old_floor)}.",
            *variables,
        )
    elif branch < floor:
        checker.problem(
            f"Ollama needs driver >= {floor}; {described}. {fix(table.table().default_branch)}.",
            *variables,
        )
