"""The NVIDIA kernel module: the loaded one (/proc/driver/nvidia/version) and DKMS's (``dkms status``)."""

import re
from dataclasses import dataclass

from provision.gpu.parsing import ParseError, output_lines


@dataclass(frozen=True)
class KernelModule:
    """The loaded NVIDIA kernel module: its version and flavor ("open" or "proprietary")."""

    version: str
    flavor: str
    arch: str


_NVRM = re.compile(
    r"NVIDIA UNIX (?:Open Kernel Module for (?P<open_arch>\S+)|(?P<arch>\S+) Kernel Module)"
    r"\s+(?P<version>\d+(?:\.\d+)+)"
)


def parse_proc_driver_version(text: str) -> KernelModule:
    """``NVRM version: NVIDIA UNIX [Open ]Kernel Module ...  <version>  ...`` -> KernelModule.

    The builder and the (locale-dependent) date after the version are ignored.
    """
    match = _NVRM.search("\n".join(output_lines(text)))
    if not match:
        raise ParseError("no 'NVRM version: NVIDIA UNIX ... Kernel Module' line")
    if match["open_arch"]:
        return KernelModule(match["version"], "open", match["open_arch"])
    return KernelModule(match["version"], "proprietary", match["arch"])


@dataclass(frozen=True)
class DkmsEntry:
    """One ``dkms status`` line; kernel and arch are None for a module only ``added``."""

    module: str
    version: str
    kernel: str | None
    arch: str | None
    state: str
    note: str | None = None


@dataclass(frozen=True)
class DkmsStatus:
    entries: tuple[DkmsEntry, ...]
    errors: tuple[str, ...] = ()

    def for_module(self, module: str) -> tuple[DkmsEntry, ...]:
        """The entries of one module, e.g. ``status.for_module("nvidia")``."""
        return tuple(entry for entry in self.entries if entry.module == module)


_DKMS_ENTRY = re.compile(
    r"^(?P<module>[^\s,/:]+)(?:/|, )(?P<version>[^\s,:]+)"
    r"(?:, (?P<kernel>[^\s,:]+), (?P<arch>[^\s,:]+))?"
    r": (?P<state>[a-z][a-z-]*)(?:\s*\((?P<note>.*)\))?\s*$"
)


def parse_dkms_status(text: str) -> DkmsStatus:
    """dkms 2.x (``nvidia, 535.86.05, <kernel>, x86_64: installed``) and 3.x (``nvidia/...``).

    ``Error! ...`` lines, joined with the lines that continue them, and any other line that
    is not an entry, are collected in ``errors``.
    """
    entries: list[DkmsEntry] = []
    errors: list[str] = []
    in_error = False
    for line in output_lines(text):
        stripped = line.strip()
        if not stripped:
            in_error = False
            continue
        match = _DKMS_ENTRY.match(stripped)
        if match:
            in_error = False
            entries.append(DkmsEntry(**match.groupdict()))
        elif stripped.startswith("Error!"):
            errors.append(stripped)
            in_error = True
        elif in_error:
            errors[-1] = f"{errors[-1]} {stripped}"
        else:
            # Anything else dkms prints (warnings, deprecation notices) is worth showing too.
            errors.append(stripped)
    return DkmsStatus(tuple(entries), tuple(errors))
