"""What ``plan`` and ``provision`` do between parsing and printing: validate, run, record.

Validation happens in :func:`prepare`, before any host is touched: the inventory, the
components, ``--limit``, and the resolver's verdict on every host's stack.
"""

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from provision import components as comp
from provision import fsutil, registry, targets
from provision.errors import UsageError
from provision.runner import RunResult, run_playbook
from provision.workspace import Workspace

if TYPE_CHECKING:
    from provision.converged import Decision

LAST_RUN = "last-run.json"


@dataclass
class Prepared:
    workspace: Workspace
    targets: list[targets.Target]
    narrowing: list[str] | None
    notes: dict[str, list[str]] = field(default_factory=dict)
    #: Facts read from the hosts just now (the resolver's input), by host.
    facts: dict[str, dict] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [t.host.name for t in self.targets]


def prepare(
    workspace: Workspace,
    limit: str | None,
    components: str | None,
    retry_failed: bool = False,
    probe: bool = True,
    overrides: dict | None = None,
    refuse_unselected: bool = True,
) -> Prepared:
    """Everything a run needs, validated; raises :class:`UsageError` and touches nothing.

    ``overrides`` are variables the run will pass as extra vars (e.g. a new driver
    branch): the resolver judges each host's stack with them applied.
    """
    narrowing = comp.parse_list(components)
    if retry_failed:
        if limit:
            raise UsageError("--retry-failed and --limit cannot be combined",
                             hint="--retry-failed chooses the hosts that failed last time")
        limit = ",".join(failed_last_time(workspace))
    from provision import stack_check

    chosen = targets.resolve(workspace, limit, narrowing, refuse_unselected=refuse_unselected)
    for target in chosen:
        target.vars.update(overrides or {})
    from provision import validate

    validate.check(workspace, chosen)
    facts, errors = probe_facts(workspace, chosen) if probe else ({}, {})
    targets.settle_auto(chosen, narrowing, facts, errors, refuse_unselected)
    notes = stack_check.check(chosen, facts) if stack_check.needs_check(chosen) else {}
    return Prepared(workspace, chosen, narrowing, notes, facts)


def probe_facts(workspace: Workspace, chosen: list[targets.Target]) -> tuple[dict[str, dict], dict[str, str]]:
    """Fresh facts of the hosts that need them: every ``auto`` host (its components are
    chosen from them) and, where a GPU component runs, every host (the resolver judges the
    stack from them). Returns ``({host: facts}, {host: error})``; a host that does not answer
    keeps its recorded facts (``rigforge probe``) for the resolver."""
    from provision import stack_check

    wanted = chosen if stack_check.needs_check(chosen) else [t for t in chosen if t.auto]
    if not wanted:
        return {}, {}
    from provision.probe import probe_hosts

    results = probe_hosts(workspace, [t.host for t in wanted])
    return ({r.host: r.facts for r in results if r.facts},
            {r.host: r.error for r in results if r.error})


def run(prepared: Prepared, *, extravars: dict | None = None, **options) -> RunResult:
    """:func:`~provision.runner.run_playbook` on the prepared hosts and components; ``options``
    are its keyword arguments (check, diff, verbosity, passwords, on_update, playbook)."""
    return run_playbook(
        prepared.workspace,
        limit=",".join(prepared.names),
        tags=prepared.narrowing,
        expected_hosts=prepared.names,
        **options,
        # The choice made here (auto resolved from the probe) is the one the plays apply,
        # so that they need not read the PCI bus again.
        extravars={"rigforge_chosen_components": chosen_components(prepared), **(extravars or {})},
    )


def chosen_components(prepared: Prepared) -> dict[str, list[str]]:
    """Each host's whole selection (a narrowing is applied by tags, not here)."""
    return {t.host.name: comp.host_components(t.vars, t.host.name) for t in prepared.targets}


def record(workspace: Workspace, result: RunResult) -> None:
    """Remember each host's outcome, for ``--retry-failed`` (atomic write)."""
    path = workspace.state_dir / LAST_RUN
    previous = _load(workspace)
    hosts = {**previous.get("hosts", {}), **{n: h.status for n, h in result.hosts.items()}}
    fsutil.write_text(path, json.dumps({"hosts": hosts}, indent=2, sort_keys=True) + "\n")


def pin_branch(workspace: Workspace, names: list[str], branch: str) -> list[str]:
    """Record a driver branch that update-drivers moved hosts to, as each host's variable.

    Returns the hosts where a host_vars file still sets another branch (it outranks
    hosts.yml), so that the caller can say where to change it.
    """
    from provision import hostvars
    from provision.inventory import Inventory

    if not names:
        return []
    inventory = Inventory(workspace.inventory)
    for name in names:
        inventory.set_host_var(name, "nvidia_driver_branch", branch)
    inventory.save()
    effective = hostvars.inventory_vars(workspace)
    return [n for n in names if str(effective.get(n, {}).get("nvidia_driver_branch")) != branch]


def failed_last_time(workspace: Workspace) -> list[str]:
    hosts = _load(workspace).get("hosts", {})
    failed = sorted(n for n, status in hosts.items() if status in ("failed", "unreachable"))
    if not failed:
        raise UsageError(
            "no host failed in the last recorded run",
            hint="run `rigforge provision` first; --retry-failed re-runs only the hosts "
            "that failed or were unreachable",
        )
    return failed


def _load(workspace: Workspace) -> dict:
    path = workspace.state_dir / LAST_RUN
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError:
        # Written atomically, so a broken file means someone edited it: start afresh.
        return {}


# --- converged re-runs (provision/converged.py) -------------------------------------------------


@dataclass
class ConvergedCheck:
    """The converged check's verdict for a run: per host, what runs and what is skipped."""

    fingerprint: str
    decisions: dict[str, "Decision"]
    prepared: Prepared | None = None
    #: Each host's whole component selection (known when ``prepared`` is).
    selected: dict[str, list[str]] = field(default_factory=dict)

    @property
    def all_converged(self) -> bool:
        return all(not d.run for d in self.decisions.values())

    def to_dict(self) -> dict:
        return {
            host: {"ran": d.run, "skipped": d.skip, "reasons": d.reasons,
                   "warnings_of_last_run": d.warnings}
            for host, d in self.decisions.items()
        }


def check_converged(workspace: Workspace, limit: str | None, components: str | None) -> ConvergedCheck:
    """Read every chosen host's state (one SSH session each) and decide what must run.

    While the workspace is unchanged since every chosen host's record, nothing is loaded
    through Ansible; otherwise :func:`prepare` validates as for any run (raising
    :class:`UsageError` before any host is touched) and the desired digests are recomputed.
    """
    from provision import converged
    from provision.inventory import Inventory

    fp = converged.fingerprint(workspace)
    record = converged.load(workspace)["hosts"]
    inventory = Inventory(workspace.inventory)
    hosts = [h.name for h in targets.parse_limit(inventory, limit)]
    narrowing = comp.parse_list(components)

    def ensure_ssh_config():  # only once the input is known to be valid: a refusal writes nothing
        if not workspace.ssh_config.is_file():
            from provision.hosts import write_ssh_config

            write_ssh_config(workspace, inventory)

    if all(record.get(h, {}).get("fingerprint") == fp for h in hosts):
        comp.refuse_unselected({h: record[h].get("selected", []) for h in hosts}, narrowing)
        ensure_ssh_config()
        states = converged.read_states(workspace, hosts)
        decisions = {
            h: converged.decide(h, comp.effective(record[h].get("selected", []), narrowing),
                                record[h], states[h], desired=None)
            for h in hosts
        }
        result = ConvergedCheck(fp, decisions)
        if result.all_converged:
            return result
    prepared = prepare(workspace, limit, components)
    ensure_ssh_config()
    recorded = [t.host.name for t in prepared.targets if t.host.name in record]
    states = converged.read_states(workspace, recorded)
    decisions = {}
    for t in prepared.targets:
        name = t.host.name
        desired = converged.desired_digests(workspace, t.components, t.vars)
        decisions[name] = converged.decide(name, t.components, record.get(name),
                                           states.get(name), desired)
    selected = {t.host.name: comp.host_components(t.vars, t.host.name) for t in prepared.targets}
    return ConvergedCheck(fp, decisions, prepared, selected)


def refresh_converged(check: ConvergedCheck) -> None:
    """Hosts found converged after the workspace changed keep their record for the new
    workspace, so that their next check is the fast one. Called once the command goes ahead
    (a refused or failed command writes nothing)."""
    from provision import converged

    if check.prepared is None:
        return
    unchanged = [h for h, d in check.decisions.items() if not d.run]
    if unchanged:
        converged.refresh(check.prepared.workspace, unchanged, check.fingerprint, check.selected)


def narrow_to_drift(check: ConvergedCheck) -> Prepared:
    """The prepared run, cut down to the hosts and components that must run."""
    prepared = check.prepared
    assert prepared is not None
    drifted = {h: d.run for h, d in check.decisions.items() if d.run}
    prepared.targets = [t for t in prepared.targets if t.host.name in drifted]
    wanted = {c for run in drifted.values() for c in run}
    prepared.narrowing = [c for c in registry.names() if c in wanted]
    for t in prepared.targets:
        t.components = [c for c in t.components if c in wanted]
    return prepared


def forget_converged(prepared: Prepared) -> None:
    """Before a run changes hosts: their next provision is a full one unless this run records."""
    from provision import converged

    converged.forget(prepared.workspace, prepared.names)


def record_converged(prepared: Prepared, result: RunResult) -> dict[str, list[str]]:
    """After a run: read the state of the hosts that succeeded and record it; forget the rest.

    Returns ``{host: recorded components}``. A host whose run failed (or was cut short) gets
    a full run next time.
    """
    from provision import converged

    workspace = prepared.workspace
    fp = converged.fingerprint(workspace)
    good = [t for t in prepared.targets
            if (h := result.hosts.get(t.host.name)) is not None and h.status in ("ok", "changed")]
    converged.forget(workspace, [t.host.name for t in prepared.targets if t not in good])
    states = converged.read_states(workspace, [t.host.name for t in good])
    recorded = {}
    for t in good:
        name = t.host.name
        state = states[name]
        if state.error:
            converged.forget(workspace, [name])
            continue
        selected = comp.host_components(t.vars, name)
        desired = converged.desired_digests(workspace, selected, t.vars)
        recorded[name] = converged.remember(workspace, name, selected, desired, state,
                                            t.components, fp, result.hosts[name].warnings)
    return recorded
