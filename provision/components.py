"""The stack's components, in the order they are applied, and parsing of user choices."""

from collections.abc import Iterable

from provision.errors import UsageError

#: Every component name rigforge knows, in apply order.
COMPONENTS: tuple[str, ...] = (
    "base",
    "nvidia_driver",
    "cuda",
    "cudnn",
    "docker",
    "nvidia_container_toolkit",
    "conda",
    "ollama",
)

DEFAULT_COMPONENTS: tuple[str, ...] = ("base",)


def parse_list(text: str | None) -> list[str] | None:
    """``"base, docker"`` -> ``["base", "docker"]``; ``None`` or empty means "no narrowing".

    >>> parse_list("base,docker")
    ['base', 'docker']
    """
    if text is None:
        return None
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise UsageError("--components is empty", hint=f"name one or more of: {', '.join(COMPONENTS)}")
    return validate(names, source="--components")


def validate(names: Iterable[str], source: str) -> list[str]:
    """Check names against the known components; keep apply order."""
    names = list(names)
    unknown = [n for n in names if n not in COMPONENTS]
    if unknown:
        raise UsageError(
            f"unknown component {', '.join(repr(n) for n in unknown)} in {source}",
            hint=f"valid components: {', '.join(COMPONENTS)}",
        )
    return [c for c in COMPONENTS if c in names]


def host_components(host_vars: dict, host: str) -> list[str]:
    """The components a host selects through ``rigforge_components``."""
    value = host_vars.get("rigforge_components", list(DEFAULT_COMPONENTS))
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(
            f"rigforge_components for host {host!r} must be a list of names, got {value!r}",
            hint="write it as a YAML list, e.g. rigforge_components: [base]",
        )
    return validate(value, source=f"rigforge_components of host {host!r}")


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
