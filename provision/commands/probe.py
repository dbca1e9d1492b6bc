"""``rigforge probe``: read each host's facts (one SSH session each), record them, advise."""

from __future__ import annotations

from dataclasses import dataclass

from provision.workspace import Workspace


@dataclass
class ProbeReport:
    entries: list[dict]

    @property
    def failed(self) -> bool:
        return any(e["error"] for e in self.entries)

    def to_list(self) -> list[dict]:
        return self.entries


def probe(workspace: Workspace, names: tuple[str, ...], record: bool = True) -> ProbeReport:
    from provision import probe as probe_mod
    from provision import stack_check, targets
    from provision.inventory import Inventory

    chosen = targets.parse_limit(Inventory(workspace.inventory), ",".join(names) if names else None)
    results = probe_mod.probe_hosts(workspace, chosen)
    if record:
        probe_mod.record_facts(workspace, results)
    entries = []
    for result in results:
        entry = {"host": result.host, "error": result.error, "facts": result.facts}
        if result.facts is not None:
            entry.update(stack_check.advice(workspace, result.host, result.facts))
        entries.append(entry)
    return ProbeReport(entries)
