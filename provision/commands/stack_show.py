"""``rigforge stack show``: what provision would install for an OS and PCI IDs, with no host.

The same resolver (:mod:`provision.gpu.stack`) and facts table (:mod:`provision.gpu.table`)
that ``plan`` and ``provision`` use decide the stack; :mod:`provision.gpu.packages` names the
packages. A stack that cannot work raises :class:`UsageError` (exit 2) listing every problem.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from provision import registry
from provision.errors import UsageError


@dataclass
class StackShow:
    os_key: str
    os_name: str
    gpus: list[dict]
    stack: dict
    components: list[dict]
    notes: list[str]

    def as_dict(self) -> dict:
        return asdict(self)


def _parse_sets(pairs: tuple[str, ...]) -> dict[str, str]:
    from provision.gpu.variables import VARIABLES

    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in VARIABLES:
            raise UsageError(
                f"--set {pair!r}: expected KEY=VALUE with KEY one of {', '.join(VARIABLES)}",
                hint="for example --set nvidia_driver_source=cuda-repo --set cuda_version=12.9",
            )
        values[key] = value
    return values


def _gpus(ids: tuple[str, ...]):
    from provision.gpu import pci
    from provision.gpu.pci_bus import GpuDevice

    gpus = []
    for index, text in enumerate(ids):
        device = pci.parse_device_id(text)
        if device is None:
            raise UsageError(
                f"--gpu {text!r} is not an NVIDIA PCI ID", hint="give vendor:device, e.g. 10de:2684"
            )
        found = pci.chip(device)
        name = f"NVIDIA Corporation {found.name}" if found else "NVIDIA Corporation Device"
        gpus.append(
            GpuDevice(f"{index + 1:02x}:00.0", "0300", f"{device:04x}", name, pci.architecture(device))
        )
    return tuple(gpus)


def show(
    os_key: str,
    gpu_ids: tuple[str, ...] = (),
    sets: tuple[str, ...] = (),
    components: tuple[str, ...] | str | None = None,
    kernel: str | None = None,
) -> StackShow:
    """Resolve and describe the stack for ``os_key`` ("ubuntu-24.04") and PCI IDs."""
    from provision.gpu import packages, stack, table
    from provision.gpu.model import HostFacts

    # The components the resolver looks at; the others change no GPU choice.
    known = registry.resolved()
    if isinstance(components, str):  # as --components gives it: "nvidia_driver,cuda"
        components = tuple(c.strip() for c in components.split(",") if c.strip())
    components = registry.with_resolver_rules() if components is None else components
    unknown = [c for c in components if c not in known]
    if unknown:
        raise UsageError(f"--components: unknown {', '.join(unknown)}",
                         hint=f"choose from {', '.join(known)}")
    row = table.table().os_row(os_key)
    if row is None:
        rows = ", ".join(table.table().os_rows)
        raise UsageError(f"--os {os_key!r} is not an OS rigforge knows", hint=f"one of: {rows}")
    gpus = _gpus(gpu_ids)
    facts = HostFacts(row["id"], row["version"], "x86_64", gpus, secure_boot="disabled")
    resolution = stack.resolve(_parse_sets(sets), facts, list(components))
    if not resolution.ok:
        raise UsageError(
            f"the stack cannot work on {row['name']}:\n  - "
            + "\n  - ".join(p.message for p in resolution.problems),
            hint="change the named variables with --set KEY=VALUE (nothing is installed by `stack show`)",
        )
    plans = packages.plan(resolution.stack, os_key, gpus, list(components), kernel or packages.KERNEL)
    return StackShow(
        os_key,
        row["name"],
        [{"pci_id": f"10de:{g.device_id}", "name": g.label, "architecture": g.architecture} for g in gpus],
        resolution.stack.as_vars(),
        [p.as_dict() for p in plans],
        list(resolution.notes),
    )
