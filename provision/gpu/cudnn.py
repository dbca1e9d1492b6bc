"""The cuDNN release line and package a host gets for its CUDA release and GPUs."""

from provision.gpu import table
from provision.gpu.lookup import compute, version
from provision.gpu.pci_bus import GpuDevice


def cudnn_release(cudnn_version: str, cuda_version: str, gpus: tuple[GpuDevice, ...] = ()) -> table.Cudnn:
    """The cuDNN release line a host gets: the current one, or the last that fits its CUDA and GPUs.

    >>> cudnn_release("9", "12.8").release
    '9'
    >>> cudnn_release("9", "11.8").release
    '9.10.2'

    Raises ValueError naming the reason when no line of that major fits.
    """
    cuda_major = version(cuda_version)[0]
    computes = [c for c in (compute(g) for g in gpus) if c]
    lines = [c for c in table.table().cudnn if c.release.split(".")[0] == str(cudnn_version)]
    if not lines:
        known = sorted({c.release.split(".")[0] for c in table.table().cudnn})
        raise ValueError(f"unknown cuDNN major {cudnn_version!r}; known: {', '.join(known)}")
    for line in lines:
        if cuda_major in line.cuda_majors and all(c >= line.min_compute for c in computes):
            return line
    majors = sorted({m for line in lines for m in line.cuda_majors})
    if cuda_major not in majors:
        raise ValueError(f"cuDNN {cudnn_version} is built for CUDA {join_majors(tuple(majors))}, "
                         f"not CUDA {cuda_version}")
    oldest = min(line.min_compute for line in lines if cuda_major in line.cuda_majors)
    raise ValueError(f"no cuDNN {cudnn_version} release for CUDA {cuda_major} supports compute "
                     f"capability below {oldest[0]}.{oldest[1]}")


def cudnn_package(cudnn_version: str, cuda_version: str) -> str:
    """The NVIDIA repo package for a cuDNN major built for a CUDA release.

    >>> cudnn_package("9", "12.8")
    'cudnn9-cuda-12'

    cuDNN 8 is one package, libcudnn8, whose versions carry the CUDA release
    (``8.9.7.29-1+cuda12.2``).
    """
    line = cudnn_release(cudnn_version, cuda_version)
    return table.fill(line.package, cudnn=str(cudnn_version), cuda=str(version(cuda_version)[0]))


def join_majors(majors: tuple[int, ...]) -> str:
    """CUDA majors for a message: ``join_majors((11, 12)) == "11 and 12"``."""
    names = [str(m) for m in majors]
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
