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
