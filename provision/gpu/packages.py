"""What each GPU component installs for a resolved stack: package names from the facts table.

The names come from the same rules of ``roles/gpu_stack/vars/main.yml`` that the roles
install from (``driver_packages``, ``packages_of_driver``, the OS rows), so ``rigforge stack
show`` prints what ``provision`` would install, for an OS and GPUs that need not exist yet.

>>> from provision.gpu.model import Stack
>>> stack = Stack("cuda-repo", "580", "open", "cuda-repo", "12.8", "cuda-repo", "9")
>>> driver_packages(stack, "ubuntu")
['nvidia-driver-pinning-580', 'nvidia-open-580']
"""

from __future__ import annotations

from dataclasses import dataclass, field

from provision.gpu import table as facts
from provision.gpu.cudnn import cudnn_package, cudnn_release
from provision.gpu.model import Stack
from provision.gpu.pci_bus import GpuDevice

#: Stand-in for the running kernel's release in the names that carry it.
KERNEL = "<kernel>"


@dataclass
class ComponentPlan:
    """One component's install plan: where from, which packages, what is held and blacklisted."""

    component: str
    source: str
    packages: list[str]
    holds: list[str] = field(default_factory=list)
    blacklist: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "component": self.component,
            "source": self.source,
            "packages": list(self.packages),
            "holds": list(self.holds),
            "blacklist": list(self.blacklist),
            "notes": list(self.notes),
        }


def _ubuntu_packages(
    rule: dict, stack: Stack, package_set: str, kernel: str, persistenced: bool
) -> list[str]:
    """Canonical's names, with the signed prebuilt modules for ``kernel`` and its generic flavour."""
    values = {
        "b": stack.nvidia_driver_branch,
        "set": "" if package_set == "desktop" else "-server",
        "open": "-open" if stack.nvidia_driver_flavor == "open" else "",
        "kernel": kernel,
        "flavour": "generic",
    }
    names = [facts.fill(t, **values) for t in rule["userspace"][package_set]]
    names += [facts.fill(rule["signed_modules"], **values), facts.fill(rule["signed_modules_meta"], **values)]
    if persistenced:
        names.append(facts.fill(rule["persistenced"], **values))
    return names


def driver_packages(
    stack: Stack,
    os_id: str,
    *,
    package_set: str = "server",
    kernel: str = KERNEL,
    persistenced: bool = True,
) -> list[str]:
    """The driver packages the nvidia_driver role installs for ``stack`` on an OS family.

    Ubuntu's archive: the package set (server, desktop, headless) and the signed modules for
    ``kernel``; NVIDIA's repository: the pinning package first, then the flavor's packages;
    Debian's archive: the flavor's packages and nvidia-persistenced.
    """
    rule = facts.table().driver_rule(stack.nvidia_driver_source, os_id, stack.nvidia_driver_branch)
    if rule is None:
        return []
    if stack.nvidia_driver_source == "ubuntu":
        return _ubuntu_packages(rule, stack, package_set, kernel, persistenced)
    values = {"b": stack.nvidia_driver_branch}
    names = [facts.fill(rule["pinning"], **values)] if rule.get("pinning") else []
    names += [facts.fill(t, **values) for t in rule["packages"][stack.nvidia_driver_flavor]]
    if persistenced and rule.get("persistenced"):
        names.append(facts.fill(rule["persistenced"], **values))
    return names


def driver_uses_dkms(stack: Stack, os_id: str) -> bool:
    rule = facts.table().driver_rule(stack.nvidia_driver_source, os_id, stack.nvidia_driver_branch)
    return bool(rule and rule.get("dkms"))


def _driver_plan(stack: Stack, os_id: str, kernel: str) -> ComponentPlan:
    of_driver = facts.table().packages_of_driver(os_id)
    names = driver_packages(stack, os_id, kernel=kernel)
    if driver_uses_dkms(stack, os_id):
        names.append(f"linux-headers-{kernel}")
    branch = stack.nvidia_driver_branch
    holds = [f"{pattern} at version {branch}.*" for pattern in of_driver["hold"]]
    notes = []
    if stack.nvidia_driver_source == "ubuntu":
        notes.append(
            "Canonical-signed prebuilt modules for the running kernel (no MOK needed); without them "
            f"for {kernel}, DKMS (nvidia-dkms-{branch}-...) is installed instead."
        )
    return ComponentPlan(
        "nvidia_driver", stack.nvidia_driver_source, names, holds, list(of_driver["blacklist"]), notes
    )


def _cuda_plan(stack: Stack, row: dict | None) -> ComponentPlan:
    if stack.cuda_source == "distro":
        return ComponentPlan(
            "cuda",
            "distro",
            ["nvidia-cuda-toolkit"],
            notes=[f"CUDA {stack.cuda_version}, in /usr (no /usr/local/cuda)"],
        )
    directory = (row or {}).get("cuda_repo") or "?"
    return ComponentPlan(
        "cuda",
        "cuda-repo",
        ["cuda-keyring", f"cuda-toolkit-{stack.cuda_version.replace('.', '-')}"],
        notes=[f"NVIDIA's {directory} repository; /usr/local/cuda-{stack.cuda_version}"],
    )


def _cudnn_plan(stack: Stack, gpus: tuple[GpuDevice, ...]) -> ComponentPlan:
    line = cudnn_release(stack.cudnn_version, stack.cuda_version, gpus)
    package = cudnn_package(stack.cudnn_version, stack.cuda_version)
    notes = [f"cuDNN {line.newest or line.release} for CUDA {stack.cuda_version.split('.')[0]}"]
    if line.release.count(".") == 2:  # a point release: pinned, as the cudnn role does
        package = f"{package}={line.release}*"
        notes = [f"cuDNN {line.release}, the last release for this CUDA or these GPUs (pinned)"]
    return ComponentPlan("cudnn", stack.cudnn_source, [package], notes=notes)


def plan(
    stack: Stack, os_key: str, gpus: tuple[GpuDevice, ...], components: list[str], kernel: str = KERNEL
) -> list[ComponentPlan]:
    """The install plan of each selected GPU component (nvidia_driver, cuda, cudnn)."""
    row = facts.table().os_row(os_key)
    os_id = os_key.split("-")[0]
    plans = []
    if "nvidia_driver" in components:
        plans.append(_driver_plan(stack, os_id, kernel))
    if "cuda" in components:
        plans.append(_cuda_plan(stack, row))
    if "cudnn" in components:
        try:
            plans.append(_cudnn_plan(stack, gpus))
        except ValueError as error:
            plans.append(ComponentPlan("cudnn", stack.cudnn_source, [], notes=[str(error)]))
    return plans
