"""The GPUs on a host's PCI bus, as ``lspci`` or sysfs list them.

A function counts as a GPU when its class is a display controller and its vendor is NVIDIA;
names are never trusted (a host's pci.ids may predate its GPU).
"""

import re
from dataclasses import dataclass

from provision.gpu import pci
from provision.gpu.parsing import output_lines

GPU_CLASS_CODES = ("0300", "0302")  # VGA compatible controller, 3D controller


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
    for line in output_lines(text):
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
    for line in output_lines(text):
        match = _SYSFS_PCI.match(line.strip())
        if not match or match["vendor"].lower() != pci.NVIDIA_VENDOR_ID:
            continue
        if match["class"].lower() not in GPU_CLASS_CODES:
            continue
        device_id = match["device"].lower()
        gpus.append(GpuDevice(slot=match["slot"], class_code=match["class"].lower(),
                              device_id=device_id, name="", architecture=pci.architecture(device_id)))
    return gpus
