"""``plan`` and ``provision`` (and the steps ``ci`` shares): validate, choose, confirm, run
Ansible, record, check idempotence, report per host.

Re-runs are fast: with ``fast``, each chosen host's state is read first (one SSH session each)
and Ansible runs only for the hosts and components that drifted (provision/converged.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from provision import deploy
from provision.commands.interaction import Interaction
from provision.errors import DeclinedError
from provision.runner import RunResult
from provision.workspace import Workspace

SECOND_RUN = "idempotence check (second run)"


@dataclass
class ConvergeResult:
    title: str
    check: bool
    quick: deploy.ConvergedCheck | None = None
    prepared: deploy.Prepared | None = None
    run: RunResult | None = None
    #: The second run of ``--check-idempotence``.
    second: RunResult | None = None
    #: The per-host report (provision/report.py).
    reports: list[dict] = field(default_factory=list)

    @property
    def all_converged(self) -> bool:
        """Nothing ran: every chosen host was found converged."""
        return self.run is None

    @property
    def not_idempotent(self) -> list:
        return list(self.second.changed_tasks) if self.second else []

    @property
    def succeeded(self) -> bool:
        if self.run is None:
            return True
        return self.run.succeeded and (self.second is None or (self.second.succeeded
                                                               and not self.second.changed_tasks))

    def to_dict(self) -> dict:
        if self.run is None:
            return {"run": _converged_run(self.quick), "converged": self.quick.to_dict()}
        found = {"run": self.run.to_dict(),
                 "components": {t.host.name: {"components": t.components, "reason": t.reason}
                                for t in self.prepared.targets}}
        if self.quick is not None:
            found["converged"] = self.quick.to_dict()
        if self.second is not None:
            found["idempotence"] = self.second.to_dict()
        found["report"] = self.reports
        return found


def _converged_run(quick: deploy.ConvergedCheck) -> dict:
    hosts = [{"host": h, "status": "ok", "ok": 0, "changed": 0, "failed": 0, "unreachable": 0,
              "skipped": 0, "retries": 0, "messages": [], "warnings": d.warnings}
             for h, d in quick.decisions.items()]
    return {"status": "successful", "hosts": hosts, "changed_tasks": []}


@dataclass
class RunOptions:
    """How Ansible runs: the same for every run of one command."""

    verbosity: int = 0
    vault_password_file: str | None = None
    become_password: str | None = None


def converge(workspace: Workspace, limit: str | None = None, components: str | None = None, *,
             check: bool, ui: Interaction, idempotence: bool = False, retry_failed: bool = False,
             fast: bool = False, options: RunOptions | None = None) -> ConvergeResult:
    """Everything ``plan`` (``check``) and ``provision`` do; raises before touching a host
    when the input is invalid or the user declines."""
    options = options or RunOptions()
    result = ConvergeResult("plan (check mode, nothing changes)" if check else "provision", check)
    if fast:
        result.quick = deploy.check_converged(workspace, limit, components)
        if result.quick.all_converged:
            deploy.refresh_converged(result.quick)
            return result
        prepared = deploy.narrow_to_drift(result.quick)
    else:
        prepared = deploy.prepare(workspace, limit, components, retry_failed=retry_failed)
    result.prepared = prepared
    announce(prepared, ui)
    if not check and not ui.confirm(f"Provision {', '.join(prepared.names)}?"):
        raise DeclinedError("not confirmed: nothing was changed")
    options.become_password = ui.become_password()
    if result.quick is not None:
        deploy.refresh_converged(result.quick)
    result.run = apply(prepared, ui, result.title, options, check=check)
    if idempotence and result.run.succeeded:
        result.second = apply(prepared, ui, SECOND_RUN, options, check=check, second=True)
    result.reports = host_reports(prepared, result.run, check)
    return result


def announce(prepared: deploy.Prepared, ui: Interaction) -> None:
    """Before anything runs: each host's components and why, and the resolver's notes."""
    for t in prepared.targets:
        ui.say(f"{t.host.name}: components {', '.join(t.components) or 'none'} ({t.reason})")
    for host, notes in prepared.notes.items():
        for note in notes:
            ui.say(f"note {host}: {note}")


def apply(prepared: deploy.Prepared, ui: Interaction, title: str, options: RunOptions, *,
          check: bool = False, second: bool = False, record_converged: bool = True,
          playbook: str = "site.yml", extravars: dict | None = None) -> RunResult:
    """One Ansible run over the prepared hosts, with the converged records kept honest: a run
    that changes hosts forgets their records first (a run cut short, even by SIGKILL, must not
    leave one that vouches for a host) and records the hosts that succeeded afterwards.
    A ``second`` run (the idempotence check) leaves the first run's records as they are;
    ``record_converged=False`` records only the outcome (for ``--retry-failed``)."""
    changes = not check and not second
    if changes:
        deploy.forget_converged(prepared)
    with ui.progress(title, prepared.names) as progress:
        run = deploy.run(
            prepared, check=check, diff=check or options.verbosity > 0,
            verbosity=options.verbosity, become_password=options.become_password,
            vault_password_file=options.vault_password_file,
            on_update=progress.update if progress is not None else None,
            playbook=playbook, extravars=extravars,
        )
    if changes:
        deploy.record(prepared.workspace, run)
        if record_converged:
            deploy.record_converged(prepared, run)
    return run


def host_reports(prepared: deploy.Prepared, run: RunResult, check: bool) -> list[dict]:
    from provision import report

    return [report.host_report(t, run.hosts.get(t.host.name), check, prepared.facts.get(t.host.name))
            for t in prepared.targets]
