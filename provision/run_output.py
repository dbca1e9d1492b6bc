"""How the results of ``plan``, ``provision``, ``update-drivers`` and ``ci`` read on a terminal.

Tables go to a rich Console on stdout (:func:`terminal`); ``out`` prints text on stdout as it
is (JSON), ``err`` one line on stderr.
"""

from __future__ import annotations

from collections.abc import Callable

Err = Callable[[str], None]


def terminal():
    """A rich Console on stdout; for logs and pipes, wide enough that nothing is cut."""
    from rich.console import Console

    found = Console(highlight=False)
    return found if found.is_terminal else Console(highlight=False, width=160)


def print_converge(out: Err, err: Err, result, as_json: bool) -> None:
    """Everything after the run (the components were announced before it)."""
    if result.all_converged:
        print_all_converged(out, result.quick, as_json)
        return
    console = terminal()
    from provision import output
    from provision.commands.converge import SECOND_RUN
    from provision.progress import summary_table

    run, quick = result.run, result.quick
    if not as_json:
        if quick is not None:
            _converged_notes(console, quick)
        console.print(summary_table(run, result.title))
        if result.check:
            _planned(console, run)
        print_warnings(console, run)
        if quick is not None:
            _kept_warnings(console, quick, {h.name: h.warnings for h in run.hosts.values()})
        if result.second is not None:
            console.print(summary_table(result.second, SECOND_RUN))
    for task in result.not_idempotent:
        err(f"not idempotent: {task.host}: {task.task}")
    if as_json:
        out(output.dumps(result.to_dict()))
    else:
        from provision import report

        for text in (line for h in result.reports for line in report.lines(h)):
            console.print(text, markup=False, highlight=False)
    if not result.succeeded:
        print_failures(err, run)


def print_all_converged(out: Err, quick, as_json: bool) -> None:
    """Every chosen host is converged: say so, per host, without having run Ansible. Plain
    lines, no table: this is the common re-run, and it need not wait for rich to load."""
    if as_json:
        from provision import output
        from provision.commands.converge import ConvergeResult

        found = ConvergeResult("provision", False, quick=quick).to_dict()
        out(output.dumps(found))
        return
    for host, decision in quick.decisions.items():
        out(f"{host}: converged ({', '.join(decision.skip) or 'no components'}); "
            "state read in one SSH session, Ansible not needed")
    _kept_warnings(_Plain(out), quick, {})
    out("nothing to do; `rigforge provision --full` runs Ansible anyway")


class _Plain:
    """``print`` of rich's Console for the few markup lines of a converged re-run, as text."""

    def __init__(self, out: Err):
        self.out = out

    def print(self, text: str, **_) -> None:
        self.out(text.replace("[yellow]", "").replace("[/]", ""))


def print_warnings(console, run) -> None:
    for h in run.hosts.values():
        for warning in h.warnings:
            console.print(f"[yellow]warning[/] {h.name}: {warning}")


def print_failures(err: Err, run) -> None:
    for h in run.hosts.values():
        for message in h.messages:
            err(f"{h.name}: {message}")


def _converged_notes(console, quick) -> None:
    for host, decision in quick.decisions.items():
        if decision.skip:
            console.print(f"{host}: converged, skipped: {', '.join(decision.skip)}")
        for component, reason in decision.reasons.items():
            console.print(f"{host}: runs {component}: {reason}")


def _kept_warnings(console, quick, shown: dict[str, list[str]]) -> None:
    """Warnings an earlier run reported and this one did not repeat (it skipped their
    components): the host is converged, not cleared of them."""
    for host, decision in quick.decisions.items():
        if not decision.skip:  # every component ran now: what it did not repeat is gone
            continue
        for warning in decision.warnings:
            if warning not in shown.get(host, []):
                console.print(f"[yellow]warning[/] {host}: {warning} (reported by the run of "
                              f"{decision.warned or 'an earlier run'})")


def _planned(console, run) -> None:
    from provision.output import render_diff

    if not run.changed_tasks:
        console.print("no changes: every host is converged")
        return
    console.print("would change:")
    for task in run.changed_tasks:
        console.print(f"  {task.host}: {task.task}")
        diff = render_diff(task.diff)
        if diff:
            console.print("    " + diff.replace("\n", "\n    "), markup=False)


def print_update(out: Err, err: Err, result, as_json: bool) -> None:
    """``update-drivers``: the branch recorded per host, the summary, warnings, failures."""
    console = terminal()
    from provision import output
    from provision.progress import summary_table

    for message in result.pinned.values():
        err(message)
    if as_json:
        out(output.dumps(result.to_dict()))
    else:
        console.print(summary_table(result.run, "update-drivers"))
        print_warnings(console, result.run)
    if not result.run.succeeded:
        print_failures(err, result.run)


def print_verify(out: Err, err: Err, result, fmt: str, verbose: int, to_stdout: bool = True) -> None:
    """``verify``'s report on stdout (``fmt``; not when it went to --output), then its summary,
    reuse, warnings and failures on stderr."""
    from provision import output
    from provision.commands.verify import report_text

    if to_stdout and fmt == "table":
        terminal().print(output.verify_table(result))
    elif to_stdout:
        out(report_text(result, fmt).removesuffix("\n"))
    err(f"verify: {output.verify_counts(result)}")
    for host, evaluated in sorted(result.reused.items()):
        err(f"{host}: answers identical to those of {evaluated}: those results reused "
            "(--full evaluates the checks again)")
    if not result.checks and verbose:
        err(result.output)
    for host, warnings in sorted(result.warnings.items()):
        for warning in warnings:
            err(f"warning {host}: {warning}")
    for check in result.failed:
        err(f"FAILED {check.host} {check.check}: {check.message}")
    if not result.succeeded and not result.checks:
        err(result.output[-2000:])


def print_doctor(out: Err, err: Err, result, found: list, as_json: bool) -> None:
    """``doctor``: the diagnoses (or JSON) on stdout; the counts, warnings and the skipped checks'
    reasons on stderr. It runs no fix."""
    from provision import doctor, output

    if as_json:
        out(output.dumps(doctor.to_dict(result, found)))
        return
    if found:
        terminal().print(output.doctor_table(found))
    err(f"doctor: {output.verify_counts(result)}")
    for host, warnings in sorted(result.warnings.items()):
        for warning in warnings:
            err(f"warning {host}: {warning}")
    reasons = sorted({(c.host, c.tier, c.message) for c in result.checks if c.outcome == "skipped"})
    for host, tier, reason in reasons:
        err(f"skipped {host} {tier}: {reason}")
    if not result.checks:
        err(result.output[-2000:])
    elif not found:
        err("no problem found" + (" (see the warnings above)" if result.warnings else ""))
    else:
        err("run the fixes above yourself (doctor changes nothing), then `rigforge doctor` again")


def print_ci(out: Err, result) -> None:
    """``ci``: the checks' table, then one line per step."""
    console = terminal()
    from provision import output

    if result.verify is not None:
        console.print(output.verify_table(result.verify))
    for step in result.steps:
        out(f"{step.name:<12} {'ok' if step.ok else 'FAILED':<7} {step.seconds:>7.1f} s  "
            f"{step.detail}".rstrip())


def print_pins(out: Err, found: list, as_json: bool) -> None:
    """``pins update``: old and new value of each pin with its URLs, before the confirmation."""
    from provision import output

    if as_json:
        out(output.dumps({"pins": [p.to_dict() for p in found]}))
        return
    for p in found:
        out(f"{p.component} {p.version} {p.arch}: {p.old or '(none)'} -> {p.new}\n  {p.artifact_url}"
            + "".join(f"\n  from {source}" for source in p.sources))


def print_pins_written(err: Err, result) -> None:
    err(f"pins: {len(result.changed)} written to {result.path}" if result.path
        else "pins: every value is already pinned")


def print_sandboxes(out: Err, found: list[dict], as_json: bool) -> None:
    from provision import output

    if as_json:
        out(output.dumps(found))
    elif not found:
        out("no sandbox hosts")
    for h in found if not as_json else []:
        out(f"{h['name']:<16} {h['address']:<15} {h['release'] or '?':<9} "
            f"{'running' if h['running'] else 'stopped'}")


def print_init(out: Err, result) -> None:
    out(f"workspace ready in {result.workspace.root}")
    for name in result.written:
        out(f"  wrote {name}")
    out("next: `rigforge host add NAME --address ADDR` or `rigforge sandbox up NAME`")


def print_hosts(out: Err, found: list, as_json: bool) -> None:
    console = terminal()
    from provision import output

    if as_json:
        out(output.dumps([h.to_dict() for h in found]))
    elif not found:
        out("no hosts yet: `rigforge host add NAME --address ADDR`")
    else:
        console.print(output.hosts_table(found))


def print_probe(out: Err, report, as_json: bool) -> None:
    console = terminal()
    from provision import output

    if as_json:
        out(output.dumps(report.to_list()))
        return
    for entry in report.entries:
        output.print_probe(console, entry)


def print_stack_show(out: Err, shown: dict, as_json: bool) -> None:
    console = terminal()
    from provision import output

    if as_json:
        out(output.dumps(shown))
    else:
        output.print_stack_show(console, shown)


def print_booted(out: Err, booted) -> None:
    if not booted.registered:
        out(f"sandbox {booted.name} is up at {booted.address}, {booted.release}")
        return
    out(f"sandbox {booted.name} is up at {booted.address}, user {booted.user} (sudo), {booted.release}")
    for key in booted.keys:
        out(f"  recorded host key {key.key_type} {key.fingerprint}")
