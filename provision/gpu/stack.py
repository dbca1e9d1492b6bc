"""The compatibility resolver: which driver, CUDA and cuDNN a host gets, and why not others.

``rigforge plan``, ``provision`` and ``probe`` call it before any host is touched. It reads
the user's stack variables (each may be "auto"), the host's facts (OS, GPUs, Secure Boot)
and the host's components, and returns the stack that will be installed plus every rule it
breaks, each as a Problem whose message names the conflicting values and a working
alternative:

>>> facts = HostFacts("ubuntu", "24.04", "x86_64")
>>> chosen = {"cuda_version": "12.8", "nvidia_driver_branch": "535"}
>>> resolve(chosen, facts, ["nvidia_driver", "cuda"]).problems[0].message
'CUDA 12.8 needs driver >= 570; nvidia_driver_branch is 535. Use 580 or CUDA 12.2.'

"auto" means the host's row of the facts table (:mod:`provision.gpu.table`), which the
Ansible roles read too, so a value chosen here is the value a role installs.
"""

import re
from dataclasses import dataclass, field, fields
from itertools import product

from provision.gpu import pci, table
from provision.gpu.parsers import GpuDevice, KernelModule, MokKey, OsRelease, SecureBoot

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

GPU_COMPONENTS: tuple[str, ...] = ("nvidia_driver", "cuda", "cudnn")

#: Flavor rule of an OS row's defaults: open kernel modules when every GPU is Turing or
#: newer (or no GPU is known), proprietary when any GPU is older.
OPEN_FROM_TURING = "open-from-turing"

#: The row used for a host that was not probed (no OS facts).
UNPROBED_DEFAULTS = "ubuntu-24.04"

OS_NAMES = {"debian": "Debian", "ubuntu": "Ubuntu"}

#: The first Turing device ID; an unknown ID below it is taken as older (as the role does).
FIRST_TURING_DEVICE_ID = 0x1E00


def _t() -> table.Table:
    return table.table()


def cuda_releases() -> tuple[str, ...]:
    """The CUDA releases rigforge knows (cuda_version must be one of them)."""
    return _t().cuda_releases


def cuda_min_driver(cuda_version: str) -> int | None:
    """The driver branch a CUDA release needs: ``cuda_min_driver("12.8") == 570``."""
    return _t().cuda_min_branch(cuda_version)


def _generation(arch: str) -> table.Generation | None:
    return _t().generations.get(arch)


def _open_module_architectures() -> tuple[str, ...]:
    return tuple(name for name, gen in _t().generations.items() if gen.open)


def _open_only_architectures() -> tuple[str, ...]:
    return tuple(name for name, gen in _t().generations.items() if gen.open_only)


@dataclass(frozen=True)
class HostFacts:
    """What rigforge knows about a host before touching it (None: not probed).

    secure_boot is "enabled", "disabled", "unsupported" or "unknown"; with
    secure_boot_validation_disabled the shim loads unsigned modules anyway.
    secure_boot_key is what ``mokutil --test-key`` says of the key DKMS signs modules with
    (Ubuntu: /var/lib/shim-signed/mok/MOK.der, else /var/lib/dkms/mok.pub): "enrolled",
    "not-enrolled", "pending", "blocked", "no-key" or "unknown" (parsers.MOK_KEY_STATES).
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
        """Facts from the parsers' results (provision.gpu.parsers)."""
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


# --- helpers ------------------------------------------------------------------------------


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _os_key(facts: HostFacts) -> tuple[str, str] | None:
    if not facts.os_id:
        return None
    version = facts.os_version or ""
    if facts.os_id == "debian":
        version = version.split(".")[0]
    return (facts.os_id, version)


def _os_name(key: tuple[str, str] | None) -> str:
    if key is None:
        return "this host"
    row = _os_row(key)
    if row:
        return row["name"]
    return f"{OS_NAMES.get(key[0], key[0])} {key[1]}".strip()


def _row_key(key: tuple[str, str] | None) -> str | None:
    return f"{key[0]}-{key[1]}" if key else None


def _os_row(key: tuple[str, str] | None) -> dict | None:
    """The table's row for an OS key ("ubuntu", "24.04"), or None for an OS rigforge lacks."""
    return _t().os_row(_row_key(key))


def _supported(key: tuple[str, str] | None) -> bool:
    return _os_row(key) is not None


def _defaults_row(key: tuple[str, str] | None) -> tuple[tuple[str, str], dict]:
    """The OS row whose defaults apply: the host's own, else its family's first, else Ubuntu 24.04."""
    row = _os_row(key)
    if row is None:
        family = [r for r in _t().os_rows.values() if key and r["id"] == key[0]]
        row = family[0] if family else _t().os_row(UNPROBED_DEFAULTS)
    assert row is not None
    return (row["id"], row["version"]), row


def _known_gpus(facts: HostFacts) -> list[tuple[GpuDevice, str]]:
    pairs = []
    for gpu in facts.gpus:
        arch = gpu.architecture or pci.architecture(gpu.device_id)
        if arch:
            pairs.append((gpu, arch))
    return pairs


def _labels(gpus: list[tuple[GpuDevice, str]]) -> str:
    names: list[str] = []
    for gpu, _ in gpus:
        if gpu.label not in names:
            names.append(gpu.label)
    return ", ".join(names)


def _pre_turing(gpu: GpuDevice) -> bool:
    arch = gpu.architecture or pci.architecture(gpu.device_id)
    if arch:
        return arch not in _open_module_architectures()
    device_id = pci.parse_device_id(gpu.device_id)
    return device_id is not None and device_id < FIRST_TURING_DEVICE_ID


def _default_flavor(facts: HostFacts) -> str:
    return "proprietary" if any(_pre_turing(gpu) for gpu in facts.gpus) else "open"


def _auto_flavor(facts: HostFacts, source: str, row: dict) -> str:
    """Open on Turing and newer where the source has it (Debian 12's own packages do not)."""
    flavor = _default_flavor(facts)
    flavors = row.get("distro_driver_flavors")
    if source == "debian" and flavors and flavor not in flavors:
        return flavors[0]
    return flavor


def cuda_repo(os_id: str | None, os_version: str | None, arch: str | None) -> str | None:
    """NVIDIA's CUDA repo directory for a host, e.g. ``"ubuntu2404/x86_64"``; None if there is none."""
    row = _os_row(_os_key(HostFacts(os_id, os_version)))
    if row is None or not row.get("cuda_repo"):
        return None
    machine = row["cuda_repo_arches"].get(arch or "x86_64")
    return f"{row['cuda_repo']}/{machine}" if machine else None


def _compute(gpu: GpuDevice) -> tuple[int, int] | None:
    found = pci.chip(gpu.device_id)
    if found:
        return found.compute_capability
    arch = gpu.architecture or pci.architecture(gpu.device_id)
    return pci.ARCHITECTURE_COMPUTE_CAPABILITY.get(arch) if arch else None


def cudnn_release(cudnn_version: str, cuda_version: str, gpus: tuple[GpuDevice, ...] = ()) -> table.Cudnn:
    """The cuDNN release line a host gets: the current one, or the last that fits its CUDA and GPUs.

    >>> cudnn_release("9", "12.8").release
    '9'
    >>> cudnn_release("9", "11.8").release
    '9.10.2'

    Raises ValueError naming the reason when no line of that major fits.
    """
    cuda_major = _version(cuda_version)[0]
    computes = [c for c in (_compute(g) for g in gpus) if c]
    lines = [c for c in _t().cudnn if c.release.split(".")[0] == str(cudnn_version)]
    if not lines:
        known = sorted({c.release.split(".")[0] for c in _t().cudnn})
        raise ValueError(f"unknown cuDNN major {cudnn_version!r}; known: {', '.join(known)}")
    for line in lines:
        if cuda_major in line.cuda_majors and all(c >= line.min_compute for c in computes):
            return line
    majors = sorted({m for line in lines for m in line.cuda_majors})
    if cuda_major not in majors:
        raise ValueError(f"cuDNN {cudnn_version} is built for CUDA {_join_majors(tuple(majors))}, "
                         f"not CUDA {cuda_version}")
    oldest = min(line.min_compute for line in lines if cuda_major in line.cuda_majors)
    raise ValueError(f"no cuDNN {cudnn_version} release for CUDA {cuda_major} supports compute "
                     f"capability below {oldest[0]}.{oldest[1]}")


def cudnn_package(cudnn_version: str, cuda_version: str) -> str:
    """The NVIDIA repo package for a cuDNN major built for a CUDA release.

    >>> cudnn_package("9", "12.8")
    'cudnn9-cuda-12'

    cuDNN 8 is one package, libcudnn8, whose versions carry the CUDA release
    (``8.9.7.29-1+cuda12.2``).
    """
    line = cudnn_release(cudnn_version, cuda_version)
    return table.fill(line.package, cudnn=str(cudnn_version), cuda=str(_version(cuda_version)[0]))


def _join_majors(majors: tuple[int, ...]) -> str:
    names = [str(m) for m in majors]
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]


def newest_cuda_for_branch(branch: int) -> str | None:
    """The newest CUDA release whose full feature set a driver branch supports."""
    fitting = [cuda for cuda in cuda_releases() if (cuda_min_driver(cuda) or 0) <= branch]
    return max(fitting, key=_version) if fitting else None


def eol_warning(branch: str, today: str | None = None, installed: bool = False) -> str | None:
    """The warning for a driver branch past its end of life, naming the branch to move to."""
    found = _t().branch(branch)
    today = today or _t().checked
    if found is None or not found.eol_passed(today):
        return None
    targets = [b for b in _t().supported_long_term() if int(b) > found.number] or [_t().default_branch]
    target = _t().branch(targets[0])
    until = f", supported to {target.eol}" if target and target.eol else ""
    what = "The installed driver branch" if installed else "Driver branch"
    return (f"{what} {branch} reached its end of life in {found.eol} (no more security fixes); "
            f"move to {targets[0]}, the long-term branch{until} (`rigforge update-drivers --branch "
            f"{targets[0]}`).")


def eol_warnings(branch: str, loaded: str = "") -> list[str]:
    """The end-of-life warnings for a chosen branch and, when another one is loaded, for that."""
    found = [eol_warning(branch)]
    if loaded and loaded.split(".")[0] != branch:
        found.append(eol_warning(loaded.split(".")[0], installed=True))
    return [w for w in found if w]


def advised_branch(needed: int) -> int:
    """The branch to advise for a floor: the oldest at or above it that is still supported."""
    today = _t().checked
    for found in sorted(_t().branches, key=lambda b: b.number):
        if found.number >= needed and not found.eol_passed(today) and found.kind != "new-feature":
            return found.number
    return needed


def default_branch(facts: HostFacts, source: str, key: tuple[str, str] | None) -> str:
    """The branch "auto" means: the distribution's own for its source, else the long-term one,
    capped by the last branch of the oldest GPU generation on the host."""
    row = _os_row(key) if key else None
    if source == "debian" and row and row.get("distro_driver_branch"):
        return str(row["distro_driver_branch"])
    branch = int(_t().default_branch)
    for _, arch in _known_gpus(facts):
        gen = _generation(arch)
        if gen and gen.last_branch and int(gen.last_branch) < branch and arch != "Kepler":
            branch = int(gen.last_branch)
    return str(branch)


# --- defaults -----------------------------------------------------------------------------


def defaults(facts: HostFacts) -> Stack:
    """The "auto" stack for a host: its OS row of the table, the flavor chosen from its GPUs.

    A host without OS facts gets the UNPROBED_DEFAULTS row (Ubuntu 24.04).
    """
    key, row = _defaults_row(_os_key(facts))
    values = dict(row["defaults"])
    if values["nvidia_driver_flavor"] == OPEN_FROM_TURING:
        values["nvidia_driver_flavor"] = _auto_flavor(facts, values["nvidia_driver_source"], row)
    values["nvidia_driver_branch"] = default_branch(facts, values["nvidia_driver_source"], key)
    distro = values["cuda_source"] == "distro"
    values["cuda_version"] = str(row["distro_cuda"]) if distro else _t().default_cuda
    values["cudnn_source"] = "cuda-repo"
    values["cudnn_version"] = _t().default_cudnn
    return Stack(**values)


# --- value checks -------------------------------------------------------------------------

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
    majors = sorted({int(c.release.split(".")[0]) for c in _t().cudnn})
    installable = sorted({int(c.release.split(".")[0]) for c in _t().cudnn if c.installable})
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


def _normalise(name: str, value: object) -> tuple[str | None, Problem | None, str | None]:
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


# --- rules --------------------------------------------------------------------------------


class _Checker:
    """Applies the rules of the selected components to one stack on one host."""

    def __init__(self, stack: Stack, facts: HostFacts, components: set[str]):
        self.stack = stack
        self.facts = facts
        self.components = components
        self.key = _os_key(facts)
        self.os_name = _os_name(self.key)
        self.gpus = _known_gpus(facts)
        self.problems: list[Problem] = []
        self.notes: list[str] = []

    def problem(self, message: str, *variables: str) -> None:
        self.problems.append(Problem(message, variables))

    def gpus_of(self, archs: tuple[str, ...] | list[str]) -> list[tuple[GpuDevice, str]]:
        return [(gpu, arch) for gpu, arch in self.gpus if arch in archs]

    def branch(self) -> tuple[int, str] | None:
        """The driver the stack will run with: (branch, how to name it in messages)."""
        if "nvidia_driver" in self.components:
            branch = self.stack.nvidia_driver_branch
            return int(branch), f"nvidia_driver_branch is {branch}"
        if self.facts.driver_loaded:
            major = int(self.facts.driver_loaded.split(".")[0])
            return major, f"the loaded driver is {self.facts.driver_loaded} (nvidia_driver is not selected)"
        return None

    def use_branch(self, branch: int | str) -> str:
        """How to get a branch (or the first supported one above it), given the driver source."""
        branch = advised_branch(int(branch))
        if self.stack.nvidia_driver_source == "debian" and "nvidia_driver" in self.components:
            return f"Use nvidia_driver_source: cuda-repo with nvidia_driver_branch: {branch}"
        return f"Use {branch}"

    def run(self) -> None:
        self.check_host()
        if "nvidia_driver" in self.components:
            self.check_driver()
        if "cuda" in self.components:
            self.check_cuda()
        if "cudnn" in self.components:
            self.check_cudnn()
        if "ollama" in self.components:
            self.check_ollama()

    # host
    def check_host(self) -> None:
        gpu_work = self.components & set(GPU_COMPONENTS)
        if not self.facts.probed:
            if gpu_work:
                row, _ = _defaults_row(None)
                self.notes.append(
                    f"The host was not probed: using the {_os_name(row)} defaults and skipping the checks "
                    "that need its OS, GPUs and Secure Boot state (run `rigforge probe`)."
                )
            return
        if gpu_work and not _supported(self.key):
            supported = ", ".join(row["name"] for row in _t().os_rows.values())
            self.problem(
                f"{self.os_name} is not a supported OS for {', '.join(sorted(gpu_work))}; "
                f"rigforge supports {supported}.",
            )
        if gpu_work and not self.facts.gpus:
            self.notes.append(
                "No NVIDIA GPU was found on this host: the checks that depend on the GPU generation "
                "were skipped."
            )
        for gpu in self.facts.gpus:
            if not (gpu.architecture or pci.architecture(gpu.device_id)) and gpu_work:
                self.notes.append(
                    f"GPU {gpu.label} (10de:{gpu.device_id}) is not in rigforge's PCI table (too new, "
                    "or older than Kepler): the checks that depend on its generation were skipped."
                )

    def repo_problem(self, variable: str, what: str) -> None:
        if not self.facts.probed or not _supported(self.key):
            return  # an unprobed host has no facts to check; an unsupported OS is one problem already
        if cuda_repo(self.facts.os_id, self.facts.os_version, self.facts.arch) is not None:
            return
        repo = (_os_row(self.key) or {}).get("cuda_repo")
        if not repo:
            self.problem(
                f"NVIDIA's CUDA repo has no build for {self.os_name}; {variable} is cuda-repo.", variable
            )
        else:
            self.problem(
                f"NVIDIA's CUDA repo has no {repo} build for {self.facts.arch}; {variable} is cuda-repo, so "
                f"{what} cannot be installed on this host.",
                variable,
            )

    # nvidia_driver
    def check_driver(self) -> None:
        stack, key = self.stack, self.key
        source, branch = stack.nvidia_driver_source, int(stack.nvidia_driver_branch)
        if source == "debian":
            if key is not None and key[0] != "debian":
                self.problem(
                    f"nvidia_driver_source debian is Debian's own driver and this host runs {self.os_name}. "
                    "Use nvidia_driver_source: ubuntu or cuda-repo.",
                    "nvidia_driver_source",
                )
            row = _os_row(key) if key and key[0] == "debian" else _t().os_row("debian-12")
            debian_branch = str((row or {}).get("distro_driver_branch", ""))
            if row and stack.nvidia_driver_branch != debian_branch:
                self.problem(
                    f"{row['name']} ships driver branch {debian_branch} only; nvidia_driver_branch is "
                    f"{stack.nvidia_driver_branch}. Use nvidia_driver_branch: {debian_branch}, or "
                    f"nvidia_driver_source: cuda-repo for {stack.nvidia_driver_branch}.",
                    "nvidia_driver_source",
                    "nvidia_driver_branch",
                )
            flavors = (row or {}).get("distro_driver_flavors", []) if key and key[0] == "debian" else []
            if row and flavors and stack.nvidia_driver_flavor not in flavors:
                self.problem(
                    f"{row['name']}'s own driver packages carry the {' and '.join(flavors)} kernel modules "
                    f"only; nvidia_driver_flavor is {stack.nvidia_driver_flavor}. Use nvidia_driver_flavor: "
                    f"{flavors[0]}, or nvidia_driver_source: cuda-repo for the {stack.nvidia_driver_flavor} "
                    "modules.",
                    "nvidia_driver_flavor",
                )
        elif source == "ubuntu" and key is not None and key[0] != "ubuntu":
            self.problem(
                "nvidia_driver_source ubuntu installs Ubuntu's packaged driver and this host runs "
                f"{self.os_name}. Use nvidia_driver_source: cuda-repo"
                + (f" or debian (branch {(_os_row(key) or {}).get('distro_driver_branch', '')})."
                   if key[0] == "debian" and _os_row(key) else "."),
                "nvidia_driver_source",
            )
        elif source == "cuda-repo":
            self.repo_problem("nvidia_driver_source", "the driver")
        self.check_generations(branch)
        self.check_secure_boot()
        self.notes.extend(eol_warnings(stack.nvidia_driver_branch, self.facts.driver_loaded))
        loaded = self.facts.driver_loaded
        if loaded and loaded.split(".")[0] != stack.nvidia_driver_branch:
            self.notes.append(
                f"The loaded driver is {loaded}; provisioning installs branch {stack.nvidia_driver_branch} "
                "and reboots the host to load it."
            )

    def check_generations(self, branch: int) -> None:
        stack = self.stack
        kepler = self.gpus_of(["Kepler"])
        if kepler:
            self.problem(
                f"Kepler GPUs ({_labels(kepler)}) are not supported by any current driver branch; the last "
                "was 470, which rigforge does not install. Leave nvidia_driver out of rigforge_components "
                "for this host, or fit a Turing or newer GPU.",
                "nvidia_driver_branch",
            )
        for arch, gen in _t().generations.items():
            old, limit = self.gpus_of([arch]), int(gen.last_branch or 999)
            if arch != "Kepler" and old and branch > limit:
                self.problem(
                    f"{arch} GPUs ({_labels(old)}) are supported up to driver branch {limit}; "
                    f"nvidia_driver_branch is {stack.nvidia_driver_branch}. Use {limit}.",
                    "nvidia_driver_branch",
                )
        for arch, gen in _t().generations.items():
            new, floor = self.gpus_of([arch]), int(gen.first_branch or 0)
            if new and branch < floor:
                self.problem(
                    f"{arch} GPUs ({_labels(new)}) need driver >= {floor}; nvidia_driver_branch is "
                    f"{stack.nvidia_driver_branch}. {self.use_branch(floor)}.",
                    "nvidia_driver_branch",
                )
        open_archs = _open_module_architectures()
        closed_only = [(g, a) for g, a in self.gpus if a not in open_archs and a != "Kepler"]
        open_only = self.gpus_of(_open_only_architectures())
        if open_only and closed_only:
            self.problem(
                f"No driver flavor drives both {_labels(open_only)} (open kernel modules only) and "
                f"{_labels(closed_only)} (proprietary only) on one host. Move one of them to another host.",
                "nvidia_driver_flavor",
            )
        elif stack.nvidia_driver_flavor == "open" and closed_only:
            arch = closed_only[0][1]
            self.problem(
                f"The open kernel modules need Turing or newer; {_labels(closed_only)} is {arch} and "
                "nvidia_driver_flavor is open. Use nvidia_driver_flavor: proprietary.",
                "nvidia_driver_flavor",
            )
        elif stack.nvidia_driver_flavor == "proprietary" and open_only:
            fix = "Use nvidia_driver_flavor: open"
            if stack.nvidia_driver_source == "debian":
                fix += " with nvidia_driver_source: cuda-repo and nvidia_driver_branch: "
                fix += _t().default_branch
            self.problem(
                f"Blackwell GPUs ({_labels(open_only)}) work only with the open kernel modules; "
                f"nvidia_driver_flavor is proprietary. {fix}.",
                "nvidia_driver_flavor",
            )
        elif stack.nvidia_driver_flavor == "proprietary" and self.gpus and not closed_only:
            self.notes.append(
                f"The open kernel modules are recommended for Turing and newer GPUs ({_labels(self.gpus)}), "
                "and NVIDIA's default from branch 560; nvidia_driver_flavor is proprietary."
            )

    def check_secure_boot(self) -> None:
        """DKMS modules under an enforcing Secure Boot load only when their signing key is enrolled.

        DKMS signs every module it builds with one key (Ubuntu: update-secureboot-policy's
        /var/lib/shim-signed/mok/MOK.der; Debian and upstream DKMS: /var/lib/dkms/mok.pub,
        made at the first build). `rigforge probe` asks ``mokutil --test-key`` about it; once
        it is enrolled (one console visit), the DKMS sources work under Secure Boot.
        """
        source = self.stack.nvidia_driver_source
        if source == "ubuntu":
            return
        key_state = self.facts.secure_boot_key
        ubuntu = self.key is not None and self.key[0] == "ubuntu"
        key = "/var/lib/shim-signed/mok/MOK.der" if ubuntu else "/var/lib/dkms/mok.pub"
        if self.facts.secure_boot_enforcing:
            if key_state == "enrolled":
                self.notes.append(
                    f"Secure Boot is enforcing; DKMS signs the {source} driver's modules with {key}, which "
                    "is enrolled (mokutil --test-key), so the kernel will load them."
                )
                return
            console = (
                "reboot with a keyboard and screen attached and confirm the key in the blue MokManager "
                "screen (this needs the console; it cannot be done over SSH), then run again."
            )
            why = {
                "not-enrolled": f"DKMS's signing key {key} is not enrolled",
                "no-key": f"DKMS's signing key {key} does not exist yet",
                "pending": f"DKMS's signing key {key} is imported but not yet confirmed at the console",
                "blocked": f"DKMS's signing key {key} is blocked, in dbx or MokListX",
                "unknown": f"mokutil could not tell whether DKMS's signing key {key} is enrolled",
            }.get(key_state or "", f"the last probe did not test DKMS's signing key {key}: probe again")
            if key_state == "pending":
                steps = "R" + console[1:]
            elif key_state == "unknown":
                steps = (f"Check with `sudo mokutil --test-key {key}` (package mokutil); to enroll it, "
                         + ("`sudo update-secureboot-policy --enroll-key`" if ubuntu
                            else f"`sudo mokutil --import {key}`") + ", then " + console)
            elif ubuntu:
                steps = ("Use nvidia_driver_source: ubuntu (Canonical-signed prebuilt modules via "
                         "ubuntu-drivers), or enroll a MOK at the console: "
                         + ({"no-key": "`sudo update-secureboot-policy --new-key` (the key is missing), ",
                             "blocked": "`sudo update-secureboot-policy --new-key` (a new key), "}
                            .get(key_state or "", ""))
                         + "`sudo update-secureboot-policy --enroll-key`, then " + console)
            else:
                make = ("" if key_state in ("not-enrolled", "unknown") else
                        "install dkms and make its key (dkms 3.1 and newer, Debian 13: `sudo dkms "
                        "generate_mok`; Debian 12's dkms 3.0 makes it only at its first module build, so run "
                        "the command it would: `sudo openssl req -new -x509 -nodes -days 36500 -subj "
                        "\"/CN=DKMS module signing key\" -newkey rsa:2048 -keyout /var/lib/dkms/mok.key "
                        "-outform DER -out /var/lib/dkms/mok.pub`), then ")
                if key_state == "blocked":
                    make = (f"move {key} and its private key away so that DKMS makes a new pair at the next "
                            "build, then ")
                steps = (f"Enroll a MOK at the console: {make}`sudo mokutil --import {key}`, {console} "
                         "Or turn Secure Boot off in the firmware.")
            self.problem(
                f"Secure Boot is enforcing on this host and nvidia_driver_source is {source}, whose DKMS "
                f"modules are not signed by a key the firmware trusts: the kernel will refuse them "
                f"({why}). {steps}",
                "nvidia_driver_source",
            )
        elif self.facts.secure_boot == "unknown":
            self.notes.append(
                "The Secure Boot state is unknown (mokutil is missing or unclear); if Secure Boot is "
                f"enforcing, the {source} driver's DKMS modules will be refused until a MOK is enrolled."
            )

    # cuda
    def check_cuda(self) -> None:
        stack = self.stack
        cuda = stack.cuda_version
        row = _os_row(self.key) or {}
        distro = str(row.get("distro_cuda", "")) or None
        if stack.cuda_source == "distro" and self.key is not None:
            if distro and distro != cuda:
                self.problem(
                    f"{self.os_name}'s own CUDA (cuda_source: distro) is {distro}; cuda_version is {cuda}. "
                    f"Use cuda_version: {distro} or cuda_source: cuda-repo.",
                    "cuda_source",
                    "cuda_version",
                )
        elif stack.cuda_source == "cuda-repo":
            self.repo_problem("cuda_source", f"CUDA {cuda}")
            repo = row.get("cuda_repo")
            oldest = row.get("cuda_repo_oldest_cuda")
            if repo and oldest and _version(cuda) < _version(oldest):
                alternative = " or cuda_source: distro" if distro == cuda else ""
                self.problem(
                    f"NVIDIA's {repo} repo starts at CUDA {oldest}; cuda_version is {cuda}. "
                    f"Use cuda_version: {oldest} or newer{alternative}.",
                    "cuda_source",
                    "cuda_version",
                )
        driver = self.branch()
        needed = cuda_min_driver(cuda) or 0
        if driver is not None and driver[0] < needed:
            newest = newest_cuda_for_branch(driver[0])
            alternative = f" or CUDA {newest}" if newest else ""
            if "nvidia_driver" in self.components:
                variables: tuple[str, ...] = ("cuda_version", "nvidia_driver_branch")
                fix = f"{self.use_branch(needed)}{alternative}."
            else:
                variables = ("cuda_version",)
                fix = f"Install driver {needed}" + (f" or use CUDA {newest}." if newest else ".")
            self.problem(f"CUDA {cuda} needs driver >= {needed}; {driver[1]}. {fix}", *variables)
        for arch, gen in _t().generations.items():
            gpus, first = self.gpus_of([arch]), gen.first_cuda
            if gpus and first and _version(cuda) < _version(first):
                via = " with cuda_source: cuda-repo" if stack.cuda_source == "distro" else ""
                self.problem(
                    f"{arch} GPUs ({_labels(gpus)}) need CUDA >= {first}; cuda_version is {cuda}. "
                    f"Use cuda_version: {first} or newer{via}.",
                    "cuda_version",
                )
        for arch, gen in _t().generations.items():
            gpus, last = self.gpus_of([arch]), gen.last_cuda_major
            if gpus and last is not None and _version(cuda)[0] > last:
                newest = max((c for c in cuda_releases() if _version(c)[0] == last), key=_version)
                self.problem(
                    f"CUDA {last + 1} dropped {arch} GPUs ({_labels(gpus)}); cuda_version is {cuda}. "
                    f"Use CUDA {newest}.",
                    "cuda_version",
                )

    # cudnn
    def check_cudnn(self) -> None:
        stack = self.stack
        if stack.cudnn_source == "distro":
            where = self.os_name if self.key is not None else "Debian and Ubuntu"
            self.problem(
                f"cudnn_source is distro, but the distro's cuDNN package on {where} (nvidia-cudnn) only "
                "downloads cuDNN from NVIDIA at install time and installs nothing non-interactively. "
                "Use cudnn_source: cuda-repo.",
                "cudnn_source",
            )
        else:
            self.repo_problem("cudnn_source", f"cuDNN {stack.cudnn_version}")
        lines = [c for c in _t().cudnn if c.release.split(".")[0] == stack.cudnn_version]
        majors = tuple(sorted({m for line in lines for m in line.cuda_majors}))
        cuda_major = _version(stack.cuda_version)[0]
        if cuda_major not in majors:
            self.problem(
                f"cuDNN {stack.cudnn_version} is built for CUDA {_join_majors(majors)}; cuda_version is "
                f"{stack.cuda_version}. Use a CUDA {majors[-1]} release.",
                "cudnn_version",
                "cuda_version",
            )
            return
        try:
            line = cudnn_release(stack.cudnn_version, stack.cuda_version, tuple(g for g, _ in self.gpus))
        except ValueError as error:
            self.problem(f"{error}; the GPUs are {_labels(self.gpus)}. Leave cudnn out of "
                         "rigforge_components for this host.", "cudnn_version")
            return
        if line.release != lines[0].release:
            floor = ".".join(map(str, lines[0].min_compute))
            why = (f"CUDA {cuda_major}" if cuda_major not in lines[0].cuda_majors else
                   f"compute capability below {floor} ({_labels(self.gpus)})")
            self.notes.append(
                f"cuDNN {lines[0].newest or lines[0].release} is built for CUDA "
                f"{_join_majors(lines[0].cuda_majors)} and compute capability "
                f"{'.'.join(map(str, lines[0].min_compute))} or newer; for {why} the cudnn component "
                f"pins cuDNN {line.release}, the last release that supports it."
            )

    # ollama
    def check_ollama(self) -> None:
        driver = self.branch()
        if driver is None or (self.facts.probed and not self.facts.gpus):
            return
        branch, described = driver
        variables = ("nvidia_driver_branch",) if "nvidia_driver" in self.components else ()
        fix = self.use_branch if "nvidia_driver" in self.components else (lambda b: f"Install driver {b}")
        ollama = _t().raw["ollama"]
        floor, old_floor = int(ollama["min_branch"]), int(ollama["old_gpu_min_branch"])
        old = self.gpus_of(ollama["old_gpu_generations"])
        if old and branch < old_floor:
            gpu, arch = old[0]
            found = pci.chip(gpu.device_id)
            capability = ""
            if found:
                capability = ", compute capability {}.{}".format(*found.compute_capability)
            self.problem(
                f"Ollama needs driver >= {old_floor} for compute capability 5.0 to 6.2 GPUs "
                f"({_labels(old)}: {arch}{capability}); {described}. {fix(old_floor)}.",
                *variables,
            )
        elif branch < floor:
            self.problem(
                f"Ollama needs driver >= {floor}; {described}. {fix(_t().default_branch)}.",
                *variables,
            )


def resolve(host_vars: dict, facts: HostFacts, components: list[str]) -> Resolution:
    """The stack a host gets and every rule it breaks, for the host's selected components.

    host_vars holds the user's variables (missing or "auto" means the host's default);
    only the rules touching a selected component apply. A malformed value is reported and
    replaced by the default, so that it causes no further problems.
    """
    base = defaults(facts)
    problems: list[Problem] = []
    notes: list[str] = []
    values = {}
    auto = set(VARIABLES)
    for name in VARIABLES:
        value, problem, note = _normalise(name, host_vars.get(name))
        if problem:
            problems.append(problem)
        if note:
            notes.append(note)
        values[name] = value if value is not None else getattr(base, name)
        auto.discard(name) if value is not None else None
    key, row = _defaults_row(_os_key(facts))
    # "auto" follows a chosen source, as the roles resolve it.
    if "nvidia_driver_branch" in auto:
        values["nvidia_driver_branch"] = default_branch(facts, values["nvidia_driver_source"], key)
    if "nvidia_driver_flavor" in auto and facts.gpus:
        values["nvidia_driver_flavor"] = _auto_flavor(facts, values["nvidia_driver_source"], row)
    if "cuda_version" in auto:
        distro = values["cuda_source"] == "distro" and row.get("distro_cuda")
        values["cuda_version"] = str(row["distro_cuda"]) if distro else _t().default_cuda
    stack = Stack(**values)
    checker = _Checker(stack, facts, set(components))
    checker.run()
    return Resolution(stack, problems + checker.problems, notes + checker.notes)


# --- recommend ----------------------------------------------------------------------------

RECOMMEND_COMPONENTS: tuple[str, ...] = GPU_COMPONENTS


def _describe(stack: Stack) -> str:
    driver = {
        "ubuntu": "Ubuntu's archive (Canonical-signed prebuilt modules)",
        "debian": "Debian's archive",
        "cuda-repo": "NVIDIA's CUDA repo",
    }[stack.nvidia_driver_source]
    cuda = "the distribution" if stack.cuda_source == "distro" else "NVIDIA's CUDA repo"
    cudnn = "the distribution" if stack.cudnn_source == "distro" else "NVIDIA's CUDA repo"
    return (
        f"driver {stack.nvidia_driver_branch} ({stack.nvidia_driver_flavor} kernel modules) from {driver}, "
        f"CUDA {stack.cuda_version} from {cuda}, cuDNN {stack.cudnn_version} from {cudnn}"
    )


def _candidates(facts: HostFacts, base: Stack) -> list[Stack]:
    key = _os_key(facts)
    sources = [base.nvidia_driver_source] + [
        s
        for s in CHOICES["nvidia_driver_source"]
        if s != base.nvidia_driver_source and (key is None or s == "cuda-repo" or s == key[0])
    ]
    distro_branch = str((_os_row(key) or {}).get("distro_driver_branch", "")) or base.nvidia_driver_branch
    branches = list(dict.fromkeys([base.nvidia_driver_branch, distro_branch, *_t().supported_long_term()]))
    flavors = list(dict.fromkeys([base.nvidia_driver_flavor, *CHOICES["nvidia_driver_flavor"]]))
    cudas = list(dict.fromkeys([(base.cuda_source, base.cuda_version), ("cuda-repo", _t().default_cuda)]))
    found = []
    for source, branch, flavor, (cuda_source, cuda_version) in product(sources, branches, flavors, cudas):
        found.append(
            Stack(source, branch, flavor, cuda_source, cuda_version, base.cudnn_source, base.cudnn_version)
        )
    changes = {id(s): sum(getattr(s, n) != getattr(base, n) for n in VARIABLES) for s in found}
    return sorted(found, key=lambda s: changes[id(s)])


def recommend(
    facts: HostFacts, components: list[str] | tuple[str, ...] = RECOMMEND_COMPONENTS
) -> tuple[Stack, list[str]]:
    """The stack rigforge recommends for a host, and the reasons, for ``rigforge probe``.

    The defaults when they fit the host; otherwise the fitting stack closest to them; when
    nothing fits, the defaults and the reasons nothing does.
    """
    base = defaults(facts)
    row, _ = _defaults_row(_os_key(facts))
    reasons = [f"{_os_name(row)} defaults: {_describe(base)}."]
    first = resolve({}, facts, list(components))
    if first.ok:
        return base, reasons + first.notes
    for candidate in _candidates(facts, base):
        attempt = resolve(candidate.as_vars(), facts, list(components))
        if attempt.ok:
            changed = [
                f"{name}: {getattr(candidate, name)} (default {getattr(base, name)})"
                for name in VARIABLES
                if getattr(candidate, name) != getattr(base, name)
            ]
            why = " ".join(p.message for p in first.problems)
            reasons.append(f"The defaults do not fit this host: {why}")
            reasons.append("Recommended instead: " + "; ".join(changed) + ".")
            return candidate, reasons + attempt.notes
    reasons.append("No stack rigforge knows fits this host: " + " ".join(p.message for p in first.problems))
    return base, reasons + first.notes
