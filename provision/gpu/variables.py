"""The user's stack variables: their names, their allowed values, and how a value is read.

A value may come from YAML as a number or a bool; each is read back as the text the user
meant, or reported as a Problem naming what is allowed.
"""

import re

from provision.gpu import table
from provision.gpu.lookup import cuda_releases
from provision.gpu.model import Problem

AUTO = "auto"

#: The user-facing stack variables, in the order they are explained.
VARIABLES: tuple[str, ...] = (
    "nvidia_driver_source",
    "nvidia_driver_branch",
    "nvidia_driver_flavor",
    "cuda_source",
    "cuda_version",
    "cudnn_source",
    "cudnn_version",
)

CHOICES: dict[str, tuple[str, ...]] = {
    "nvidia_driver_source": ("ubuntu", "cuda-repo", "debian"),
    "nvidia_driver_flavor": ("open", "proprietary"),
    "cuda_source": ("cuda-repo", "distro"),
    "cudnn_source": ("cuda-repo", "distro"),
}
_BRANCH = re.compile(r"^\d{3}$")
_CUDA = re.compile(r"^\d+\.\d+$")
_CUDNN = re.compile(r"^\d+$")


def _text(name: str, value: object) -> tuple[str, str | None]:
    """A user value as text, plus a note when YAML typing could have changed it."""
    if isinstance(value, bool):
        return str(value).lower(), None
    if isinstance(value, int) and name in ("nvidia_driver_branch", "cudnn_version"):
        return str(value), None
    if isinstance(value, float) and name == "cuda_version":
        text = repr(value)
        note = f'cuda_version is the YAML number {value}; quote it ("{text}"): YAML reads 12.10 as 12.1.'
        return text, note
    return str(value).strip(), None


def _malformed(name: str, text: str) -> str | None:
    """Why a (non-auto) value is not acceptable, or None when it is."""
    if name in CHOICES:
        if text in CHOICES[name]:
            return None
        return f"{name} is {text!r}; allowed: {', '.join(CHOICES[name])} or auto."
    if name == "nvidia_driver_branch" and not _BRANCH.match(text):
        return f'nvidia_driver_branch is {text!r}; use a 3-digit driver branch such as "570", or auto.'
    if name == "cuda_version" and not _CUDA.match(text):
        return f'cuda_version is {text!r}; use a CUDA release "X.Y" such as "12.8", or auto.'
    if name == "cuda_version" and text not in cuda_releases():
        return f"cuda_version {text} is not a CUDA release rigforge knows: {', '.join(cuda_releases())}."
    majors = sorted({int(c.release.split(".")[0]) for c in table.table().cudnn})
    installable = sorted({int(c.release.split(".")[0]) for c in table.table().cudnn if c.installable})
    known = ", ".join(map(str, majors))
    if name == "cudnn_version" and not _CUDNN.match(text):
        return f"cudnn_version is {text!r}; use a cuDNN major version ({known}), or auto."
    if name == "cudnn_version" and int(text) not in majors:
        return f"cudnn_version is {text!r}; use a cuDNN major version ({known}), or auto."
    if name == "cudnn_version" and int(text) not in installable:
        # The cudnn role installs only the cudnn<major>-cuda-<major> packages that start with cuDNN 9.
        return (
            f"cudnn_version {text} cannot be installed by rigforge's cudnn role, which installs "
            f"cuDNN {installable[0]} or later (NVIDIA's cudnn9-cuda-<major> packages); "
            f"use cudnn_version: \"{installable[0]}\", or auto."
        )
    return None


def normalise(name: str, value: object) -> tuple[str | None, Problem | None, str | None]:
    """(value to use, or None for the default; problem; note) for one user variable."""
    if value is None:
        return None, None, None
    text, note = _text(name, value)
    if text.lower() == AUTO:
        return None, None, None
    reason = _malformed(name, text)
    if reason:
        return None, Problem(reason, (name,)), None
    return text, None, note


