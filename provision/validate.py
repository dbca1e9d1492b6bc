"""Every host's variables checked on the controller, before any host is contacted.

Two kinds of check, each kept in one place that the roles themselves use:

* each role's ``meta/argument_specs.yml`` (the spec Ansible validates when the role starts),
  applied with Ansible's own validator, but with lists and mappings taken strictly: Ansible
  turns ``"a=b"`` into a mapping and ``"tinyllama"`` into a list, which hides a mistake;
* the role's own preflight asserts tagged ``input_check``: asserts on the settings alone (no
  facts, nothing registered), evaluated here by Ansible's Templar with the role's defaults,
  the host's variables and the role's vars, exactly as the play would evaluate them.

A problem in any host stops the command with every problem of every host listed (exit 2).
"""

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from provision.errors import UsageError
from provision.targets import Target
from provision.workspace import Workspace

#: The tag that marks a role's assert as one the controller can evaluate.
TAG = "input_check"

#: Connection variables: read by Ansible and by rigforge's own SSH (probe, converged check).
_CONNECTION = {"ansible_port": int, "ansible_host": str, "ansible_user": str}


@dataclass(frozen=True)
class InputCheck:
    role: str
    name: str
    that: tuple[str, ...]
    when: tuple[str, ...]
    fail_msg: str
    vars: tuple[tuple[str, object], ...]


def check(workspace: Workspace, targets: list[Target]) -> None:
    """Raise :class:`UsageError` naming every problem of every host; touch nothing."""
    from provision.hostvars import role_defaults

    defaults = role_defaults(workspace)  # read once for every host, not once per host
    problems = [f"{t.host.name}: {p}" for t in targets for p in host_problems(workspace, t, defaults)]
    if problems:
        raise UsageError(
            "invalid settings:\n  - " + "\n  - ".join(problems),
            hint="fix them in inventory/group_vars or host_vars; no host was contacted and nothing changed",
        )


def host_problems(workspace: Workspace, target: Target, defaults: dict | None = None) -> list[str]:
    from provision import roles as role_graph
    from provision.hostvars import role_defaults

    problems = _connection_problems(target.vars)
    user = _user_set(target.vars, role_defaults(workspace) if defaults is None else defaults)
    roles_dir = workspace.root / "roles"
    roles = list(dict.fromkeys(r for c in target.components
                               for r in role_graph.of_component(roles_dir, c)))
    for role in roles:
        role_dir = workspace.root / "roles" / role
        if not role_dir.is_dir():
            continue
        found = _spec_problems(role_dir, user)
        checks = _input_checks(role_dir)
        # As in the play, a role's asserts see only values that passed its argument spec.
        if checks and not found:
            found = _assert_problems(workspace, role, checks, target, user)
        problems += found
    return problems


def _connection_problems(variables: dict) -> list[str]:
    found = []
    for name, kind in _CONNECTION.items():
        if name not in variables:
            continue
        value = variables[name]
        if kind is int:
            ok = (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, str) and value.isdigit())
            if not ok or not 1 <= int(value) <= 65535:
                found.append(f"{name} is {value!r}: a port number from 1 to 65535")
        elif not isinstance(value, str) or not value.strip() or any(c in value for c in " ;|&$`'\"\\"):
            found.append(f"{name} is {value!r}: a plain host or user name")
    return found


def _user_set(variables: dict, defaults: dict) -> dict:
    """The values the inventory sets: rigforge's resolved variables are the raw role defaults
    overlaid with the inventory, and only the inventory's own values are the user's."""
    return {k: v for k, v in variables.items() if k not in defaults or defaults[k] != v}


@cache
def _spec(role_dir: Path) -> dict:
    import yaml

    path = role_dir / "meta" / "argument_specs.yml"
    if not path.is_file():
        return {}
    specs = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("argument_specs") or {}
    return (specs.get("main") or {}).get("options") or {}


_STRICT = {"list": list, "dict": dict}


def _spec_problems(role_dir: Path, user: dict) -> list[str]:
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    spec = _spec(role_dir)
    params = {k: v for k, v in user.items() if k in spec and not _templated(v)}
    if not params:
        return []
    found = []
    for name, value in list(params.items()):
        wanted = _STRICT.get(spec[name].get("type", ""))
        if wanted and not isinstance(value, wanted):
            found.append(f"{name} must be a {'list' if wanted is list else 'mapping'} (YAML "
                         f"{'[a, b]' if wanted is list else '{key: value}'}), got {value!r}")
            params.pop(name)
    result = ArgumentSpecValidator({k: spec[k] for k in params}).validate(params)
    return found + list(result.error_messages)


def _templated(value) -> bool:
    return isinstance(value, str) and "{{" in value


@cache
def _input_checks(role_dir: Path) -> tuple[InputCheck, ...]:
    """The role's asserts tagged ``input_check``, from every task file, with the vars and
    conditions of the blocks around them."""
    found: list[InputCheck] = []

    def walk(tasks, inherited_vars: dict, inherited_when: list):
        for task in tasks or []:
            if not isinstance(task, dict):
                continue
            scope = {**inherited_vars, **(task.get("vars") or {})}
            when = [*inherited_when, *_as_list(task.get("when"))]
            if "block" in task:
                walk(task["block"], scope, when)
                continue
            body = task.get("ansible.builtin.assert")
            if body and TAG in _as_list(task.get("tags")):
                found.append(InputCheck(
                    role_dir.name, task.get("name", ""), tuple(_as_list(body.get("that"))), tuple(when),
                    str(body.get("fail_msg") or body.get("msg") or task.get("name", "")),
                    tuple(scope.items())))

    for path in sorted((role_dir / "tasks").glob("*.yml")):
        if TAG in path.read_text(encoding="utf-8"):
            # As Ansible loads task files: their templates (in vars and messages) are trusted.
            walk(_loader().load_from_file(str(path), trusted_as_template=True), {}, [])
    return tuple(found)


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _assert_problems(workspace: Workspace, role: str, checks, target: Target, user: dict) -> list[str]:
    from ansible.template import trust_as_template

    variables = _role_variables(workspace, role, target, user)
    templar = _templar(variables)
    found = []
    for item in checks:
        scoped = _templar({**variables, **dict(item.vars)}) if item.vars else templar

        def holds(condition: str, scoped=scoped) -> bool:
            return bool(scoped.template(trust_as_template("{{ (" + condition.strip() + ") }}")))

        try:
            if all(holds(c) for c in item.when) and not all(holds(c) for c in item.that):
                found.append(" ".join(str(scoped.template(trust_as_template(item.fail_msg))).split()))
        except Exception as exc:  # a value the expression cannot even read
            found.append(f"{item.name} ({role}): the settings cannot be checked: {exc}")
        if found:  # the play stops at a role's first failed assert; so does this
            break
    return found


def _role_variables(workspace: Workspace, role: str, target: Target, user: dict) -> dict:
    """As a play sees them in the role: its dependencies' and its own defaults, then the host's
    variables, then the role vars (which outrank inventory variables)."""
    loader = _loader()
    roles = workspace.root / "roles"
    # The data roles every role may read (a workspace from an older rigforge lacks pins).
    dependencies = [d for d in ("gpu_stack", "pins") if (roles / d).is_dir() and d != role]
    variables: dict = {}
    for name in (*dependencies, role):
        defaults = roles / name / "defaults" / "main.yml"
        if defaults.is_file():
            variables.update(loader.load_from_file(str(defaults), trusted_as_template=True) or {})
    variables.update(user)
    for name in (*dependencies, role):
        role_vars = roles / name / "vars" / "main.yml"
        if role_vars.is_file():
            variables.update(loader.load_from_file(str(role_vars), trusted_as_template=True) or {})
    # The tagged asserts read settings, not facts; a default that names one in a string (the
    # Miniforge URL names the architecture) gets the recorded one, or x86_64: only the shape of
    # such a value is checked.
    recorded = target.vars.get("rigforge_facts") or {}
    facts = {"architecture": recorded.get("arch") or "x86_64",
             "distribution": ((recorded.get("os") or {}).get("id") or "debian").capitalize()}
    variables.update(inventory_hostname=target.host.name, role_path=str(roles / role), ansible_facts=facts)
    return variables


@cache
def _loader():
    import warnings

    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import init_plugin_loader

    with warnings.catch_warnings():  # already configured by an earlier user in this process: fine
        warnings.simplefilter("ignore", UserWarning)
        init_plugin_loader()
    return DataLoader()


def _templar(variables: dict):
    from ansible.template import Templar

    return Templar(loader=_loader(), variables=variables)
