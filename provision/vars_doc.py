"""The documented variables of ``inventory/group_vars/all.yml``, generated from the roles'
``meta/argument_specs.yml``: the one description of each variable, which Ansible also
enforces when the role runs, so the documentation cannot drift from what the roles accept.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

from provision import registry, roles

# Ansible's documentation markup: O(option), C(code), V(value), I(italic), ...
_MARKUP = re.compile(r"\b[OCVIBMRL]\((.+?)\)")
_WIDTH = 98


@dataclass(frozen=True)
class Variable:
    name: str
    default: str
    comment: tuple[str, ...]


@dataclass(frozen=True)
class Section:
    role: str
    title: str
    about: tuple[str, ...]
    variables: tuple[Variable, ...]


def _plain(text: str) -> str:
    return " ".join(_MARKUP.sub(lambda m: f"`{m.group(1)}`", str(text)).split())


def _default(option: dict) -> str:
    if "default" not in option:
        return '""   # required' if option.get("required") else "(no default)"
    value = option["default"]
    if isinstance(value, str):
        # Quoted as YAML needs it: templates and versions like "12.8" stay strings.
        return json.dumps(value) if (not value or "{{" in value or value[0] in "*&!%@`'\"[{"
                                     or re.fullmatch(r"[\d.]+|true|false|yes|no", value)) else value
    return json.dumps(value)


def _variable(name: str, option: dict) -> Variable:
    description = option.get("description") or []
    if isinstance(description, str):
        description = [description]
    lines = [_plain(description[0])] if description else []
    if option.get("choices"):
        lines.append("One of: " + ", ".join(str(c) for c in option["choices"]) + ".")
    return Variable(name, _default(option), tuple(_wrap(" ".join(lines))) if lines else ())


def _wrap(text: str, bullet: str = "") -> list[str]:
    return textwrap.wrap(text, _WIDTH - 2, initial_indent=bullet, subsequent_indent=" " * len(bullet),
                         break_on_hyphens=False)


def sections(roles_dir: Path) -> list[Section]:
    """One section per role with options, in stack order: each component's role, then the
    roles it reaches (NVIDIA's CUDA repository after the driver)."""
    placed: list[str] = []
    for component in registry.REGISTRY:
        placed += [r for r in roles.reached(roles_dir, (component.role,)) if r not in placed]
    found = []
    for role in placed:
        spec = roles.argument_spec(roles_dir, role)
        options = spec.get("options") or {}
        if not options:
            continue
        title = _plain(spec.get("short_description") or role).rstrip(".")
        about = spec.get("description") or []
        about = [about] if isinstance(about, str) else about
        variables = tuple(_variable(n, o) for n, o in options.items())
        found.append(Section(role, title, tuple(_wrap(_plain(a), "- ") for a in about), variables))
    return found


def render(roles_dir: Path) -> str:
    """The commented block that ``templates/group_vars_all.yml.j2`` puts under the header."""
    out = []
    for section in sections(roles_dir):
        out += ["", f"# --- {section.title} (role `{section.role}`)"]
        out += [f"# {line}" for about in section.about for line in about]
        for variable in section.variables:
            out += [f"# {line}" for line in variable.comment]
            line = f"# {variable.name}: {variable.default}"
            if len(line) > _WIDTH and variable.default.startswith("["):
                # A long list reads (and uncomments) better as a block.
                line = "\n".join([f"# {variable.name}:",
                                   *(f"#   - {json.dumps(v)}" for v in json.loads(variable.default))])
            out.append(line)
    return "\n".join(out).lstrip("\n") + "\n"
