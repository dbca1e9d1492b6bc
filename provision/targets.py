"""Which hosts a run touches and which components each gets: validated before anything runs."""

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field

from provision import components, registry
from provision.errors import HostFailedError, UsageError
from provision.inventory import Host, Inventory
from provision.workspace import Workspace


@dataclass
class Target:
    host: Host
    components: list[str]
    vars: dict
    #: ``rigforge_components: auto`` not yet resolved: ``components`` are the candidates
    #: (the whole stack, narrowed) until :func:`settle_auto` reads the host's facts.
    auto: bool = False
    #: Why the host gets its components, for plan and provision to print.
    reason: str = field(default="rigforge_components lists them")


def parse_limit(inventory: Inventory, limit: str | None) -> list[Host]:
    """Hosts matched by ``--limit`` (names, groups or shell patterns, comma-separated)."""
    hosts = inventory.hosts()
    if not hosts:
        raise UsageError(
            f"no hosts in {inventory.path}",
            hint="add one with `rigforge host add NAME --address ADDR` or `rigforge sandbox up NAME`",
        )
    if not limit:
        return hosts
    chosen: dict[str, Host] = {}
    for term in (t.strip() for t in limit.split(",")):
        if not term:
            continue
        matches = [
            h for h in hosts
            if fnmatch.fnmatchcase(h.name, term) or term in h.groups
        ]
        if not matches:
            raise UsageError(
                f"--limit {term!r} matches no host or group in the inventory",
                hint=f"hosts: {', '.join(h.name for h in hosts)}; "
                f"groups: {', '.join(inventory.group_names()) or 'none'}",
            )
        chosen.update((h.name, h) for h in matches)
    return [h for h in hosts if h.name in chosen]


def resolve(
    workspace: Workspace, limit: str | None, narrowing: list[str] | None,
    host_vars: Callable[[Workspace], dict[str, dict]] | None = None,
    refuse_unselected: bool = True,
) -> list[Target]:
    """Validate the limit and every host's component choices; nothing is touched.

    A ``narrowing`` that names a component a chosen host does not select is refused; with
    ``refuse_unselected`` false such a host keeps only what it selects (possibly nothing),
    for the caller to report. A host whose ``rigforge_components`` is ``auto`` is left
    unsettled (``Target.auto``), for :func:`settle_auto` once its facts are read.

    ``host_vars`` gives ``{host: vars}`` (default: :func:`provision.hostvars.resolve`); it is
    called only once the inventory and the limit are known to be valid.
    """
    inventory = Inventory(workspace.inventory)
    hosts = parse_limit(inventory, limit)
    if host_vars is None:
        from provision import hostvars  # Ansible's inventory loader: heavy, and only needed here

        host_vars = hostvars.resolve
    all_vars = host_vars(workspace)
    targets, selected = [], {}
    for host in hosts:
        hvars = all_vars.get(host.name, {})
        if components.is_auto(hvars):
            targets.append(Target(host, components.effective(list(registry.gpu_stack()), narrowing),
                                  hvars, auto=True, reason="auto: not probed yet"))
            continue
        selected[host.name] = components.host_components(hvars, host.name)
        targets.append(Target(host, components.effective(selected[host.name], narrowing), hvars))
    if refuse_unselected:
        components.refuse_unselected(selected, narrowing)
    _require_playbooks(workspace, {c for t in targets for c in t.components})
    return targets


def settle_auto(targets: list[Target], narrowing: list[str] | None,
                live: dict[str, dict] | None = None, errors: dict[str, str] | None = None,
                refuse_unselected: bool = True) -> None:
    """Resolve each ``auto`` target from its facts: ``live`` ones (a probe just now) first,
    else those recorded by ``rigforge probe``. Raises :class:`UsageError` for a host with
    neither, and for a narrowing that the chosen stacks do not include."""
    live, errors = live or {}, errors or {}
    selected = {}
    for target in (t for t in targets if t.auto):
        name = target.host.name
        if live.get(name):
            target.vars["rigforge_facts"] = live[name]
        try:
            chosen, why = components.choice(target.vars, name)
        except components.NoFactsError:
            if name not in errors:
                raise
            raise HostFailedError(
                f"{name}: cannot choose its components (rigforge_components is auto, and no "
                f"facts are recorded): {errors[name]}",
                hint="bring the host up and run again, or list its components in "
                "rigforge_components; nothing was run",
            ) from None
        if not live.get(name):
            when = target.vars["rigforge_facts"].get("probed_at", "an earlier probe")
            why += f" (facts recorded {when}: the host was not probed now)"
        selected[name] = chosen
        target.components = components.effective(chosen, narrowing)
        target.auto, target.reason = False, why
    if refuse_unselected:
        components.refuse_unselected(selected, narrowing)


def _require_playbooks(workspace: Workspace, wanted: set[str]) -> None:
    """A workspace made by an older rigforge lacks the newer components' roles."""
    missing = sorted(c for c in wanted if not (workspace.root / "playbooks" / f"{c}.yml").is_file())
    if missing:
        raise UsageError(
            f"this workspace has no playbook for {', '.join(missing)} (it predates them)",
            hint="run `rigforge init --force` to refresh roles, playbooks and site.yml; "
            "your inventory, vars and known_hosts are kept",
        )
