"""What the checks of ``rigforge verify`` run against: testinfra's host spec of each host,
the check modules of its components, and where the commands they ran are recorded."""

from provision import assets
from provision.targets import Target
from provision.verify.tiers import TIERS, module_name

#: Per host, the commands the checks ran last time (see provision/checks/prefetch.py).
PREFETCH_DIR = "verify-commands"


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
