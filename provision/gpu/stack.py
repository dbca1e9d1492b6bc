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
Ansible roles read too, so a value chosen here is the value a role installs: see
:mod:`provision.gpu.defaults`. The rules live in :mod:`provision.gpu.rules`, one module per
concern.
"""

from itertools import product

from provision import registry
from provision.gpu import table
from provision.gpu.defaults import auto_flavor, default_branch, defaults
from provision.gpu.lookup import defaults_row, os_key, os_name, os_row
from provision.gpu.model import HostFacts, Problem, Resolution, Stack
from provision.gpu.rules.context import Checker
from provision.gpu.rules.cuda import check_cuda
from provision.gpu.rules.cudnn import check_cudnn
from provision.gpu.rules.driver import check_driver
from provision.gpu.rules.host import check_host
from provision.gpu.rules.ollama import check_ollama
from provision.gpu.variables import CHOICES, VARIABLES, normalise

#: Each component's rules, in the order their problems are reported (the host's come first).
RULES = (
    ("nvidia_driver", check_driver),
    ("cuda", check_cuda),
    ("cudnn", check_cudnn),
    ("ollama", check_ollama),
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
        value, problem, note = normalise(name, host_vars.get(name))
        if problem:
            problems.append(problem)
        if note:
            notes.append(note)
        values[name] = value if value is not None else getattr(base, name)
        auto.discard(name) if value is not None else None
    key, row = defaults_row(os_key(facts))
    # "auto" follows a chosen source, as the roles resolve it.
    if "nvidia_driver_branch" in auto:
        values["nvidia_driver_branch"] = default_branch(facts, values["nvidia_driver_source"], key)
    if "nvidia_driver_flavor" in auto and facts.gpus:
        values["nvidia_driver_flavor"] = auto_flavor(facts, values["nvidia_driver_source"], row)
    if "cuda_version" in auto:
        distro = values["cuda_source"] == "distro" and row.get("distro_cuda")
        values["cuda_version"] = str(row["distro_cuda"]) if distro else table.table().default_cuda
    stack = Stack(**values)
    checker = Checker(stack, facts, set(components))
    check_host(checker)
    for component, check in RULES:
        if component in checker.components:
            check(checker)
    return Resolution(stack, problems + checker.problems, notes + checker.notes)


# --- recommend ----------------------------------------------------------------------------

#: What ``rigforge probe`` recommends a stack for: the components whose packages it decides.
RECOMMEND_COMPONENTS: tuple[str, ...] = registry.gpu_packages()


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
    key = os_key(facts)
    sources = [base.nvidia_driver_source] + [
        s
        for s in CHOICES["nvidia_driver_source"]
        if s != base.nvidia_driver_source and (key is None or s == "cuda-repo" or s == key[0])
    ]
    known = table.table()
    distro_branch = str((os_row(key) or {}).get("distro_driver_branch", "")) or base.nvidia_driver_branch
    branches = list(dict.fromkeys([base.nvidia_driver_branch, distro_branch, *known.supported_long_term()]))
    flavors = list(dict.fromkeys([base.nvidia_driver_flavor, *CHOICES["nvidia_driver_flavor"]]))
    cudas = list(dict.fromkeys([(base.cuda_source, base.cuda_version), ("cuda-repo", known.default_cuda)]))
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
    row, _ = defaults_row(os_key(facts))
    reasons = [f"{os_name(row)} defaults: {_describe(base)}."]
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
