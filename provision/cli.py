"""The ``rigforge`` command: parse, call the library, print. The only module that imports Click.

Heavy imports (ansible, paramiko, rich) happen inside the commands so ``--help`` stays fast.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

import click

from provision import __version__
from provision.errors import EXIT_FAILED, RigforgeError, UsageError

EXIT_CODES = """\b
Exit codes:
  0  success
  1  a host failed or was unreachable, or a check failed
  2  bad input or usage (nothing was changed)"""

COMPONENT_HELP = (
    "Only these components (comma-separated): base, nvidia_driver, cuda, cudnn, docker, "
    "nvidia_container_toolkit, conda, ollama. Default: each host's rigforge_components."
)
LIMIT_HELP = "Only these hosts or groups (comma-separated names or shell patterns)."


@dataclass
class State:
    workspace_dir: Path
    verbose: int

    def workspace(self):
        from provision.workspace import open_workspace

        return open_workspace(self.workspace_dir)


pass_state = click.make_pass_decorator(State)


class RigforgeGroup(click.Group):
    """Maps library errors to a message on stderr and their exit code, in one place."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RigforgeError as exc:
            click.secho(f"error: {exc.message}", fg="red", err=True)
            if exc.hint:
                click.echo(f"  hint: {exc.hint}", err=True)
            ctx.exit(exc.exit_code)


def _console(err: bool = False):
    from rich.console import Console

    console = Console(stderr=err, highlight=False)
    if not console.is_terminal:
        # Logs and pipes: wide enough that check names and messages are not cut.
        console = Console(stderr=err, highlight=False, width=160)
    return console


@click.group(cls=RigforgeGroup, epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--workspace",
    "workspace_dir",
    envvar="RIGFORGE_WORKSPACE",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default="the current directory",
    help="The workspace to use (env RIGFORGE_WORKSPACE).",
)
@click.option("-v", "--verbose", count=True,
              help="More output: Ansible's own, at the same verbosity (-v to -vvvv).")
@click.version_option(__version__, prog_name="rigforge")
@click.pass_context
def main(ctx, workspace_dir, verbose):
    """Turn freshly installed Ubuntu/Debian boxes into working AI rigs.

    rigforge writes a plain Ansible project (a workspace), runs it over SSH,
    and verifies every host with testinfra checks afterwards.

    \b
    Quick start with a throwaway local test host (as root):
      rigforge init demo && cd demo
      rigforge sandbox up rig1
      rigforge provision --yes
      rigforge verify
    """
    ctx.obj = State(workspace_dir, verbose)


@main.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Refresh generated files in an existing workspace.")
@click.option("--ci", type=click.Choice(["github"]),
              help="Also write a CI workflow that runs `rigforge ci` (GitHub Actions).")
@pass_state
def init(state, directory, force, ci):
    """Create a workspace in DIRECTORY (default: --workspace).

    \b
    Writes ansible.cfg (host-key checking on, ./known_hosts), site.yml,
    playbooks/ and roles/ (copies, so ansible-playbook needs no rigforge),
    inventory/hosts.yml, inventory/group_vars/{all,sandbox}.yml and .gitignore.

    An existing workspace is refused unless --force is given; --force rewrites
    the generated files and keeps your inventory, vars and known_hosts.
    With --ci github it also writes .github/workflows/rigforge.yml, which runs
    `rigforge ci` on GitHub's ubuntu-latest runners.
    """
    from provision import workspace

    ws, written = workspace.init(directory or state.workspace_dir, force=force, ci=ci)
    click.echo(f"workspace ready in {ws.root}")
    for name in written:
        click.echo(f"  wrote {name}")
    click.echo("next: `rigforge host add NAME --address ADDR` or `rigforge sandbox up NAME`")


@main.group()
def host():
    """Add, list and remove the rigs in the inventory."""


@host.command("add")
@click.argument("name")
@click.option("--address", required=True, help="IP address or DNS name.")
@click.option("--user", help="SSH user (an ordinary user with sudo is fine).")
@click.option("--port", type=int, default=22, show_default=True)
@click.option("--key", help="Private key file for SSH.")
@click.option("--group", "groups", multiple=True, help="Add to this group (repeatable).")
@click.option(
    "--accept-host-key",
    is_flag=True,
    help="Trust the host key the host presents now (its fingerprint is printed).",
)
@pass_state
def host_add(state, name, address, user, port, key, groups, accept_host_key):
    """Add host NAME and record its SSH host key in the workspace's known_hosts.

    The key is fetched over SSH and its fingerprint shown. Without
    --accept-host-key you are asked to confirm it; with no terminal to ask,
    the command fails. Host-key checking is never turned off.
    """
    from provision import hosts
    from provision.inventory import Host

    ws = state.workspace()

    def confirm(key_) -> bool:
        click.echo(f"{address}:{port} presents {key_.key_type} key {key_.fingerprint}")
        if accept_host_key:
            return True
        if not sys.stdin.isatty():
            raise UsageError(
                "cannot ask whether to trust the host key: no terminal",
                hint="check the fingerprint above on the host's console, then re-run with "
                "--accept-host-key",
            )
        return click.confirm("Trust this key?", default=False)

    hosts.add_host(ws, Host(name, address, user, port, key, list(groups)), confirm)
    click.echo(f"added {name} ({address}:{port})")


@host.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_state
def host_list(state, as_json):
    """List the hosts in the inventory."""
    from provision import hosts, output

    found = hosts.list_hosts(state.workspace())
    if as_json:
        click.echo(output.dumps([h.to_dict() for h in found]))
    elif not found:
        click.echo("no hosts yet: `rigforge host add NAME --address ADDR`")
    else:
        _console().print(output.hosts_table(found))


@host.command("remove")
@click.argument("name")
@pass_state
def host_remove(state, name):
    """Remove host NAME from the inventory and its key from known_hosts."""
    from provision import hosts

    removed = hosts.remove_host(state.workspace(), name)
    click.echo(f"removed {removed.name}")


@main.command()
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the facts and advice as JSON.")
@click.option("--no-record", is_flag=True, help="Do not write the facts into host_vars.")
@pass_state
def probe(state, names, as_json, no_record):
    """Read each host's OS, GPUs, driver and Secure Boot state; recommend a stack.

    \b
    Read-only on the host (one SSH session each, host keys checked). The facts are
    recorded as the host's `rigforge_facts` variable in inventory/hosts.yml (your
    comments and other variables stay as they are); plan and provision use them to
    check your stack choices before any host is changed. Default: every host.
    """
    from provision import output, stack_check, targets
    from provision import probe as probe_mod
    from provision.inventory import Inventory

    ws = state.workspace()
    inventory = Inventory(ws.inventory)
    chosen = targets.parse_limit(inventory, ",".join(names) if names else None)
    results = probe_mod.probe_hosts(ws, chosen)
    if not no_record:
        probe_mod.record_facts(ws, results)
    report = []
    for result in results:
        entry = {"host": result.host, "error": result.error, "facts": result.facts}
        if result.facts is not None:
            entry.update(stack_check.advice(ws, result.host, result.facts))
        report.append(entry)
    if as_json:
        click.echo(output.dumps(report))
    else:
        console = _console()
        for entry in report:
            output.print_probe(console, entry)
    if any(r.error for r in results):
        sys.exit(EXIT_FAILED)


def _run(state, limit, components, *, check, idempotence=False, yes=True, ask_pass=False,
         as_json=False, retry_failed=False, vault_password_file=None, fast=False):
    from provision import deploy, output

    if not yes and not sys.stdin.isatty():
        raise UsageError(
            "provision changes hosts and needs confirmation, but there is no terminal",
            hint="review with `rigforge plan`, then pass --yes",
        )
    quick = None
    if fast:
        quick = deploy.check_converged(state.workspace(), limit, components)
        if quick.all_converged:
            deploy.refresh_converged(quick)
            _report_converged(quick, as_json)
            return
        prepared = deploy.narrow_to_drift(quick)
    else:
        prepared = deploy.prepare(state.workspace(), limit, components, retry_failed=retry_failed)
    from provision.progress import Progress, summary_table

    names = prepared.names
    for t in prepared.targets:
        click.echo(f"{t.host.name}: components {', '.join(t.components) or 'none'} ({t.reason})",
                   err=True)
    for host, notes in prepared.notes.items():
        for note in notes:
            click.echo(f"note {host}: {note}", err=True)
    if not yes:
        click.confirm(f"Provision {', '.join(names)}?", abort=True)
    password = click.prompt("BECOME password", hide_input=True, err=True) if ask_pass else None
    title = "plan (check mode, nothing changes)" if check else "provision"

    def once(label):
        with Progress(label, names) as progress:
            return deploy.run(
                prepared,
                check=check,
                diff=check or state.verbose > 0,
                verbosity=state.verbose,
                become_password=password,
                vault_password_file=vault_password_file,
                on_update=progress.update,
            )

    if quick is not None:
        deploy.refresh_converged(quick)
    if not check:
        # A run cut short (even by SIGKILL) must not leave a record that vouches for the host.
        deploy.forget_converged(prepared)
    result = once(title)
    if not check:
        deploy.record(prepared.workspace, result)
        deploy.record_converged(prepared, result)
    report = {"run": result.to_dict(),
              "components": {t.host.name: {"components": t.components, "reason": t.reason}
                             for t in prepared.targets}}
    if quick is not None:
        report["converged"] = quick.to_dict()
    console = _console()
    if not as_json:
        if quick is not None:
            _print_converged_notes(console, quick)
        console.print(summary_table(result, title))
        if check:
            _print_planned(console, result)
        for h in result.hosts.values():
            for warning in h.warnings:
                console.print(f"[yellow]warning[/] {h.name}: {warning}")
        if quick is not None:
            _print_kept_warnings(console, quick, {h.name: h.warnings for h in result.hosts.values()})
    failed = not result.succeeded
    if idempotence and not failed:
        second = once("idempotence check (second run)")
        report["idempotence"] = second.to_dict()
        if not as_json:
            console.print(summary_table(second, "idempotence check (second run)"))
        if second.changed_tasks or not second.succeeded:
            failed = True
            for task in second.changed_tasks:
                click.echo(f"not idempotent: {task.host}: {task.task}", err=True)
    from provision import report as host_report

    hosts = {t.host.name: host_report.host_report(t, result.hosts.get(t.host.name), check,
                                                  prepared.facts.get(t.host.name))
             for t in prepared.targets}
    report["report"] = list(hosts.values())
    if as_json:
        click.echo(output.dumps(report))
    else:
        for text in (line for h in hosts.values() for line in host_report.lines(h)):
            console.print(text, markup=False, highlight=False)
    if failed:
        for h in result.hosts.values():
            for message in h.messages:
                click.echo(f"{h.name}: {message}", err=True)
        sys.exit(EXIT_FAILED)


def _report_converged(quick, as_json):
    """Every chosen host is converged: say so, per host, without having run Ansible."""
    from provision import output

    hosts = [
        {"host": h, "status": "ok", "ok": 0, "changed": 0, "failed": 0, "unreachable": 0,
         "skipped": 0, "retries": 0, "messages": [], "warnings": d.warnings}
        for h, d in quick.decisions.items()
    ]
    if as_json:
        click.echo(output.dumps({
            "run": {"status": "successful", "hosts": hosts, "changed_tasks": []},
            "converged": quick.to_dict(),
        }))
        return
    console = _console()
    for host, decision in quick.decisions.items():
        console.print(f"{host}: converged ({', '.join(decision.skip) or 'no components'}); "
                      "state read in one SSH session, Ansible not needed")
    _print_kept_warnings(console, quick, {})
    console.print("nothing to do; `rigforge provision --full` runs Ansible anyway")


def _print_converged_notes(console, quick):
    for host, decision in quick.decisions.items():
        if decision.skip:
            console.print(f"{host}: converged, skipped: {', '.join(decision.skip)}")
        for component, reason in decision.reasons.items():
            console.print(f"{host}: runs {component}: {reason}")


def _print_kept_warnings(console, quick, shown: dict[str, list[str]]):
    """Warnings an earlier run reported and this one did not repeat (it skipped their
    components): the host is converged, not cleared of them."""
    for host, decision in quick.decisions.items():
        if not decision.skip:  # every component ran now: what it did not repeat is gone
            continue
        for warning in decision.warnings:
            if warning not in shown.get(host, []):
                console.print(f"[yellow]warning[/] {host}: {warning} (reported by the run of "
                              f"{decision.warned or 'an earlier run'})")


def _print_planned(console, result):
    from provision.output import render_diff

    if not result.changed_tasks:
        console.print("no changes: every host is converged")
        return
    console.print("would change:")
    for task in result.changed_tasks:
        console.print(f"  {task.host}: {task.task}")
        diff = render_diff(task.diff)
        if diff:
            console.print("    " + diff.replace("\n", "\n    "), markup=False)


@main.command()
@click.option("--limit", help=LIMIT_HELP)
@click.option("--components", help=COMPONENT_HELP)
@click.option("--ask-become-pass", "ask_pass", is_flag=True, help="Prompt for the sudo password.")
@click.option("--vault-password-file", type=click.Path(exists=True, dir_okay=False),
              help="Decrypt ansible-vault files (e.g. a vaulted ansible_become_password).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def plan(state, limit, components, ask_pass, vault_password_file, as_json):
    """Show what provision would change (Ansible check mode with diff). Changes nothing."""
    _run(state, limit, components, check=True, ask_pass=ask_pass, as_json=as_json,
         vault_password_file=vault_password_file)


@main.command()
@click.option("--limit", help=LIMIT_HELP)
@click.option("--components", help=COMPONENT_HELP)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--check-idempotence",
    is_flag=True,
    help="Run twice; fail, listing each task, if the second run changed anything.",
)
@click.option("--ask-become-pass", "ask_pass", is_flag=True, help="Prompt for the sudo password.")
@click.option("--vault-password-file", type=click.Path(exists=True, dir_okay=False),
              help="Decrypt ansible-vault files (e.g. a vaulted ansible_become_password).")
@click.option("--retry-failed", is_flag=True,
              help="Only the hosts that failed or were unreachable in the last provision.")
@click.option("--full", is_flag=True,
              help="Run Ansible for every chosen host and component, even where the converged "
              "check finds nothing to do.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def provision(state, limit, components, yes, check_idempotence, ask_pass, vault_password_file,
              retry_failed, full, as_json):
    """Apply the stack to the hosts over SSH, with live progress and a summary per host.

    \b
    Re-runs are fast: rigforge first reads each host's state in one SSH session and runs
    Ansible only for the hosts and components that drifted from the last converged run, or
    whose roles or variables changed (--full runs everything; so do --check-idempotence
    and --retry-failed).

    Hosts are reached as their ansible_user and become root with sudo. One failing or
    unreachable host does not stop the others; the exit code is then 1, and
    --retry-failed re-runs just those hosts. The become password comes from
    --ask-become-pass or a vaulted variable (--vault-password-file); it is never written
    to the workspace, ansible-runner's env/ or artifacts, or logs.
    """
    _run(state, limit, components, check=False, idempotence=check_idempotence, yes=yes,
         ask_pass=ask_pass, as_json=as_json, retry_failed=retry_failed,
         vault_password_file=vault_password_file,
         fast=not (full or check_idempotence or retry_failed))


@main.command("update-drivers")
@click.option("--branch", help='The driver branch to move to, e.g. "575" (default: the configured one).')
@click.option("--limit", help=LIMIT_HELP)
@click.option("--serial", type=click.IntRange(min=1), default=1, show_default=True,
              help="Hosts updated at a time; a failed host stops the rollout.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--ask-become-pass", "ask_pass", is_flag=True, help="Prompt for the sudo password.")
@click.option("--vault-password-file", type=click.Path(exists=True, dir_okay=False),
              help="Decrypt ansible-vault files (e.g. a vaulted ansible_become_password).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def update_drivers(state, branch, limit, serial, yes, ask_pass, vault_password_file, as_json):
    """Move the NVIDIA driver to a new branch (or update it), rolling, --serial hosts at a time.

    \b
    The new branch is checked against each host's GPUs, CUDA and Ollama first. Then, per host:
    record the current driver, stop GPU consumers (ollama, GPU containers), unhold, switch
    packages, hold again, rebuild DKMS for the running and any newer kernel, reboot if
    something changed, assert that the loaded module equals the package, restart the
    consumers, run the GPU checks. A failure rolls that host back to the recorded driver and
    stops the rollout; hosts not yet reached are untouched.
    """
    from provision import deploy, output
    from provision.progress import Progress, summary_table

    if branch is not None and not (branch.isdigit() and len(branch) == 3):
        raise UsageError(f"invalid --branch {branch!r}", hint='give a driver branch like "575"')
    overrides = {"nvidia_driver_branch": branch} if branch else {}
    ws = state.workspace()
    if not (ws.root / "playbooks" / "update_drivers.yml").is_file():
        raise UsageError("this workspace has no playbooks/update_drivers.yml (it predates it)",
                         hint="run `rigforge init --force` to refresh roles, playbooks and "
                         "site.yml; your inventory, vars and known_hosts are kept")
    # Hosts named with --limit must select the driver; without it, the others are left out, saying so.
    prepared = deploy.prepare(ws, limit, "nvidia_driver", overrides=overrides,
                              refuse_unselected=bool(limit))
    for t in prepared.targets:
        if "nvidia_driver" not in t.components:
            click.echo(f"{t.host.name}: left out (it does not select nvidia_driver)", err=True)
    prepared.targets = [t for t in prepared.targets if "nvidia_driver" in t.components]
    if not prepared.targets:
        raise UsageError("no host selects the nvidia_driver component",
                         hint="add nvidia_driver to rigforge_components in inventory/host_vars/HOST.yml "
                         "or group_vars; nothing was run")
    names = prepared.names
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("update-drivers changes hosts and needs confirmation, but there is "
                             "no terminal", hint="pass --yes")
        click.confirm(f"Update the NVIDIA driver on {', '.join(names)}?", abort=True)
    password = click.prompt("BECOME password", hide_input=True, err=True) if ask_pass else None
    deploy.forget_converged(prepared)
    with Progress("update-drivers", names) as progress:
        result = deploy.run(
            prepared, verbosity=state.verbose, become_password=password,
            vault_password_file=vault_password_file, on_update=progress.update,
            playbook="playbooks/update_drivers.yml",
            extravars={"rigforge_serial": serial, **overrides},
        )
    deploy.record(prepared.workspace, result)
    if branch:
        # Otherwise the next `provision` would switch the updated hosts back.
        updated = [n for n, h in result.hosts.items() if h.status in ("ok", "changed")]
        shadowed = deploy.pin_branch(prepared.workspace, updated, branch)
        for name in updated:
            if name in shadowed:
                click.echo(f"warning {name}: a host_vars file sets another nvidia_driver_branch, "
                           f"which outranks hosts.yml: set it to {branch!r} there, or the next "
                           "provision switches the host back", err=True)
            else:
                click.echo(f"{name}: nvidia_driver_branch is now {branch!r} in "
                           "inventory/hosts.yml", err=True)
    if as_json:
        click.echo(output.dumps({"run": result.to_dict()}))
    else:
        _console().print(summary_table(result, "update-drivers"))
        for h in result.hosts.values():
            for warning in h.warnings:
                _console().print(f"[yellow]warning[/] {h.name}: {warning}")
    if not result.succeeded:
        for h in result.hosts.values():
            for message in h.messages:
                click.echo(f"{h.name}: {message}", err=True)
        sys.exit(EXIT_FAILED)


@main.command()
@click.option("--limit", help=LIMIT_HELP)
@click.option("--components", help=COMPONENT_HELP)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "junit"]), default="table",
    show_default=True,
)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report here instead of stdout.")
@click.option("--full", is_flag=True,
              help="Evaluate every check, even for a host whose answers are byte-identical to "
              "those its last results were computed from.")
@click.option("--json", "as_json", is_flag=True, help="The same as --format json (as for every command).")
@pass_state
def verify(state, limit, components, fmt, output, full, as_json):
    """Run the testinfra checks for the components each host has.

    \b
    Every verify asks each host again: the commands the checks ran last
    time go in one round trip per host. When a host's answers, the check
    code, its variables and the components are all exactly those of its
    last verify, pytest would compute the same results, so they are
    reused (and said so); --full evaluates them anyway.

    \b
    The same checks run under plain pytest, from the workspace:
      pytest --pyargs provision.checks --ssh-config=.rigforge/ssh_config \\
             --hosts='ssh://rig1?sudo=true'
    """
    from provision import components as comp
    from provision import fsutil, targets, verify_vars
    from provision import output as out
    from provision.verify import run_checks

    if as_json:
        fmt = "json"
    ws = state.workspace()
    narrowing = comp.parse_list(components)
    loaded = verify_vars.Deferred()
    chosen = targets.resolve(ws, limit, narrowing, loaded)
    unknown = [t for t in chosen if t.auto and not t.vars.get("rigforge_facts")]
    if unknown:  # auto hosts never probed: their facts decide which checks apply
        from provision.deploy import probe_facts

        targets.settle_auto(chosen, narrowing, *probe_facts(ws, unknown))
    targets.settle_auto(chosen, narrowing)
    loaded.save()
    result = run_checks(ws, chosen, narrowing, reuse=not full)
    if fmt == "json":
        text = out.dumps(result.to_dict()) + "\n"
    elif fmt == "junit":
        text = result.junit_xml
    else:
        text = None
    if output:
        fsutil.write_text(output, text if text is not None else out.verify_table_text(result))
    elif text is not None:
        click.echo(text, nl=False)
    else:
        _console().print(out.verify_table(result))
    summary = out.verify_counts(result)
    click.echo(f"verify: {summary}", err=True)
    for host, evaluated in sorted(result.reused.items()):
        click.echo(f"{host}: answers identical to those of {evaluated}: those results reused "
                   "(--full evaluates the checks again)", err=True)
    if not result.checks and state.verbose:
        click.echo(result.output, err=True)
    for host, warnings in sorted(result.warnings.items()):
        for warning in warnings:
            click.echo(f"warning {host}: {warning}", err=True)
    for check in result.failed:
        click.echo(f"FAILED {check.host} {check.check}: {check.message}", err=True)
    if not result.succeeded:
        if not result.checks:
            click.echo(result.output[-2000:], err=True)
        sys.exit(EXIT_FAILED)


@main.command()
@click.option("--components", help=COMPONENT_HELP)
@click.option("--junit", "junit", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a JUnit XML report (the steps, then every check) here.")
@click.option("--keep", is_flag=True, help="Keep the sandbox host (and its workspace copy).")
@pass_state
def ci(state, components, junit, keep):
    """Prove in CI that this workspace's stack provisions cleanly on a throwaway host.

    \b
    1. boot a sandbox host (group `sandbox`: group_vars/all.yml + the sandbox profile)
    2. provision the stack onto it
    3. provision again: any task that reports changed fails the idempotence step
    4. verify (checks that need a GPU are skipped, with the reason)
    5. tear the host down (unless --keep)

    Your inventory, known_hosts and host_vars are not used or touched: the run
    works on a copy of the workspace in .rigforge/ci/. Needs root and the sandbox
    tools (see `rigforge sandbox --help`).
    """
    from provision import components as comp
    from provision import fsutil
    from provision.ci import junit_xml, run_ci

    ws = state.workspace()
    narrowing = comp.parse_list(components)
    result = run_ci(ws, narrowing, keep=keep, say=lambda m: click.echo(m, err=True))
    if junit:
        fsutil.write_text(junit, junit_xml(result))
    if result.verify is not None:
        from provision import output

        _console().print(output.verify_table(result.verify))
    for step in result.steps:
        click.echo(f"{step.name:<12} {'ok' if step.ok else 'FAILED':<7} {step.seconds:>7.1f} s"
                   f"  {step.detail}".rstrip())
    if not result.ok:
        sys.exit(EXIT_FAILED)


@main.group()
def stack():
    """Look at a GPU stack before a rig exists: the facts table and the resolver, no host."""


@stack.command("show")
@click.option("--os", "os_key", required=True, metavar="OS",
              help="ubuntu-22.04, ubuntu-24.04, ubuntu-26.04, debian-12 or debian-13.")
@click.option("--gpu", "gpus", multiple=True, metavar="PCI_ID", help="An NVIDIA PCI ID (10de:2684); repeat.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="A stack variable (nvidia_driver_branch=590, cuda_version=12.9, ...); repeat.")
@click.option("--kernel", default=None, metavar="RELEASE", help="Kernel release in module and header names.")
@click.option("--components", default="nvidia_driver,cuda,cudnn,ollama", show_default=True,
              help="The components whose rules apply (comma-separated).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def stack_show(os_key, gpus, sets, kernel, components, as_json):
    """Print what provision would install for an OS and its GPUs.

    \b
    Per component: source, branch, flavor, the exact packages, holds and the
    unattended-upgrades blacklist, with every warning, from the same facts table
    and resolver that plan and provision use. A stack that cannot work exits 2.
    Example:
      rigforge stack show --os ubuntu-24.04 --gpu 10de:2684
      rigforge stack show --os debian-12 --gpu 10de:1b80 --set nvidia_driver_source=cuda-repo
    """
    from provision import output
    from provision import stack_show as show

    chosen = tuple(c.strip() for c in components.split(",") if c.strip())
    result = show.show(os_key, gpus, sets, components=chosen, kernel=kernel)
    if as_json:
        click.echo(output.dumps(result.as_dict()))
    else:
        output.print_stack_show(_console(), result.as_dict())


@main.group()
def pins():
    """Checksums of the downloads rigforge installs (Ollama, Miniforge) and NVIDIA's toolkit key."""


@pins.command("update")
@click.argument("components", nargs=-1, metavar="[COMPONENT]...")
@click.option("--version", "version", default=None, metavar="V",
              help="The release to pin (default: the workspace's ollama_version / conda_version).")
@click.option("--yes", is_flag=True, help="Write without asking.")
@click.option("--json", "as_json", is_flag=True, help="Print the pins as JSON.")
@pass_state
def pins_update(state, components, version, yes, as_json):
    """Fetch the vendors' own checksums and pin them in inventory/group_vars/all.yml.

    \b
    Per component (ollama, conda, nvidia_container_toolkit; default all),
    for every architecture: the release's checksum file over HTTPS, from
    where the workspace downloads it (ollama_url, conda_installer_url: a
    mirror works too), checked against GitHub's own digest of the asset
    for a GitHub release and against the pins shipped with rigforge.
    NVIDIA's key is fetched and must have the pinned fingerprint (gpg
    --show-keys); its file's SHA-256 is then pinned too.
    Old and new values are shown with their URLs and written, comments
    kept, only after you confirm (--yes). Two sources that disagree, an
    HTTP error or a version below the CVE floor write nothing (exit 2).
      rigforge pins update ollama --version 0.33.3
    """
    from provision import output
    from provision import pins as pin_mod

    ws = state.workspace()
    chosen = list(components) or list(pin_mod.COMPONENTS)
    found = pin_mod.plan(ws, chosen, version)
    if as_json:
        click.echo(output.dumps({"pins": [p.to_dict() for p in found]}))
    else:
        for p in found:
            old = p.old or "(none)"
            click.echo(f"{p.component} {p.version} {p.arch}: {old} -> {p.new}\n  {p.artifact_url}\n"
                       + "".join(f"  from {source}\n" for source in p.sources), nl=False)
    changed = [p for p in found if p.old != p.new]
    if not changed:
        click.echo("pins: every value is already pinned", err=True)
        return
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("pins update writes inventory/group_vars/all.yml and needs confirmation, "
                             "but there is no terminal", hint="review the values above, then pass --yes")
        click.confirm(f"Write {len(changed)} pins to inventory/group_vars/all.yml?", abort=True)
    path = pin_mod.write(ws, found)
    click.echo(f"pins: {len(changed)} written to {path}", err=True)


@main.group()
def sandbox():
    """Throwaway local test hosts: Debian 12, systemd, SSH (needs root).

    Each is a systemd-nspawn container in its own network namespace that can
    reach only the Debian mirror. The root filesystem is built once and cached.
    """


@sandbox.command("up")
@click.argument("name")
# the same names as provision.sandbox.image.RELEASES (a unit test keeps them equal); listed
# here so that `--help` needs no import of the sandbox package
@click.option("--release", type=click.Choice(["bookworm", "trixie"]), default="bookworm",
              show_default=True, help="Debian release: bookworm (12) or trixie (13).")
@pass_state
def sandbox_up(state, name, release):
    """Boot sandbox host NAME and add it to the inventory (group `sandbox`)."""
    from provision import hosts
    from provision.inventory import Host
    from provision.known_hosts import HostKey
    from provision.sandbox import get_backend
    from provision.sandbox.image import describe_release

    ws = state.workspace()
    hosts.check_can_add(ws, name)
    manager = get_backend()
    manager.preflight()
    booted = manager.up(name, progress=lambda msg: click.echo(f"  {msg}", err=True),
                        release=release)
    keys = [HostKey.parse(line) for line in booted.host_keys]
    hosts.register(
        ws,
        Host(name, booted.address, booted.user, booted.port, str(booted.key_path),
             [hosts.SANDBOX_GROUP]),
        keys,
    )
    click.echo(f"sandbox {name} is up at {booted.address}, user {booted.user} (sudo), "
               f"{describe_release(booted.release)}")
    for key in keys:
        click.echo(f"  recorded host key {key.key_type} {key.fingerprint}")


@sandbox.command("down")
@click.argument("name")
@pass_state
def sandbox_down(state, name):
    """Destroy sandbox host NAME and remove it from the inventory."""
    from provision import hosts
    from provision.sandbox import get_backend

    ws = state.workspace()
    manager = get_backend()
    known = {h.name for h in manager.list()}
    in_inventory = any(h.name == name for h in hosts.list_hosts(ws))
    if name not in known and not in_inventory:
        raise UsageError(f"no sandbox host {name!r}", hint="`rigforge sandbox list` shows them")
    if name in known:
        manager.down(name)
    if in_inventory:
        hosts.remove_host(ws, name)
    click.echo(f"sandbox {name} removed")


@sandbox.command("halt")
@click.argument("name")
def sandbox_halt(name):
    """Power sandbox host NAME off, keeping its disk (boot it again with `sandbox boot`)."""
    from provision.sandbox import get_backend

    get_backend().halt(name)
    click.echo(f"sandbox {name} halted")


@sandbox.command("boot")
@click.argument("name")
def sandbox_boot(name):
    """Boot a halted sandbox host NAME again, with the disk (and Debian release) it had."""
    from provision.sandbox import get_backend
    from provision.sandbox.image import describe_release

    booted = get_backend().boot(name, progress=lambda msg: click.echo(f"  {msg}", err=True))
    click.echo(f"sandbox {name} is up at {booted.address}, {describe_release(booted.release)}")


@sandbox.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def sandbox_list(as_json):
    """List the sandbox hosts on this machine."""
    from provision import output
    from provision.sandbox import get_backend

    found = get_backend().list()
    if as_json:
        click.echo(output.dumps([
            {"name": h.name, "address": h.address, "running": h.running, "user": h.user,
             "release": h.release}
            for h in found
        ]))
        return
    if not found:
        click.echo("no sandbox hosts")
    for h in found:
        click.echo(f"{h.name:<16} {h.address:<15} {h.release or '?':<9} "
                   f"{'running' if h.running else 'stopped'}")
