"""The user's choice of components: ``auto`` resolved from a host's facts, ``--components``
and ``rigforge_components`` parsed and checked against :mod:`provision.registry`."""

from collections.abc import Iterable

from provision import registry
from provision.errors import UsageError

#: What ``rigforge_components: auto`` (the default) means: chosen from the host's probed facts,
#: the GPU stack or the CPU stack of :mod:`provision.registry`.
AUTO = "auto"
DEFAULT_COMPONENTS = AUTO


class NoFactsError(UsageError):
    """An ``auto`` host that rigforge has no facts of: the caller probes it first."""


def auto_choice(facts: dict | None, host: str) -> tuple[list[str], str]:
    """``auto`` resolved from ``rigforge_facts``: the components and why.

    >>> auto_choice({"gpus": []}, "rig1")[0]
    ['base', 'docker', 'conda', 'ollama']
    """
    if not facts:
        raise NoFactsError(
            f"{host}: rigforge_components is auto and rigforge has no facts of this host",
            hint=f"run `rigforge probe {host}` (plan and provision probe it themselves), or list "
            "its components in rigforge_components",
        )
    gpus = facts.get("gpus")
    if gpus is None:
        raise NoFactsError(
            f"{host}: rigforge_components is auto, and the probe could not list its PCI devices",
            hint="list its components in rigforge_components (inventory/host_vars/HOST.yml)",
        )
    if gpus:
        names = ", ".join(sorted({g.get("name") or g.get("device_id", "?") for g in gpus}))
        return list(registry.gpu_stack()), f"auto: {len(gpus)} NVIDIA GPU(s) found ({names})"
    return list(registry.cpu_stack()), ("auto: no NVIDIA GPU on the PCI bus, so no GPU components "
                               "(Ollama runs on the CPU)")


def parse_list(text: str | None) -> list[str] | None:
    """``"base, docker"`` -> ``["base", "docker"]``; ``None`` or empty means "no narrowing".

    >>> parse_list("base,docker")
    ['base', 'docker']
    """
    if text is None:
        return None
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise UsageError("--components is empty", hint=f"name one or more of: {', '.join(registry.names())}")
    return validate(names, source="--components")


def validate(names: Iterable[str], source: str) -> list[str]:
    """Check names against the known components; keep apply order."""
    names, known = list(names), registry.names()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(
            f"unknown component {', '.join(repr(n) for n in unknown)} in {source}",
            hint=f"valid components: {', '.join(known)}",
        )
    return [c for c in known if c in names]


def is_auto(host_vars: dict) -> bool:
    return host_vars.get("rigforge_components", DEFAULT_COMPONENTS) == AUTO


def choice(host_vars: dict, host: str) -> tuple[list[str], str]:
    """The components a host selects through ``rigforge_components``, and why.

    ``auto`` reads the host's ``rigforge_facts`` (recorded by ``rigforge probe``, or put there
    by the caller from a fresh probe); :class:`NoFactsError` when there are none.
    """
    value = host_vars.get("rigforge_components", DEFAULT_COMPONENTS)
    if value == AUTO:
        return auto_choice(host_vars.get("rigforge_facts"), host)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(
            f"rigforge_components for host {host!r} must be auto or a list of names, got {value!r}",
            hint="write auto, or a YAML list such as rigforge_components: [base, docker]",
        )
    return validate(value, source=f"rigforge_components of host {host!r}"), "rigforge_components lists them"


def host_components(host_vars: dict, host: str) -> list[str]:
    """The components a host selects (see :func:`choice`)."""
    return choice(host_vars, host)[0]


def refuse_unselected(selected: dict[str, list[str]], narrowing: list[str] | None,
                      option: str = "--components") -> None:
    """Refuse a narrowing that names a component some chosen host does not select: running
    nothing there and reporting success would tell the user it is installed."""
    if narrowing is None:
        return
    problems = [
        f"{host} does not select {', '.join(c for c in narrowing if c not in have)} "
        f"(its components: {', '.join(have) or 'none'})"
        for host, have in selected.items()
        if any(c not in have for c in narrowing)
    ]
    if problems:
        fix = "drop --components" if option == "--components" else "change --limit"
        raise UsageError(
            "; ".join(problems),
            hint=f"add it to rigforge_components (inventory/host_vars/HOST.yml or group_vars), "
            f"or {fix}, or --limit the hosts that select it; nothing was run",
        )


def effective(selected: list[str], narrowing: list[str] | None) -> list[str]:
    """What actually runs on a host: its selection, narrowed by ``--components``."""
    if narrowing is None:
        return selected
    return [c for c in selected if c in narrowing]
