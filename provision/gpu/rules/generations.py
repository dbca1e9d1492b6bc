"""Which driver branches and kernel-module flavors the host's GPU generations allow."""

from provision.gpu import table
from provision.gpu.lookup import labels, open_module_architectures, open_only_architectures
from provision.gpu.rules.context import Checker


def check_generations(checker: Checker, branch: int) -> None:
    """The branch within every GPU generation's range; a flavor that drives all of them."""
    stack = checker.stack
    kepler = checker.gpus_of(["Kepler"])
    if kepler:
        checker.problem(
            f"Kepler GPUs ({labels(kepler)}) are not supported by any current driver branch; the last "
            "was 470, which rigforge does not install. Leave nvidia_driver out of rigforge_components "
            "for this host, or fit a Turing or newer GPU.",
            "nvidia_driver_branch",
        )
    for arch, gen in table.table().generations.items():
        old, limit = checker.gpus_of([arch]), int(gen.last_branch or 999)
        if arch != "Kepler" and old and branch > limit:
            checker.problem(
                f"{arch} GPUs ({labels(old)}) are supported up to driver branch {limit}; "
                f"nvidia_driver_branch is {stack.nvidia_driver_branch}. Use {limit}.",
                "nvidia_driver_branch",
            )
    for arch, gen in table.table().generations.items():
        new, floor = checker.gpus_of([arch]), int(gen.first_branch or 0)
        if new and branch < floor:
            checker.problem(
                f"{arch} GPUs ({labels(new)}) need driver >= {floor}; nvidia_driver_branch is "
                f"{stack.nvidia_driver_branch}. {checker.use_branch(floor)}.",
                "nvidia_driver_branch",
            )
    open_archs = open_module_architectures()
    closed_only = [(g, a) for g, a in checker.gpus if a not in open_archs and a != "Kepler"]
    open_only = checker.gpus_of(open_only_architectures())
    if open_only and closed_only:
        checker.problem(
            f"No driver flavor drives both {labels(open_only)} (open kernel modules only) and "
            f"{labels(closed_only)} (proprietary only) on one host. Move one of them to another host.",
            "nvidia_driver_flavor",
        )
    elif stack.nvidia_driver_flavor == "open" and closed_only:
        arch = closed_only[0][1]
        checker.problem(
            f"The open kernel modules need Turing or newer; {labels(closed_only)} is {arch} and "
            "nvidia_driver_flavor is open. Use nvidia_driver_flavor: proprietary.",
            "nvidia_driver_flavor",
        )
    elif stack.nvidia_driver_flavor == "proprietary" and open_only:
        fix = "Use nvidia_driver_flavor: open"
        if stack.nvidia_driver_source == "debian":
            fix += " with nvidia_driver_source: cuda-repo and nvidia_driver_branch: "
            fix += table.table().default_branch
        checker.problem(
            f"Blackwell GPUs ({labels(open_only)}) work only with the open kernel modules; "
            f"nvidia_driver_flavor is proprietary. {fix}.",
            "nvidia_driver_flavor",
        )
    elif stack.nvidia_driver_flavor == "proprietary" and checker.gpus and not closed_only:
        checker.notes.append(
            f"The open kernel modules are recommended for Turing and newer GPUs ({labels(checker.gpus)}), "
            "and NVIDIA's default from branch 560; nvidia_driver_flavor is proprietary."
        )
