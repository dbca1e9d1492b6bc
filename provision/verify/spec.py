"""What the checks of ``rigforge verify`` run against: testinfra's host spec of each host,
the check modules of its components, and where the commands they ran are recorded."""

from pathlib import Path

from provision import assets
from provision.targets import Target
from provision.verify.tiers import TIERS, module_name

#: Per host, the commands the checks ran last time (see provision/checks/prefetch.py).
PREFETCH_DIR = "verify-commands"


def scoped(state_dir: Path, name: str, components: list[str] | None, tiers: list[str] | None) -> Path:
    """The directory of ``name`` (PREFETCH_DIR, memo.MEMO_DIR) for one scope of verify: a verify
    narrowed by --components or --tier records and replays only its own commands (a verify of
    the install tier must not start by replaying the workload tier's `docker run`), and keeps
    its own results."""
    if not components and not tiers:
        return state_dir / name
    return state_dir / f"{name}.{'+'.join(tiers or ['all'])}.{'+'.join(components or ['all'])}"


def refuse_empty_tiers(targets: list[Target], tiers: list[str]) -> None:
    """A verify of tiers that hold no check for any chosen host's components cannot be
    honoured: refused (exit 2) before any check runs, naming the components that have some."""
    from provision import registry
    from provision.errors import UsageError

    def has(component: str, tier: str) -> bool:
        return (assets.checks_dir() / f"{module_name(component, tier)}.py").is_file()

    if any(has(c, tier) for t in targets for c in t.components for tier in tiers):
        return
    hosts = ", ".join(f"{t.host.name} ({', '.join(t.components) or 'no components'})" for t in targets)
    offered = "; ".join(f"{tier}: {', '.join(c for c in registry.names() if has(c, tier))}" for tier in tiers)
    raise UsageError(f"no check of tier {', '.join(tiers)} applies to the components of {hosts}",
                     hint=f"checks of that tier exist for {offered}; choose another --tier, or leave it out")


def host_spec(target: Target) -> str:
    """testinfra's host spec: ssh through the workspace's ssh_config, sudo unless root."""
    user = target.host.user
    sudo = "?sudo=true" if user and user != "root" else ""
    return f"ssh://{target.host.name}{sudo}"


def check_modules(targets: list[Target], tiers: list[str] | None = None) -> list[str]:
    """The check modules of the components these hosts get, of the tiers asked for (default:
    all): collecting the others (importing them, then deselecting every check) would only slow
    the run down."""
    wanted = {c for t in targets for c in t.components}
    paths = [assets.checks_dir() / f"{module_name(c, tier)}.py"
             for c in sorted(wanted) for tier in (tiers or TIERS)]
    found = [str(p) for p in paths if p.is_file()]
    return found or [str(assets.checks_dir())]
