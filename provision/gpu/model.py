"""The resolver's values: what it knows of a host, the stack it resolves, and what it reports."""

from dataclasses import dataclass, field, fields

from provision.gpu.kernel_module import KernelModule
from provision.gpu.mokutil import MokKey, SecureBoot
from provision.gpu.pci_bus import GpuDevice
from provision.gpu.system import OsRelease


@dataclass(frozen=True)
class HostFacts:
    """What rigforge knows about a host before touching it (None: not probed).

    secure_boot is "enabled", "disabled", "unsupported" or "unknown"; with
    secure_boot_validation_disabled the shim loads unsigned modules anyway.
    secure_boot_key is what ``mokutil --test-key`` says of the key DKMS signs modules with
    (Ubuntu: /var/lib/shim-signed/mok/MOK.der, else /var/lib/dkms/mok.pub): "enrolled",
    "not-enrolled", "pending", "blocked", "no-key" or "unknown" (mokutil.MOK_KEY_STATES).
    driver_loaded is the loaded kernel module's version ("535.183.01").
    """

    os_id: str | None = None
    os_version: str | None = None
    arch: str | None = None
    gpus: tuple[GpuDevice, ...] = ()
    secure_boot: str | None = None
    secure_boot_validation_disabled: bool = False
    driver_loaded: str | None = None
    secure_boot_key: str | None = None

    @property
    def secure_boot_enforcing(self) -> bool:
        return self.secure_boot == "enabled" and not self.secure_boot_validation_disabled

    @property
    def probed(self) -> bool:
        return self.os_id is not None

    @classmethod
    def from_parsed(
        cls,
        os_release: OsRelease | None = None,
        arch: str | None = None,
        gpus: list[GpuDevice] | tuple[GpuDevice, ...] = (),
        secure_boot: SecureBoot | None = None,
        kernel_module: KernelModule | None = None,
        mok_key: MokKey | None = None,
    ) -> "HostFacts":
        """Facts from the parsers' results (provision.gpu.system, pci_bus, mokutil, kernel_module)."""
        return cls(
            os_id=os_release.id if os_release else None,
            os_version=os_release.version_id if os_release else None,
            arch=arch,
            gpus=tuple(gpus),
            secure_boot=secure_boot.state if secure_boot else None,
            secure_boot_validation_disabled=bool(secure_boot and secure_boot.validation_disabled),
            driver_loaded=kernel_module.version if kernel_module else None,
            secure_boot_key=mok_key.state if mok_key else None,
        )


@dataclass(frozen=True)
class Stack:
    """The resolved stack: every variable has a concrete value, never "auto"."""

    nvidia_driver_source: str
    nvidia_driver_branch: str
    nvidia_driver_flavor: str
    cuda_source: str
    cuda_version: str
    cudnn_source: str
    cudnn_version: str

    def as_vars(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Problem:
    """A broken rule: the message names the conflicting values and a working alternative."""

    message: str
    variables: tuple[str, ...]


@dataclass
class Resolution:
    stack: Stack
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems
