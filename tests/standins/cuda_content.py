"""File contents of the stand-in CUDA packages: version banners, headers, apt pins.

Part of the STAND-IN for NVIDIA's CUDA apt repository (not NVIDIA's packages). Everything here
is text written by the rigforge test suite in the format of the real files, so that the roles'
checks parse what they would parse on a real rig. Nothing here runs a GPU or loads a module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class CudaRelease:
    nvcc: str  # V<nvcc> on the "Cuda compilation tools" line; also the package version
    sdk: str  # "cuda" in version.json
    built: str
    build: str


# Banners copied from real `nvcc --version` outputs of these releases.
CUDA_RELEASES = {
    "12.8": CudaRelease("12.8.93", "12.8.1", "Fri_Feb_21_20:23:50_PST_2025",
                        "cuda_12.8.r12.8/compiler.35583870_0"),
    "12.9": CudaRelease("12.9.86", "12.9.1", "Tue_May_27_02:21:03_PDT_2025",
                        "cuda_12.9.r12.9/compiler.36037853_0"),
    "13.0": CudaRelease("13.0.88", "13.0.1", "Wed_Aug_20_01:58:59_PM_PDT_2025",
                        "cuda_13.0.r13.0/compiler.36424714_0"),
}

# Full driver versions of each branch (a release NVIDIA shipped in that branch).
DRIVER_VERSIONS = {
    "535": "535.247.01",
    "550": "550.163.01",
    "560": "560.35.05",
    "565": "565.57.01",
    "570": "570.133.20",
    "575": "575.57.08",
    "580": "580.65.06",
}

def cudnn_version(cuda_major: str, cudnn_major: str = "9") -> str:
    """The cuDNN release the stand-in ships for a CUDA major: the facts table's current line
    (9.26.1) where it is built for that CUDA, else the last line that is (9.10.2 for CUDA 11);
    a fourth field is added as NVIDIA's package versions have one."""
    from provision.gpu.table import table

    for line in table().cudnn:
        if line.release.split(".")[0] == cudnn_major and int(cuda_major) in line.cuda_majors:
            return f"{line.newest or line.release}.1"
    raise ValueError(f"the facts table has no cuDNN {cudnn_major} for CUDA {cuda_major}")


CUDNN_VERSION = cudnn_version("12")


def cuda_release(version: str) -> CudaRelease:
    """The release data for ``MAJOR.MINOR``; made-up build data for releases not in the table."""
    if version in CUDA_RELEASES:
        return CUDA_RELEASES[version]
    return CudaRelease(f"{version}.0", f"{version}.0", "Thu_Jan__1_00:00:00_UTC_2026",
                       f"cuda_{version}.r{version}/compiler.00000000_0")


def driver_version(branch: str) -> str:
    """A driver release NVIDIA shipped in ``branch``: the table above, else the facts table's
    CUDA minimum driver of that branch (590.44.01), else a made-up ``<branch>.00.01``."""
    if branch in DRIVER_VERSIONS:
        return DRIVER_VERSIONS[branch]
    from provision.gpu.table import table

    known = [str(row["min_driver"]) for row in table().raw["cuda"]]
    known = [version for version in known if version.startswith(branch + ".")]
    return str(known[0]) if known else f"{branch}.00.01"


def nvcc_script(version: str) -> str:
    """``/usr/local/cuda-X.Y/bin/nvcc``: prints the real banner for ``--version``, compiles nothing."""
    rel = cuda_release(version)
    year = rel.built.rsplit("_", 1)[-1]
    return (
        "#!/bin/sh\n"
        "# STAND-IN for NVIDIA's nvcc, built by the rigforge test suite: it only prints the\n"
        f"# version banner of CUDA {version} and compiles nothing.\n"
        'case "$1" in\n'
        "  --version|-V)\n"
        "    cat <<'EOF'\n"
        "nvcc: NVIDIA (R) Cuda compiler driver\n"
        f"Copyright (c) 2005-{year} NVIDIA Corporation\n"
        f"Built on {rel.built}\n"
        f"Cuda compilation tools, release {version}, V{rel.nvcc}\n"
        f"Build {rel.build}\n"
        "EOF\n"
        "    exit 0 ;;\n"
        "esac\n"
        'echo "nvcc: STAND-IN from the rigforge test suite; it compiles nothing" >&2\n'
        "exit 1\n"
    )


def version_json(version: str) -> str:
    """``/usr/local/cuda-X.Y/version.json`` in the layout of the real file (fewer entries)."""
    rel = cuda_release(version)
    data = {
        "cuda": {"name": "CUDA SDK", "version": rel.sdk},
        "cuda_cudart": {"name": "CUDA Runtime (cudart)", "version": rel.nvcc},
        "cuda_nvcc": {"name": "CUDA NVCC", "version": rel.nvcc},
    }
    return json.dumps(data, indent=3).replace('": ', '" : ') + "\n"


def cudnn_version_header(version: str = CUDNN_VERSION) -> str:
    """``cudnn_version_v9.h`` with the defines (and layout) of the real header."""
    major, minor, patch = version.split(".")[:3]
    return (
        "/*\n"
        " * STAND-IN for NVIDIA's cudnn_version.h, written by the rigforge test suite.\n"
        " * Not NVIDIA's file: only the version defines are modelled on the real header.\n"
        " */\n"
        "\n"
        "/**\n"
        " * \\file: The master cuDNN version file.\n"
        " */\n"
        "\n"
        "#ifndef CUDNN_VERSION_H_\n"
        "#define CUDNN_VERSION_H_\n"
        "\n"
        f"#define CUDNN_MAJOR {major}\n"
        f"#define CUDNN_MINOR {minor}\n"
        f"#define CUDNN_PATCHLEVEL {patch}\n"
        "\n"
        "#define CUDNN_VERSION (CUDNN_MAJOR * 10000 + CUDNN_MINOR * 100 + CUDNN_PATCHLEVEL)\n"
        "\n"
        "/* cannot use constexpr here since this is a C-only file */\n"
        "\n"
        "#endif /* CUDNN_VERSION_H */\n"
    )


def driver_pinning(branch: str, os_id: str = "debian") -> str:
    """``/etc/apt/preferences.d/nvidia-driver-pinning-<branch>``.

    Modelled on NVIDIA's documented APT version lock (not a copy of the real package's file):
    the driver packages are held to ``<branch>.*`` and every other version of them is refused.
    Which packages are the driver's comes from the facts table's hold patterns for the OS
    (``nvidia-*``, ``libnvidia-*``, ``cuda-drivers*``, ``libcuda1``, ...). The pinning packages
    themselves and the NVIDIA container toolkit (whose names match ``*nvidia*`` but whose
    versions follow no branch) are listed first so that they stay installable: apt uses the
    first version-pin record that matches a package.
    """
    from provision.gpu.table import table

    # *nvidia* covers every glob that names nvidia (libglx-nvidia0*, firmware-nvidia-gsp*, ...).
    globs = ["*nvidia*", "libnvidia*", *(g for g in table().hold_globs(os_id) if "nvidia" not in g)]
    names = " ".join(globs)
    return (
        f"# STAND-IN for nvidia-driver-pinning-{branch}, built by the rigforge test suite.\n"
        f"# Holds the NVIDIA driver packages to branch {branch}.\n"
        "\n"
        "Package: nvidia-driver-pinning-* nvidia-container-* libnvidia-container*\n"
        "Pin: version *\n"
        "Pin-Priority: 500\n"
        "\n"
        f"Package: {names}\n"
        f"Pin: version {branch}.*\n"
        "Pin-Priority: 1000\n"
        "\n"
        f"Package: {names}\n"
        "Pin: version *\n"
        "Pin-Priority: -1\n"
    )


def standin_note(package: str) -> str:
    return (
        f"{package}: STAND-IN package built by the rigforge test suite.\n"
        "STAND-IN for NVIDIA's CUDA apt repository (not NVIDIA's packages): no kernel module,\n"
        "no library and no program from NVIDIA is in it.\n"
    )
