"""The tiers of ``rigforge verify``: what each asks of a host, and where its checks live.

- ``install``: what the roles put there is there (packages, files, services, holds);
- ``health``: the GPU is well (no Xid event this boot, a full PCIe link, no uncorrectable ECC
  error or pending remap, persistence mode and power limit as configured);
- ``workload``: the rig computes (a container, PyTorch, Ollama and nvcc on the GPU).

A component's checks of tier T are in ``provision/checks/test_<component>[_T].py`` (install has
no suffix), so a verify of one tier collects only that tier's modules. On a host without a GPU
every health and workload check is skipped with its reason: it never passes for want of one.
"""

from provision.errors import UsageError

TIERS = ("install", "health", "workload")


def parse(text: str | None) -> list[str]:
    """``"install,health"`` -> ``["install", "health"]`` in TIERS order; ``None``: every tier.

    >>> parse("workload, install")
    ['install', 'workload']
    """
    if text is None:
        return list(TIERS)
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in TIERS]
    if not names or unknown:
        bad = ", ".join(repr(n) for n in unknown)
        raise UsageError(f"unknown tier {bad} in --tier" if unknown else "--tier is empty",
                         hint=f"valid tiers: {', '.join(TIERS)} (default: all)")
    return [t for t in TIERS if t in names]


def module_name(component: str, tier: str) -> str:
    """The check module of one component's tier: ``test_docker``, ``test_docker_workload``."""
    return f"test_{component}" if tier == "install" else f"test_{component}_{tier}"

