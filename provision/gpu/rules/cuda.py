"""The cuda component's rules: a CUDA source the host has, a driver that runs it, GPUs it supports."""

from provision.gpu import table
from provision.gpu.lifecycle import newest_cuda_for_branch
from provision.gpu.lookup import cuda_min_driver, cuda_releases, labels, os_row, version
from provision.gpu.rules.context import Checker


def check_cuda(checker: Checker) -> None:
    """A CUDA the source has for this OS, that the driver runs and that supports the GPUs."""
    stack = checker.stack
    cuda = stack.cuda_version
    row = os_row(checker.key) or {}
    distro = str(row.get("distro_cuda", "")) or None
    if stack.cuda_source == "distro" and checker.key is not None:
        if distro and distro != cuda:
            checker.problem(
                f"{checker.os_name}'s own CUDA (cuda_source: distro) is {distro}; cuda_version is {cuda}. "
                f"Use cuda_version: {distro} or cuda_source: cuda-repo.",
                "cuda_source",
                "cuda_version",
            )
    elif stack.cuda_source == "cuda-repo":
        checker.repo_problem("cuda_source", f"CUDA {cuda}")
        repo = row.get("cuda_repo")
        oldest = row.get("cuda_repo_oldest_cuda")
        if repo and oldest and version(cuda) < version(oldest):
            alternative = " or cuda_source: distro" if distro == cuda else ""
            checker.problem(
                f"NVIDIA's {repo} repo starts at CUDA {oldest}; cuda_version is {cuda}. "
                f"Use cuda_version: {oldest} or newer{alternative}.",
                "cuda_source",
                "cuda_version",
            )
    driver = checker.branch()
    needed = cuda_min_driver(cuda) or 0
    if driver is not None and driver[0] < needed:
        newest = newest_cuda_for_branch(driver[0])
        alternative = f" or CUDA {newest}" if newest else ""
        if "nvidia_driver" in checker.components:
            variables: tuple[str, ...] = ("cuda_version", "nvidia_driver_branch")
            fix = f"{checker.use_branch(needed)}{alternative}."
        else:
            variables = ("cuda_version",)
            fix = f"Install driver {needed}" + (f" or use CUDA {newest}." if newest else ".")
        checker.problem(f"CUDA {cuda} needs driver >= {needed}; {driver[1]}. {fix}", *variables)
    for arch, gen in table.table().generations.items():
        gpus, first = checker.gpus_of([arch]), gen.first_cuda
        if gpus and first and version(cuda) < version(first):
            via = " with cuda_source: cuda-repo" if stack.cuda_source == "distro" else ""
            checker.problem(
                f"{arch} GPUs ({labels(gpus)}) need CUDA >= {first}; cuda_version is {cuda}. "
                f"Use cuda_version: {first} or newer{via}.",
                "cuda_version",
            )
    for arch, gen in table.table().generations.items():
        gpus, last = checker.gpus_of([arch]), gen.last_cuda_major
        if gpus and last is not None and version(cuda)[0] > last:
            newest = max((c for c in cuda_releases() if version(c)[0] == last), key=version)
            checker.problem(
                f"CUDA {last + 1} dropped {arch} GPUs ({labels(gpus)}); cuda_version is {cuda}. "
                f"Use CUDA {newest}.",
                "cuda_version",
            )
