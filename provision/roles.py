"""What a workspace's roles declare about themselves: the roles each one reaches (its
``meta/main.yml`` dependencies and the roles its task files import or include) and its
``meta/argument_specs.yml``.

Read from the files, never listed by hand, so that a role that starts importing another is
accounted for in the converged records and the validation without anyone remembering to.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from provision import registry

_ROLE_IMPORTS = ("ansible.builtin.import_role", "ansible.builtin.include_role",
                 "import_role", "include_role")


def _load(path: Path):
    import yaml

    return yaml.safe_load(path.read_text()) if path.is_file() else None


def _walk_tasks(tasks):
    """Every task in a task list, blocks included."""
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        yield task
        for key in ("block", "rescue", "always"):
            yield from _walk_tasks(task.get(key))


@cache
def _direct(roles_dir: Path, role: str) -> tuple[str, ...]:
    """The roles one role names itself: its meta dependencies and its task files' imports."""
    found = []
    meta = _load(roles_dir / role / "meta" / "main.yml") or {}
    for dep in meta.get("dependencies") or []:
        found.append(dep["role"] if isinstance(dep, dict) else dep)
    for folder in ("tasks", "handlers"):
        for path in sorted((roles_dir / role / folder).glob("*.yml")):
            for task in _walk_tasks(_load(path)):
                for key in _ROLE_IMPORTS:
                    target = task.get(key)
                    if isinstance(target, dict) and isinstance(target.get("name"), str):
                        found.append(target["name"])
    return tuple(dict.fromkeys(r for r in found if r != role))


def reached(roles_dir: Path, start: tuple[str, ...]) -> tuple[str, ...]:
    """``start`` and every role they reach, transitively, in the order first met."""
    order, queue = [], list(start)
    while queue:
        role = queue.pop(0)
        if role in order:
            continue
        order.append(role)
        queue += _direct(roles_dir, role)
    return tuple(order)


def of_component(roles_dir: Path, name: str) -> tuple[str, ...]:
    """The roles whose files shape a component: its own, what its play imports, and what
    those reach."""
    component = registry.get(name)
    start = (component.role, *registry.PLAY_ROLES,
             *(("nvidia_driver",) if component.rehold_driver else ()))
    return reached(roles_dir, start)


@cache
def argument_spec(roles_dir: Path, role: str) -> dict:
    """The role's ``main`` entry point spec (``{}`` when it has none)."""
    spec = _load(roles_dir / role / "meta" / "argument_specs.yml") or {}
    return (spec.get("argument_specs") or {}).get("main") or {}
