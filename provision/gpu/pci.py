"""NVIDIA PCI device IDs -> chip and architecture (GPU generation).

The table is built from the public pci.ids database (pciutils/pciids, version 2026.05.24):
one explicit ID range per chip, from the chip's first to its last listed device ID. Only
display functions are covered: a GPU's audio, USB and UCSI functions (e.g. 10de:10f8,
1ad8, 1ad9, 22ba) fall outside every range. Fermi and older chips are deliberately absent,
so their IDs give ``None`` like any other unknown ID.

>>> architecture("10de:2684")
'Ada'
>>> chip(0x1B80).name
'GP104'
"""

from bisect import bisect_right
from dataclasses import dataclass

NVIDIA_VENDOR_ID = "10de"

#: GPU generations rigforge knows, oldest first.
ARCHITECTURES: tuple[str, ...] = (
    "Kepler",
    "Maxwell",
    "Pascal",
    "Volta",
    "Turing",
    "Ampere",
    "Ada",
    "Hopper",
    "Blackwell",
)

#: Lowest compute capability (major, minor) of each generation.
ARCHITECTURE_COMPUTE_CAPABILITY: dict[str, tuple[int, int]] = {
    "Kepler": (3, 0),
    "Maxwell": (5, 0),
    "Pascal": (6, 0),
    "Volta": (7, 0),
    "Turing": (7, 5),
    "Ampere": (8, 0),
    "Ada": (8, 9),
    "Hopper": (9, 0),
    "Blackwell": (10, 0),
}


@dataclass(frozen=True)
class Chip:
    """One NVIDIA GPU chip: its code name, generation and compute capability."""

    name: str
    architecture: str
    compute_capability: tuple[int, int]


def _chips() -> dict[str, Chip]:
    spec = {
        # Kepler: GK10x are sm_30, GK110/GK180/GK208 sm_35, GK210 (Tesla K80) sm_37.
        "GK104": ("Kepler", (3, 0)),
        "GK106": ("Kepler", (3, 0)),
        "GK107": ("Kepler", (3, 0)),
        "GK110": ("Kepler", (3, 5)),
        "GK208": ("Kepler", (3, 5)),
        # Maxwell: first generation GM10x sm_50, second generation GM20x sm_52.
        "GM107": ("Maxwell", (5, 0)),
        "GM108": ("Maxwell", (5, 0)),
        "GM200": ("Maxwell", (5, 2)),
        "GM204": ("Maxwell", (5, 2)),
        "GM206": ("Maxwell", (5, 2)),
        "GP100": ("Pascal", (6, 0)),
        "GP102": ("Pascal", (6, 1)),
        "GP104": ("Pascal", (6, 1)),
        "GP106": ("Pascal", (6, 1)),
        "GP107": ("Pascal", (6, 1)),
        "GP108": ("Pascal", (6, 1)),
        "GV100": ("Volta", (7, 0)),
        "TU102": ("Turing", (7, 5)),
        "TU104": ("Turing", (7, 5)),
        "TU106": ("Turing", (7, 5)),
        "TU116": ("Turing", (7, 5)),
        "TU117": ("Turing", (7, 5)),
        "GA100": ("Ampere", (8, 0)),
        "GA102": ("Ampere", (8, 6)),
        "GA103": ("Ampere", (8, 6)),
        "GA104": ("Ampere", (8, 6)),
        "GA106": ("Ampere", (8, 6)),
        "GA107": ("Ampere", (8, 6)),
        "AD102": ("Ada", (8, 9)),
        "AD103": ("Ada", (8, 9)),
        "AD104": ("Ada", (8, 9)),
        "AD106": ("Ada", (8, 9)),
        "AD107": ("Ada", (8, 9)),
        "GH100": ("Hopper", (9, 0)),
        # Blackwell: datacenter GB100/GB102 sm_100, GB110 (B300) sm_103,
        # consumer/workstation GB20x sm_120, GB10 (DGX Spark, GB20B) sm_121.
        "GB100": ("Blackwell", (10, 0)),
        "GB102": ("Blackwell", (10, 0)),
        "GB110": ("Blackwell", (10, 3)),
        "GB202": ("Blackwell", (12, 0)),
        "GB203": ("Blackwell", (12, 0)),
        "GB205": ("Blackwell", (12, 0)),
        "GB206": ("Blackwell", (12, 0)),
        "GB207": ("Blackwell", (12, 0)),
        "GB20B": ("Blackwell", (12, 1)),
    }
    return {name: Chip(name, arch, cc) for name, (arch, cc) in spec.items()}


CHIPS: dict[str, Chip] = _chips()

#: (first ID, last ID, chip), sorted, non-overlapping; inclusive bounds from pci.ids.
DEVICE_ID_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x0FC0, 0x0FFF, "GK107"),  # GeForce GT 640/GTX 650, Quadro K600/K2000, GRID K1
    (0x1001, 0x103F, "GK110"),  # GTX 780/TITAN, Tesla K20/K40 (GK110/GK110B/GK180), K80 (GK210)
    (0x1180, 0x11BF, "GK104"),  # GTX 680/770, Tesla K10, GRID K2/K520
    (0x11C0, 0x11FF, "GK106"),  # GTX 660, 650 Ti, Quadro K4000
    (0x1280, 0x12BA, "GK208"),  # GT 710/730, 920M laptops
    (0x130B, 0x130B, "GK110"),  # Q12U-1
    (0x1340, 0x137D, "GM108"),  # 830M-945M, MX110/MX130 laptops
    (0x1380, 0x13BF, "GM107"),  # GTX 750 Ti/750, 850M-960M, Quadro K620/K1200/K2200, Tesla M10
    (0x13C0, 0x13FB, "GM204"),  # GTX 970/980, 980M, Quadro M4000/M5000, Tesla M60/M6
    (0x1401, 0x1436, "GM206"),  # GTX 950/960, Quadro M2000, Tesla M4
    (0x15C2, 0x15FF, "GP100"),  # Tesla P100, Quadro GP100
    (0x1613, 0x161A, "GM204"),  # GRID M60, GTX 965M-980 Mobile
    (0x1667, 0x1667, "GM204"),  # GTX 965M
    (0x1676, 0x1676, "GM204"),  # Quadro M2200 Mobile
    (0x1725, 0x172F, "GP100"),
    (0x174D, 0x174E, "GM108"),  # MX130/MX110 laptops
    (0x1789, 0x1789, "GM107"),  # GRID M3-3020
    (0x179C, 0x179C, "GM107"),  # 940MX
    (0x17C2, 0x17FD, "GM200"),  # GTX TITAN X, 980 Ti, Quadro M6000, Tesla M40
    (0x1B00, 0x1B78, "GP102"),  # TITAN X/Xp, GTX 1080 Ti, Quadro P6000, Tesla P40
    (0x1B80, 0x1BE1, "GP104"),  # GTX 1070/1080 (and Mobile), Quadro P4000/P5000, Tesla P4
    (0x1C00, 0x1C70, "GP106"),  # GTX 1060, Quadro P2000
    (0x1C81, 0x1CFB, "GP107"),  # GTX 1050/1050 Ti, MX150/MX350, Quadro P400-P1000
    (0x1D01, 0x1D56, "GP108"),  # GT 1030, MX150-MX330 laptops
    (0x1D81, 0x1DF6, "GV100"),  # TITAN V, Tesla V100/V100S, Quadro GV100
    (0x1E02, 0x1E78, "TU102"),  # RTX 2080 Ti, TITAN RTX, Quadro RTX 6000/8000
    (0x1E81, 0x1EF5, "TU104"),  # RTX 2070 SUPER/2080, Quadro RTX 4000/5000, Tesla T4
    (0x1F02, 0x1F76, "TU106"),  # RTX 2060/2070, Quadro RTX 3000 Mobile
    (0x1F81, 0x1FF9, "TU117"),  # GTX 1650, MX450/MX550, T400-T1200
    (0x2080, 0x20FF, "GA100"),  # A100, A30, A800
    (0x2182, 0x21D1, "TU116"),  # GTX 1650 SUPER/1660/1660 Ti
    (0x2200, 0x223F, "GA102"),  # RTX 3080/3090, RTX A5000/A6000, A10/A40
    (0x2302, 0x23F0, "GH100"),  # H100, H200, H800, H20, GH200
    (0x2414, 0x2460, "GA103"),  # RTX 3060 Ti, 3080 Ti Mobile
    (0x2480, 0x24FA, "GA104"),  # RTX 3060 Ti/3070, RTX A4000
    (0x2501, 0x2571, "GA106"),  # RTX 3050/3060, RTX A2000
    (0x2582, 0x25FB, "GA107"),  # RTX 3050, 2050/MX570 laptops, A2/A16, RTX A400/A1000
    (0x2681, 0x26F5, "AD102"),  # RTX 4090, RTX 6000 Ada, L40/L40S/L20
    (0x2702, 0x2770, "AD103"),  # RTX 4080, 4090 Laptop
    (0x2782, 0x27FB, "AD104"),  # RTX 4070/4070 Ti, RTX 4000 Ada, L4
    (0x2803, 0x2878, "AD106"),  # RTX 4060 Ti, 4070 Laptop
    (0x2882, 0x28F8, "AD107"),  # RTX 4060, 4050 Laptop, RTX 2000 Ada
    (0x2900, 0x297E, "GB100"),  # B200, HGX B200, GB200
    (0x2980, 0x29F1, "GB102"),  # B100
    (0x2B85, 0x2BBC, "GB202"),  # RTX 5090, RTX PRO 6000 Blackwell
    (0x2C02, 0x2C79, "GB203"),  # RTX 5070 Ti/5080, 5080/5090 Laptop, RTX PRO 4000/4500
    (0x2D04, 0x2D79, "GB206"),  # RTX 5060/5060 Ti, RTX PRO 2000
    (0x2D83, 0x2DF9, "GB207"),  # RTX 5050
    (0x2E12, 0x2E2A, "GB20B"),  # GB10 (DGX Spark)
    (0x2F04, 0x2F58, "GB205"),  # RTX 5070, 5070 Ti Laptop
    (0x3180, 0x31FE, "GB110"),  # B300, GB300
)

_STARTS = [first for first, _, _ in DEVICE_ID_RANGES]


def parse_device_id(device_id: int | str) -> int | None:
    """``0x2684``, ``"2684"``, ``"0x2684"`` or ``"10de:2684"`` -> 0x2684; anything else -> None.

    A ``vendor:device`` pair from another vendor gives None.
    """
    if isinstance(device_id, bool):
        return None
    if isinstance(device_id, int):
        return device_id if 0 <= device_id <= 0xFFFF else None
    text = str(device_id).strip().lower()
    if ":" in text:
        vendor, _, text = text.partition(":")
        if vendor.removeprefix("0x") != NVIDIA_VENDOR_ID:
            return None
    text = text.removeprefix("0x")
    if not 1 <= len(text) <= 4:
        return None
    try:
        return int(text, 16)
    except ValueError:
        return None


def chip(device_id: int | str) -> Chip | None:
    """The chip behind an NVIDIA PCI device ID, or None when the ID is not in the table."""
    value = parse_device_id(device_id)
    if value is None:
        return None
    index = bisect_right(_STARTS, value) - 1
    if index < 0:
        return None
    first, last, name = DEVICE_ID_RANGES[index]
    return CHIPS[name] if first <= value <= last else None


def architecture(device_id: int | str) -> str | None:
    """The GPU generation ("Kepler" .. "Blackwell") of a device ID, or None when unknown.

    >>> architecture(0x1B80), architecture("10de:0e22")
    ('Pascal', None)
    """
    found = chip(device_id)
    return found.architecture if found else None


def compute_capability(arch: str) -> tuple[int, int] | None:
    """The lowest compute capability of a generation: ``compute_capability("Pascal") == (6, 0)``."""
    return ARCHITECTURE_COMPUTE_CAPABILITY.get(arch)


def generation(arch: str) -> int:
    """Position of a generation in ARCHITECTURES (for "Turing or newer" comparisons)."""
    return ARCHITECTURES.index(arch)
