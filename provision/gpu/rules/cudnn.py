"""The cudnn component's rules: a cuDNN built for the stack's CUDA and for the host's GPUs."""

from provision.gpu import table
from provision.gpu.cudnn import cudnn_release, join_majors
from provision.gpu.lookup import labels, version
from provision.gpu.rules.context import Checker


def check_cudnn(checker: Checker) -> None:
    """cuDNN from NVIDIA's repo, built for the stack's CUDA major and for the GPUs."""
    stack = checker.stack
    if stack.cudnn_source == "distro":
        where = checker.os_name if checker.key is not None else "Debian and Ubuntu"
        checker.problem(
            f"cudnn_source is distro, but the distro's cuDNN package on {where} (nvidia-cudnn) only "
            "downloads cuDNN from NVIDIA at install time and installs nothing non-interactively. "
            "Use cudnn_source: cuda-repo.",
            "cudnn_source",
        )
    else:
        checker.repo_problem("cudnn_source", f"cuDNN {stack.cudnn_version}")
    lines = [c for c in table.table().cudnn if c.release.split(".")[0] == stack.cudnn_version]
    majors = tuple(sorted({m for line in lines for m in line.cuda_majors}))
    cuda_major = version(stack.cuda_version)[0]
    if cuda_major not in majors:
        checker.problem(
            f"cuDNN {stack.cudnn_version} is built for CUDA {join_majors(majors)}; cuda_version is "
            f"{stack.cuda_version}. Use a CUDA {majors[-1]} release.",
            "cudnn_version",
            "cuda_version",
        )
        return
    try:
        line = cudnn_release(stack.cudnn_version, stack.cuda_version, tuple(g for g, _ in checker.gpus))
    except ValueError as error:
        checker.problem(f"{error}; the GPUs are {labels(checker.gpus)}. Leave cudnn out of "
                     "rigforge_components for this host.", "cudnn_version")
        return
    if line.release != lines[0].release:
        floor = ".".join(map(str, lines[0].min_compute))
        why = (f"CUDA {cuda_major}" if cuda_major not in lines[0].cuda_majors else
               f"compute capability below {floor} ({labels(checker.gpus)})")
        checker.notes.append(
            f"cuDNN {lines[0].newest or lines[0].release} is built for CUDA "
            f"{join_majors(lines[0].cuda_majors)} and compute capability "
            f"{'.'.join(map(str, lines[0].min_compute))} or newer; for {why} the cudnn component "
            f"pins cuDNN {line.release}, the last release that supports it."
        )
