"""Pure parsers for what a rig's GPU stack prints.

Each ``parse_*(text)`` takes a command's output and returns a dataclass (or a list of them);
none runs anything. Output that is not what the parser expects raises ParseError, except
where "nothing found" is a legitimate answer (``lspci`` with no NVIDIA function gives []).
The shapes they accept are the ones recorded from real hosts under
``tests/unit/data/gpu/<parser>/``.

>>> parse_nvcc_version("Cuda compilation tools, release 12.5, V12.5.82").version
'12.5'
"""

import csv
import re
from dataclasses import dataclass

from provision.gpu import pci

GPU_CLASS_CODES = ("0300", "0302")  # VGA compatible controller, 3D controller

#: The exact query the probe runs; parse_nvidia_smi_query reads its output positionally.
NVIDIA_SMI_QUERY_FIELDS = ("index", "name", "driver_version", "memory.total", "pci.bus_id")
NVIDIA_SMI_QUERY = f"nvidia-smi --query-gpu={','.join(NVIDIA_SMI_QUERY_FIELDS)} --format=csv,noheader,nounits"


class ParseError(ValueError):
    """The text is not the output the parser expects."""


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _lines(text: str) -> list[str]:
    return _ANSI.sub("", text or "").replace("\r\n", "\n").split("\n")


# --- lspci -nn[k] -d 10de: ---------------------------------------------------------------


@dataclass(frozen=True)
class GpuDevice:
    """One GPU function as lspci lists it (never its audio/USB/UCSI siblings)."""

    slot: str
    class_code: str
    device_id: str
    name: str
    architecture: str | None
    subsystem: str | None = None
    driver_in_use: str | None = None
    kernel_modules: tuple[str, ...] = ()
    device_name: str | None = None

    @property
    def label(self) -> str:
        """A short human name: the bracketed marketing name, else the chip, else the PCI ID."""
        bracket = re.search(r"\[([^\[\]]+)\]\s*$", self.name)
        if bracket:
            return bracket.group(1)
        found = pci.chip(self.device_id)
        return found.name if found else f"{pci.NVIDIA_VENDOR_ID}:{self.device_id}"


_LSPCI_DEVICE = re.compile(
    r"^\s*(?P<slot>(?:[0-9a-fA-F]{4,}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])\s+"
    r"(?P<class_name>[^\[]+?)\s*\[(?P<class>[0-9a-fA-F]{4})\]:\s*(?P<rest>.*)$"
)
_LSPCI_IDS = re.compile(r"\[(?P<vendor>[0-9a-fA-F]{4}):(?P<device>[0-9a-fA-F]{4})\]")
_LSPCI_ATTRIBUTE = re.compile(
    r"^\s*(?P<key>Subsystem|Kernel driver in use|Kernel modules|DeviceName):\s*(?P<value>.*?)\s*$"
)


def parse_lspci(text: str) -> list[GpuDevice]:
    """GPUs in ``lspci -nn`` / ``lspci -nnk`` output (``-d 10de:`` or not, ``-D`` or not).

    A function counts as a GPU when its class is [0300] or [0302] and its vendor is 10de;
    names are never trusted. Indented ``-k`` lines attach to the function above them.
    """
    devices: list[dict] = []
    current: dict | None = None
    for line in _lines(text):
        match = _LSPCI_DEVICE.match(line)
        if match:
            current = None
            ids = list(_LSPCI_IDS.finditer(match["rest"]))
            if not ids:
                continue
            last = ids[-1]
            if (
                match["class"].lower() not in GPU_CLASS_CODES
                or last["vendor"].lower() != pci.NVIDIA_VENDOR_ID
            ):
                continue
            device_id = last["device"].lower()
            current = {
                "slot": match["slot"],
                "class_code": match["class"].lower(),
                "device_id": device_id,
                "name": match["rest"][: last.start()].strip(),
                "architecture": pci.architecture(device_id),
            }
            devices.append(current)
            continue
        attribute = _LSPCI_ATTRIBUTE.match(line)
        if attribute and current is not None:
            key, value = attribute["key"], attribute["value"]
            if key == "Subsystem":
                current["subsystem"] = value
            elif key == "Kernel driver in use":
                current["driver_in_use"] = value
            elif key == "Kernel modules":
                current["kernel_modules"] = tuple(m.strip() for m in value.split(",") if m.strip())
            else:
                current["device_name"] = value
    return [GpuDevice(**device) for device in devices]


_SYSFS_PCI = re.compile(
    r"^(?P<slot>\S+) 0x(?P<vendor>[0-9a-fA-F]{4}) 0x(?P<device>[0-9a-fA-F]{4}) 0x(?P<class>[0-9a-fA-F]{4})"
)


def parse_sysfs_pci(text: str) -> list[GpuDevice]:
    """GPUs in the lines of ``provision.gpu.commands.PCI_SYSFS_SCRIPT`` (``SLOT 0xVENDOR
    0xDEVICE 0xCLASS``), the fallback when lspci is not installed: the same rule as
    :func:`parse_lspci`, without names."""
    gpus = []
    for line in _lines(text):
        match = _SYSFS_PCI.match(line.strip())
        if not match or match["vendor"].lower() != pci.NVIDIA_VENDOR_ID:
            continue
        if match["class"].lower() not in GPU_CLASS_CODES:
            continue
        device_id = match["device"].lower()
        gpus.append(GpuDevice(slot=match["slot"], class_code=match["class"].lower(),
                              device_id=device_id, name="", architecture=pci.architecture(device_id)))
    return gpus




# --- nvidia-smi -------------------------------------------------------------------------


@dataclass(frozen=True)
class SmiGpu:
    """One row of the NVIDIA_SMI_QUERY output."""

    index: int | None
    name: str
    driver_version: str | None
    memory_total_mib: int | None
    pci_bus_id: str | None


def _smi_value(value: str) -> str | None:
    value = value.strip()
    return None if value in ("", "N/A", "[N/A]", "[Not Supported]") else value


def _smi_int(value: str | None) -> int | None:
    if value is None:
        return None
    number = value.split()[0]
    if not number.isdigit():
        raise ParseError(f"not a number in nvidia-smi output: {value!r}")
    return int(number)


def parse_nvidia_smi_query(text: str) -> list[SmiGpu]:
    """Rows of NVIDIA_SMI_QUERY (``csv,noheader,nounits``).

    A header line (``--format=csv``) is also understood: columns are then matched by name,
    units such as ``46068 MiB`` are dropped, and missing columns read as None.
    """
    rows = [row for row in csv.reader(_lines(text), skipinitialspace=True) if any(c.strip() for c in row)]
    if not rows:
        return []
    fields: tuple[str, ...] = NVIDIA_SMI_QUERY_FIELDS
    if "name" in (cell.strip() for cell in rows[0]) or rows[0][0].strip().startswith("index"):
        fields = tuple(cell.split(" [")[0].strip() for cell in rows[0])
        rows = rows[1:]
    if "name" not in fields:
        raise ParseError("nvidia-smi query output has no name column")
    gpus = []
    for row in rows:
        if len(row) != len(fields):
            raise ParseError(f"expected {len(fields)} columns from nvidia-smi, got: {', '.join(row)!r}")
        cell = {field: _smi_value(value) for field, value in zip(fields, row, strict=True)}
        gpus.append(
            SmiGpu(
                index=_smi_int(cell.get("index")),
                name=cell["name"] or "",
                driver_version=cell.get("driver_version"),
                memory_total_mib=_smi_int(cell.get("memory.total")),
                pci_bus_id=cell.get("pci.bus_id"),
            )
        )
    return gpus


@dataclass(frozen=True)
class SmiTable:
    """What the plain ``nvidia-smi`` table says (for display; prefer the query for data)."""

    driver_version: str
    cuda_version: str | None
    gpu_names: tuple[str, ...]
    memory_total_mib: tuple[int, ...]
    width: int  # of the table's borders: 79, 89 or 91 columns


_SMI_HEADER = re.compile(
    r"NVIDIA-SMI\s+(?P<smi>\S+)\s+(?:Driver|KMD) Version:\s+(?P<driver>\S+)"
    r"(?:\s+CUDA(?: UMD)? Version:\s+(?P<cuda>\S+))?"
)
_SMI_GPU_ROW = re.compile(
    r"^\|\s*(?P<index>\d+)\s+(?P<name>.*?)\s+(?:On|Off|N/A)\s*\|\s*"
    r"(?:[0-9A-Fa-f]{4,8}:)?[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7]"
)
_SMI_MEMORY = re.compile(r"(?P<used>\d+)MiB\s*/\s*(?P<total>\d+)MiB")


def parse_nvidia_smi_table(text: str) -> SmiTable:
    """The header and GPU rows of the ``nvidia-smi`` table, in any layout seen so far.

    79 columns up to 470, 89 at 535, 91 from 550; ``|---`` or ``+---`` under the header;
    from 610 ``KMD Version`` / ``CUDA UMD Version`` replace ``Driver`` / ``CUDA Version``.
    """
    lines = _lines(text)
    header = next((m for m in map(_SMI_HEADER.search, lines) if m), None)
    if header is None:
        raise ParseError("no NVIDIA-SMI header line in the output")
    borders = [len(line.rstrip()) for line in lines if line.startswith(("+-", "|="))]
    names: list[str] = []
    totals: list[int] = []
    for number, line in enumerate(lines):
        row = _SMI_GPU_ROW.match(line)
        if not row:
            continue
        names.append(row["name"])
        following = lines[number + 1] if number + 1 < len(lines) else ""
        memory = _SMI_MEMORY.search(following)
        if memory:
            totals.append(int(memory["total"]))
    cuda = header["cuda"]
    return SmiTable(
        driver_version=header["driver"],
        cuda_version=None if cuda in (None, "N/A") else cuda,
        gpu_names=tuple(names),
        memory_total_mib=tuple(totals),
        width=max(borders, default=0),
    )


@dataclass(frozen=True)
class SmiFailure:
    """Why nvidia-smi failed: kind is "no_driver", "version_mismatch" or "no_devices"."""

    kind: str
    nvml_library_version: str | None = None


_NVML_VERSION = re.compile(r"NVML library version:\s*(\S+)")
# The apostrophe is sometimes a typographic one in pasted reports.
_NO_DRIVER = re.compile(r"couldn.t communicate with the NVIDIA driver")


def parse_nvidia_smi_failure(output: str) -> SmiFailure | None:
    """Classify nvidia-smi's failure text; None when the output is not one of the known failures."""
    text = "\n".join(_lines(output))
    if _NO_DRIVER.search(text):
        return SmiFailure("no_driver")
    if "Driver/library version mismatch" in text:
        version = _NVML_VERSION.search(text)
        return SmiFailure("version_mismatch", version.group(1) if version else None)
    if "No devices were found" in text:
        return SmiFailure("no_devices")
    return None


def classify_nvidia_smi_failure(output: str) -> str | None:
    """ "no_driver" (module not loaded), "version_mismatch" (reboot needed after an update),
    "no_devices" (module loaded, GPU did not initialise), or None."""
    failure = parse_nvidia_smi_failure(output)
    return failure.kind if failure else None


# --- /proc/driver/nvidia/version ---------------------------------------------------------


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
    match = _NVRM.search("\n".join(_lines(text)))
    if not match:
        raise ParseError("no 'NVRM version: NVIDIA UNIX ... Kernel Module' line")
    if match["open_arch"]:
        return KernelModule(match["version"], "open", match["open_arch"])
    return KernelModule(match["version"], "proprietary", match["arch"])


# --- mokutil --sb-state ------------------------------------------------------------------

@dataclass(frozen=True)
class SecureBoot:
    """Secure Boot as mokutil reports it.

    state is "enabled", "disabled", "unsupported" (no EFI variables: legacy BIOS, so no
    Secure Boot) or "unknown" (mokutil absent or its answer not understood).
    """

    state: str
    setup_mode: bool = False
    validation_disabled: bool = False

    @property
    def enforcing(self) -> bool:
        """Unsigned kernel modules are refused: enabled, and shim still validates."""
        return self.state == "enabled" and not self.validation_disabled


def parse_mokutil_sb_state(stdout: str, stderr: str = "", rc: int = 0) -> SecureBoot:
    """Read ``mokutil --sb-state``; mokutil exits 0 for both enabled and disabled."""
    out = [line.strip() for line in _lines(stdout)]
    both = "\n".join(out + _lines(stderr))
    if rc == 127 or "command not found" in both or "mokutil: not found" in both:
        return SecureBoot("unknown")
    if "EFI variables are not supported" in both or "doesn't support Secure Boot" in both:
        return SecureBoot("unsupported")
    setup_mode = "Platform is in Setup Mode" in out
    validation_disabled = "SecureBoot validation is disabled in shim" in out
    if "SecureBoot enabled" in out:
        return SecureBoot("enabled", setup_mode, validation_disabled)
    if "SecureBoot disabled" in out:
        return SecureBoot("disabled", setup_mode, validation_disabled)
    return SecureBoot("unknown", setup_mode, validation_disabled)


# --- mokutil --test-key FILE ------------------------------------------------------------

MOK_KEY_STATES = ("enrolled", "not-enrolled", "pending", "blocked", "no-key", "unknown")

#: What mokutil (0.3 to 0.7.2 and its git head, lcp/mokutil src/mokutil.c, test_key and
#: print_skip_message) prints for a certificate, matched after the file name. Its exit status
#: cannot be trusted: 0.7.2 and older exit 0 for "not enrolled" and 1 for "already enrolled",
#: newer builds (after 0.7.2) exit 1 and 0. So only the text decides.
_MOK_MESSAGES = (
    # Shim trusts it (MokListRT), the firmware does (db), or the kernel's built-in keyring has it.
    ("is already enrolled", "enrolled", "MokList"),
    ("is already in db", "enrolled", "db"),
    ("is already in the built-in trusted keyring", "enrolled", "built-in keyring"),
    # Imported with `mokutil --import`, waiting for the confirmation at the next boot's console.
    ("is already in the enrollment request", "pending", "MokNew"),
    ("is blocked in dbx", "blocked", "dbx"),
    ("is blocked in MokListX", "blocked", "MokListX"),  # 0.7.0 and newer
    ("is blocked in MokListXRT", "blocked", "MokListX"),  # 0.5.0 to 0.6.0
    ("is not enrolled", "not-enrolled", None),
)


@dataclass(frozen=True)
class MokKey:
    """Whether a module-signing certificate is enrolled, as ``mokutil --test-key FILE`` says.

    state is "enrolled" (trusted: in shim's MokList, the firmware's db or the kernel's
    built-in keyring, named by ``where``), "not-enrolled", "pending" (imported, to be
    confirmed at the console at the next boot), "blocked" (in dbx or MokListX), "no-key"
    (the file does not exist) or "unknown" (no mokutil, no EFI, not a certificate, ...).
    """

    state: str
    key: str | None = None
    where: str | None = None

    @property
    def enrolled(self) -> bool:
        return self.state == "enrolled"


def parse_mokutil_test_key(stdout: str, stderr: str = "", rc: int = 0) -> MokKey:
    """Read ``mokutil --test-key FILE`` (stdout and stderr; the exit status is not used,
    except 127 for a missing mokutil)."""
    lines = [line.strip() for line in _lines(stdout) + _lines(stderr) if line.strip()]
    both = "\n".join(lines)
    if rc == 127 or "command not found" in both or "mokutil: not found" in both:
        return MokKey("unknown")
    for line in lines:
        for message, state, where in _MOK_MESSAGES:
            if line.endswith(" " + message) and not line.startswith("CA of "):
                return MokKey(state, line[: -len(message) - 1].strip(), where)
        missing = re.match(r"^Failed to (?:open|get file status,?) (?P<key>\S.*?)(?::.*)?$", line)
        if missing:
            return MokKey("no-key", missing["key"])
    return MokKey("unknown")


# --- dkms status -------------------------------------------------------------------------


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
    for line in _lines(text):
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


# --- nvcc --version, cudnn_version.h -----------------------------------------------------


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
    match = _NVCC.search("\n".join(_lines(text)))
    if not match:
        raise ParseError("no 'release X.Y, VX.Y.Z' line in nvcc --version output")
    return NvccVersion(match["version"], match["full"])


_CUDNN_DEFINE = re.compile(r"^\s*#\s*define\s+CUDNN_(MAJOR|MINOR|PATCHLEVEL)\s+(\d+)\s*$", re.MULTILINE)


def parse_cudnn_version_header(text: str) -> str:
    """``"9.1.0"`` from the CUDNN_MAJOR/MINOR/PATCHLEVEL defines of cudnn_version.h."""
    found: dict[str, str] = {}
    for part, value in _CUDNN_DEFINE.findall("\n".join(_lines(text))):
        found.setdefault(part, value)
    if set(found) != {"MAJOR", "MINOR", "PATCHLEVEL"}:
        raise ParseError("cudnn_version.h lacks CUDNN_MAJOR, CUDNN_MINOR or CUDNN_PATCHLEVEL")
    return f"{found['MAJOR']}.{found['MINOR']}.{found['PATCHLEVEL']}"


# --- /etc/os-release ---------------------------------------------------------------------


@dataclass(frozen=True)
class OsRelease:
    """The fields of /etc/os-release rigforge decides on (Proxmox VE reports plain Debian)."""

    id: str | None
    version_id: str | None
    codename: str | None
    pretty_name: str | None
    id_like: tuple[str, ...] = ()


def _os_release_value(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        raw = raw[1:-1]
        if raw.startswith("'"):
            return raw
        return re.sub(r"\\(.)", r"\1", raw)
    return raw


def parse_os_release(text: str) -> OsRelease:
    """KEY=value lines (quoted or not); comments and blank lines are skipped."""
    values: dict[str, str] = {}
    for line in _lines(text):
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        values[key.strip()] = _os_release_value(raw)
    if "ID" not in values and "NAME" not in values:
        raise ParseError("no ID= or NAME= line: not an os-release file")
    return OsRelease(
        id=values.get("ID", "").lower() or None,
        version_id=values.get("VERSION_ID") or None,
        codename=values.get("VERSION_CODENAME") or values.get("UBUNTU_CODENAME") or None,
        pretty_name=values.get("PRETTY_NAME") or None,
        id_like=tuple(values.get("ID_LIKE", "").split()),
    )


# --- /proc/meminfo, df -Pk ---------------------------------------------------------------


def parse_meminfo_total_mib(text: str) -> int:
    """``MemTotal:  16314120 kB`` -> 15931 (MiB, rounded down)."""
    match = re.search(r"^MemTotal:\s+(\d+)\s*kB", "\n".join(_lines(text)), re.MULTILINE)
    if not match:
        raise ParseError("no MemTotal line in /proc/meminfo")
    return int(match.group(1)) // 1024


def parse_df_avail_gib(text: str) -> float:
    """Available space of the one filesystem in ``df -Pk PATH`` output, in GiB (1 decimal)."""
    rows = [line.split() for line in _lines(text) if line.strip()]
    if len(rows) < 2 or rows[0][:1] != ["Filesystem"]:
        raise ParseError("not 'df -Pk' output")
    fields = rows[-1]
    if len(fields) < 6 or not fields[3].isdigit():
        raise ParseError(f"cannot read the available column of: {' '.join(fields)!r}")
    return round(int(fields[3]) / 1024 / 1024, 1)
