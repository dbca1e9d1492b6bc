"""Check each host's stack choices with the compatibility resolver before anything runs.

The resolver (:mod:`provision.gpu.stack`) is pure; this module feeds it the workspace's
variables and the host's facts (live from a probe, or as recorded by ``rigforge probe``).
"""

from dataclasses import asdict

from provision import registry
from provision.errors import UsageError
from provision.targets import Target
from provision.workspace import Workspace


def needs_check(targets: list[Target]) -> bool:
    return any(c in registry.resolved() for t in targets for c in t.components)


def check(targets: list[Target], live_facts: dict[str, dict] | None = None) -> dict[str, list]:
    """Raise :class:`UsageError` listing every problem on every host; return the notes."""
    from provision.facts import host_facts
    from provision.gpu import stack

    problems, notes = [], {}
    for target in targets:
        if not any(c in registry.resolved() for c in target.components):
            continue
        record = (live_facts or {}).get(target.host.name) or target.vars.get("rigforge_facts")
        resolution = stack.resolve(target.vars, host_facts(record), target.components)
        notes[target.host.name] = list(resolution.notes)
        problems += [f"{target.host.name}: {p.message}" for p in resolution.problems]
    if problems:
        raise UsageError(
            "the chosen stack cannot work:\n  - " + "\n  - ".join(problems),
            hint="nothing was changed; set the named variables in inventory/group_vars or "
            "host_vars (`rigforge probe` shows a recommended stack per host)",
        )
    return notes


def advice(workspace: Workspace, host: str, facts: dict) -> dict:
    """What ``rigforge probe`` prints: the recommended stack and the current one's problems."""
    from provision import components, hostvars
    from provision.facts import host_facts
    from provision.gpu import stack

    hvars = {**hostvars.resolve(workspace).get(host, {}), "rigforge_facts": facts}
    parsed = host_facts(facts)
    recommended, reasons = stack.recommend(parsed)
    selected = components.host_components(hvars, host)
    resolution = stack.resolve(hvars, parsed, selected)
    return {
        "recommended": asdict(recommended),
        "reasons": list(reasons),
        "current": asdict(resolution.stack),
        "problems": [p.message for p in resolution.problems],
        "notes": list(resolution.notes),
    }
