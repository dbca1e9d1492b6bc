"""The CUDA and cuDNN a host has: ``nvcc --version`` and the cudnn_version.h header.

>>> parse_nvcc_version("Cuda compilation tools, release 12.5, V12.5.82").version
'12.5'
"""

import re
from dataclasses import dataclass

from provision.gpu.parsing import ParseError, output_lines


@dataclass(frozen=True)
class NvccVersion:
    """``version`` is the CUDA release ("12.5"); ``full`` the compiler's ("12.5.82")."""

    version: str
    full: str

    def __str__(self) -> str:
        return self.version


_NVCC = re.compile(r"release (?P<version>\d+\.\d+), V(?P<full>\d+(?:\.\d+)+)")


def parse_nvcc_version(text: str) -> NvccVersion:
    """From the ``Cuda compilation tools, release X.Y, VX.Y.Z`` line (4- and 5-line outputs)."""
    match = _NVCC.search("\n".join(output_lines(text)))
    if not match:
        raise ParseError("no 'release X.Y, VX.Y.Z' line in nvcc --version output")
    return NvccVersion(match["version"], match["full"])


_CUDNN_DEFINE = re.compile(r"^\s*#\s*define\s+CUDNN_(MAJOR|MINOR|PATCHLEVEL)\s+(\d+)\s*$", re.MULTILINE)


def parse_cudnn_version_header(text: str) -> str:
    """``"9.1.0"`` from the CUDNN_MAJOR/MINOR/PATCHLEVEL defines of cudnn_version.h."""
    found: dict[str, str] = {}
    for part, value in _CUDNN_DEFINE.findall("\n".join(output_lines(text))):
        found.setdefault(part, value)
    if set(found) != {"MAJOR", "MINOR", "PATCHLEVEL"}:
        raise ParseError("cudnn_version.h lacks CUDNN_MAJOR, CUDNN_MINOR or CUDNN_PATCHLEVEL")
    return f"{found['MAJOR']}.{found['MINOR']}.{found['PATCHLEVEL']}"
