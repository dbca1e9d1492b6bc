"""The ``rigforge`` command: parse, prompt, call one command (provision/commands/), print (run_output.py).
The only module that imports Click; help texts are in cli_help.py; heavy imports wait (fast --help)."""

import importlib
import sys
from functools import partial, reduce
from pathlib import Path
from typing import NamedTuple

import click

from provision import __version__, registry, run_output
from provision.cli_help import EXIT_CODES, GROUPS, HELP, OPTION_HELP
from provision.errors import EXIT_FAILED, RigforgeError


class State(NamedTuple):
    workspace_dir: Path
    verbose: int

    def workspace(self):
        return importlib.import_module("provision.workspace").open_workspace(self.workspace_dir)


pass_state = click.make_pass_decorator(State)


class _Commands:  # provision.commands.<name>, imported on first use: --help loads none of them
    def __getattr__(self, name):
        return importlib.import_module(f"provision.commands.{name}")


commands = _Commands()


class RigforgeGroup(click.Group):  # maps library errors to a message and their exit code, in one place
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RigforgeError as exc:
            click.secho(f"error: {exc.message}", fg="red", err=True)
            if exc.hint:
                click.echo(f"  hint: {exc.hint}", err=True)
            ctx.exit(exc.exit_code)


class ComponentsOption(click.Option):  # its help lists the components when shown, not at import
    def get_help_record(self, ctx):
        self.help = OPTION_HELP["components"].format(", ".join(registry.names()))
        return super().get_help_record(ctx)


def opt(*decls, key=None, **kwargs):  # an option, its help OPTION_HELP[key] (default: its Python name)
    name = key or next((d for d in decls if d.isidentifier()), decls[0].lstrip("-").replace("-", "_"))
    return click.option(*decls, help=OPTION_HELP[name], **kwargs)


# Options that several verbs share, declared once.
limit_option = opt("--limit")
components_option = click.option("--components", cls=ComponentsOption)
yes_option = opt("--yes", "-y", key="yes", is_flag=True)
PATH_OUT = click.Path(dir_okay=False, path_type=Path)
json_option = opt("--json", "as_json", key="json", is_flag=True)
_err = partial(click.echo, err=True)


def options(*decorators):  # several options as one decorator, in the order given
    return lambda command: reduce(lambda c, d: d(c), reversed(decorators), command)


backend_options = options(  # sandbox up, ci
    opt("--backend", type=click.Choice(["nspawn", "podman", "docker"])), opt("--image", metavar="REF"))
run_options = options(opt("--ask-become-pass", "ask_pass", is_flag=True),  # plan, provision, update-drivers
                      opt("--vault-password-file", type=click.Path(exists=True, dir_okay=False)), json_option)
target_options = options(limit_option, components_option)  # plan, provision
check_options = options(components_option, opt("--tier", metavar="TIERS"),  # verify, doctor
                        opt("--full", key="verify_full", is_flag=True))


def _exit(succeeded: bool) -> None:
    sys.exit(0 if succeeded else EXIT_FAILED)


def _ui(yes: bool, refusal: str, hint: str, ask_pass: bool = False, early: bool = True):  # see interaction.py
    password = (lambda: click.prompt("BECOME password", hide_input=True, err=True)) if ask_pass else None
    return commands.interaction.terminal(yes, refusal, hint, lambda q: click.confirm(q, abort=True), password,
                                         _err, early)


@click.group(cls=RigforgeGroup, epilog=EXIT_CODES, help=HELP["main"],
             context_settings={"help_option_names": ["-h", "--help"]})
@opt("--workspace", "workspace_dir", key="workspace", envvar="RIGFORGE_WORKSPACE", default=".",
     type=click.Path(file_okay=False, path_type=Path), show_default="the current directory")
@opt("-v", "--verbose", key="verbose", count=True)
@click.version_option(__version__, prog_name="rigforge")
@click.pass_context
def main(ctx, workspace_dir, verbose):
    ctx.obj = State(workspace_dir, verbose)


host, stack, pins, sandbox = (main.group(n, help=HELP[n])(lambda: None) for n in GROUPS)


@main.command(help=HELP["init"])
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@opt("--force", is_flag=True)
@opt("--ci", key="init_ci", type=click.Choice(["github"]))
@opt("--rigforge-source", metavar="SOURCE")
@pass_state
def init(state, directory, force, ci, rigforge_source):
    run_output.print_init(click.echo, commands.workspace.init(directory or state.workspace_dir, force, ci,
                                                              rigforge_source))


@host.command("add", help=HELP["host_add"])
@click.argument("name")
@opt("--address", required=True)
@opt("--user")
@click.option("--port", type=int, default=22, show_default=True)
@opt("--key")
@opt("--group", "groups", key="group", multiple=True)
@opt("--accept-host-key", is_flag=True)
@pass_state
def host_add(state, name, address, user, port, key, groups, accept_host_key):
    trust = commands.interaction.trust_host_key(f"{address}:{port}", accept_host_key, say=click.echo,
                                                ask=lambda: click.confirm("Trust this key?", default=False))
    commands.hosts.add(state.workspace(), trust, name, address, user, port, key, list(groups))
    click.echo(f"added {name} ({address}:{port})")


@host.command("list", help=HELP["host_list"])
@json_option
@pass_state
def host_list(state, as_json):
    run_output.print_hosts(click.echo, commands.hosts.list_all(state.workspace()), as_json)


@host.command("remove", help=HELP["host_remove"])
@click.argument("name")
@pass_state
def host_remove(state, name):
    click.echo(f"removed {commands.hosts.remove(state.workspace(), name).name}")


@main.command(help=HELP["probe"])
@click.argument("names", nargs=-1)
@json_option
@opt("--no-record", is_flag=True)
@pass_state
def probe(state, names, as_json, no_record):
    report = commands.probe.probe(state.workspace(), names, record=not no_record)
    run_output.print_probe(click.echo, report, as_json)
    _exit(not report.failed)


def _converge(state, ui, as_json, vault_password_file, **how):
    options = commands.converge.RunOptions(state.verbose, vault_password_file)
    result = commands.converge.converge(state.workspace(), ui=ui, options=options, **how)
    run_output.print_converge(click.echo, _err, result, as_json)
    _exit(result.succeeded)


@main.command(help=HELP["plan"])
@target_options
@run_options
@pass_state
def plan(state, limit, components, ask_pass, vault_password_file, as_json):
    _converge(state, _ui(True, "plan", "", ask_pass), as_json, vault_password_file, limit=limit,
              components=components, check=True)


@main.command(help=HELP["provision"])
@target_options
@yes_option
@opt("--check-idempotence", is_flag=True)
@opt("--retry-failed", is_flag=True)
@opt("--full", key="provision_full", is_flag=True)
@run_options
@pass_state
def provision(state, limit, components, yes, check_idempotence, ask_pass, vault_password_file,
              retry_failed, full, as_json):
    ui = _ui(yes, "provision changes hosts", "review with `rigforge plan`, then pass --yes", ask_pass)
    _converge(state, ui, as_json, vault_password_file, limit=limit, components=components, check=False,
              idempotence=check_idempotence, retry_failed=retry_failed,
              fast=not (full or check_idempotence or retry_failed))


@main.command("update-drivers", help=HELP["update_drivers"])
@opt("--branch")
@limit_option
@opt("--serial", type=click.IntRange(min=1), default=1, show_default=True)
@yes_option
@run_options
@pass_state
def update_drivers(state, branch, limit, serial, yes, ask_pass, vault_password_file, as_json):
    ui = _ui(yes, "update-drivers changes hosts", "pass --yes", ask_pass)
    options = commands.converge.RunOptions(state.verbose, vault_password_file)
    result = commands.update_drivers.update_drivers(state.workspace(), branch, limit, serial, ui, options)
    run_output.print_update(click.echo, _err, result, as_json)
    _exit(result.run.succeeded)


@main.command(help=HELP["verify"])
@limit_option
@check_options
@opt("--format", "fmt", key="format", type=click.Choice(["table", "json", "junit"]), default="table",
     show_default=True)
@opt("--output", type=PATH_OUT)
@opt("--json", "as_json", key="verify_json", is_flag=True)
@pass_state
def verify(state, limit, components, tier, full, fmt, output, as_json):
    fmt = "json" if as_json else fmt
    result = commands.verify.verify(state.workspace(), limit, components, full, output, fmt, tier)
    run_output.print_verify(None if output else click.echo, _err, result, fmt, state.verbose)
    _exit(result.succeeded)


@main.command(help=HELP["doctor"])
@click.argument("host", required=False)
@check_options
@json_option
@pass_state
def doctor(state, host, components, tier, full, as_json):
    result, found = commands.doctor.doctor(state.workspace(), host, components, tier, full)
    run_output.print_doctor(click.echo, _err, result, found, as_json)
    _exit(result.succeeded)


@main.command(help=HELP["ci"])
@components_option
@opt("--junit", type=PATH_OUT)
@opt("--keep", is_flag=True)
@backend_options
@pass_state
def ci(state, components, junit, keep, backend, image):
    result = commands.ci.ci(state.workspace(), components, keep, _err, junit, backend, image)
    run_output.print_ci(click.echo, result)
    _exit(result.ok)


@stack.command("show", help=HELP["stack_show"])
@opt("--os", "os_key", key="os", required=True, metavar="OS")
@opt("--gpu", "gpus", key="gpu", multiple=True, metavar="PCI_ID")
@opt("--set", "sets", key="set", multiple=True, metavar="KEY=VALUE")
@opt("--kernel", default=None, metavar="RELEASE")
@opt("--components", key="stack_components", default=",".join(registry.with_resolver_rules()),
     show_default=True)
@json_option
def stack_show(os_key, gpus, sets, kernel, components, as_json):
    result = commands.stack_show.show(os_key, gpus, sets, components=components, kernel=kernel)
    run_output.print_stack_show(click.echo, result.as_dict(), as_json)


@pins.command("update", help=HELP["pins_update"])
@click.argument("components", nargs=-1, metavar="[COMPONENT]...")
@opt("--version", key="pins_version", default=None, metavar="V")
@opt("--yes", key="pins_yes", is_flag=True)
@json_option
@pass_state
def pins_update(state, components, version, yes, as_json):
    ui = _ui(yes, "pins update writes inventory/group_vars/all.yml",
             "review the values above, then pass --yes", early=False)
    result = commands.pins.update(state.workspace(), components, version, ui=ui,
                                  show=lambda found: run_output.print_pins(click.echo, found, as_json))
    run_output.print_pins_written(_err, result)


@sandbox.command("up", help=HELP["sandbox_up"])
@click.argument("name")
# == provision.sandbox.image.RELEASES (a unit test keeps them equal): --help imports no sandbox code
@opt("--release", type=click.Choice(["bookworm", "trixie"]), default="bookworm", show_default=True)
@backend_options
@pass_state
def sandbox_up(state, name, release, backend, image):
    booted = commands.hosts.sandbox_up(state.workspace(), name, release, lambda m: _err(f"  {m}"),
                                       backend, image)
    run_output.print_booted(click.echo, booted)


@sandbox.command("down", help=HELP["sandbox_down"])
@click.argument("name")
@pass_state
def sandbox_down(state, name):
    click.echo(commands.hosts.sandbox_down(state.workspace(), name))


def _sandbox_verb(verb: str, run) -> None:  # halt and boot: NAME only, no workspace
    sandbox.command(verb, help=HELP[f"sandbox_{verb}"])(click.argument("name")(run))


_sandbox_verb("halt", lambda name: click.echo(commands.hosts.sandbox_halt(name)))
_sandbox_verb("boot", lambda name: run_output.print_booted(
    click.echo, commands.hosts.sandbox_boot(name, lambda m: _err(f"  {m}"))))


@sandbox.command("list", help=HELP["sandbox_list"])
@json_option
def sandbox_list(as_json):
    run_output.print_sandboxes(click.echo, commands.hosts.sandbox_list(), as_json)
