"""Tables and JSON for results. Pure functions of the result objects; the CLI prints them."""

import json

from provision.inventory import Host
from provision.verify.results import VerifyResult
from provision.verify.tiers import TIERS

_OUTCOME_STYLE = {"passed": "green", "failed": "bold red", "error": "bold red", "skipped": "dim"}


def dumps(data) -> str:
    return json.dumps(data, indent=2, sort_keys=False)


def hosts_table(hosts: list[Host]):
    from rich.table import Table

    table = Table(title="hosts", title_justify="left")
    for column in ("name", "address", "port", "user", "groups", "key"):
        table.add_column(column)
    for h in hosts:
        table.add_row(
            h.name, h.address, str(h.port), h.user or "", ",".join(h.groups), h.key or ""
        )
    return table


def verify_table_text(result: VerifyResult, width: int = 160) -> str:
    """The table as plain text, for a file (``verify --format table --output F``)."""
    import io

    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, highlight=False).print(verify_table(result))
    return buffer.getvalue()


def verify_table(result: VerifyResult):
    from rich.table import Table

    table = Table(title="verify", title_justify="left")
    for column in ("host", "tier", "component", "check", "result", "detail"):
        table.add_column(column)
    order = {t: i for i, t in enumerate(TIERS)}
    for c in sorted(result.checks, key=lambda c: (c.host or "", order.get(c.tier, 9), c.component or "")):
        style = _OUTCOME_STYLE.get(c.outcome, "")
        table.add_row(
            c.host or "", c.tier, c.component or "", c.check, f"[{style}]{c.outcome}[/]", c.message
        )
    return table


def doctor_table(found: list):
    """One row per diagnosis: what is wrong, and the step that fixes it."""
    from rich.table import Table

    table = Table(title="doctor", title_justify="left")
    for column in ("host", "tier", "check", "diagnosis", "fix"):
        table.add_column(column, overflow="fold")
    for d in found:
        table.add_row(d.host or "", d.tier, d.check, d.diagnosis, d.fix)
    return table


def verify_counts(result: VerifyResult) -> str:
    counts: dict[str, int] = {}
    for c in result.checks:
        counts[c.outcome] = counts.get(c.outcome, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no checks ran"


def render_diff(diffs: list) -> str:
    """Ansible's ``--diff`` payloads as text: unified diffs of files, apt's prepared summary."""
    import difflib

    parts = []
    for diff in diffs:
        if not isinstance(diff, dict):
            continue
        if diff.get("prepared"):
            parts.append(_without_apt_suggestions(str(diff["prepared"])))
        before, after = diff.get("before"), diff.get("after")
        if isinstance(before, str) and isinstance(after, str) and before != after:
            lines = difflib.unified_diff(
                before.splitlines(keepends=True),
                after.splitlines(keepends=True),
                fromfile=str(diff.get("before_header", "before")),
                tofile=str(diff.get("after_header", "after")),
            )
            parts.append("".join(lines).rstrip())
    return "\n".join(p for p in parts if p)


def _without_apt_suggestions(text: str) -> str:
    """apt's plan minus the "Suggested/Recommended packages" lists, which are not installed."""
    kept, skipping = [], False
    for line in text.rstrip().splitlines():
        if not line.startswith(" "):
            skipping = line.startswith(("Suggested packages:", "Recommended packages:"))
        if not skipping:
            kept.append(line)
    return "\n".join(kept)


def print_probe(console, entry: dict) -> None:
    """One host's probe: facts, the recommended stack, and what is wrong with the current one."""
    from rich.table import Table

    name = entry["host"]
    if entry.get("error"):
        console.print(f"[bold red]{name}: probe failed[/]: {entry['error']}")
        return
    facts = entry["facts"]
    table = Table(title=f"{name}", title_justify="left", show_header=False)
    table.add_column("fact")
    table.add_column("value")
    osinfo = facts.get("os") or {}
    table.add_row("os", f"{osinfo.get('name') or osinfo.get('id')} ({facts.get('arch')})")
    table.add_row("kernel", facts.get("kernel") or "?")
    table.add_row("memory", f"{facts.get('memory_mib') or '?'} MiB")
    table.add_row("free on /", f"{facts.get('disk_free_gib')} GiB")
    gpus = facts.get("gpus")
    gpu_text = "unknown (lspci missing: the base component installs it)" if gpus is None else (
        "\n".join(f"{g['name']} [10de:{g['device_id']}] {g.get('architecture') or '?'}"
                  for g in gpus) or "none"
    )
    table.add_row("GPUs", gpu_text)
    driver = facts.get("driver")
    table.add_row("driver loaded", f"{driver['loaded']} ({driver['flavor']})" if driver else "no")
    table.add_row("nvidia-smi", (facts.get("nvidia_smi") or {}).get("status", "?"))
    secure = facts.get("secure_boot") or {}
    table.add_row("Secure Boot", secure.get("state", "?") + (" (enforcing)" if secure.get(
        "enforcing") else ""))
    table.add_row("reboot pending", "yes" if facts.get("reboot_required") else "no")
    console.print(table)
    recommended = entry.get("recommended") or {}
    if recommended:
        console.print("recommended stack: " + ", ".join(f"{k}={v}" for k, v in recommended.items()))
    for reason in entry.get("reasons", []):
        console.print(f"  - {reason}")
    for problem in entry.get("problems", []):
        console.print(f"[bold red]problem[/]: {problem}")
    for note in entry.get("notes", []):
        console.print(f"[yellow]note[/]: {note}")
    for what in facts.get("unreadable", []):
        console.print(f"[yellow]could not read[/] {what}")


def print_stack_show(console, shown: dict) -> None:
    """``rigforge stack show``: the resolved stack, then per component its packages."""
    from rich.table import Table

    gpus = ", ".join(f"{g['name']} [{g['pci_id']}] {g['architecture'] or '?'}" for g in shown["gpus"])
    gpus = gpus or "none"
    console.print(f"[bold]{shown['os_name']}[/], GPUs: {gpus}")
    stack = shown["stack"]
    console.print(
        f"driver {stack['nvidia_driver_branch']} ({stack['nvidia_driver_flavor']}) from "
        f"{stack['nvidia_driver_source']}; CUDA {stack['cuda_version']} from {stack['cuda_source']}; "
        f"cuDNN {stack['cudnn_version']} from {stack['cudnn_source']}"
    )
    table = Table(show_header=True)
    for column in ("component", "source", "packages", "holds / blacklist"):
        table.add_column(column)
    for plan in shown["components"]:
        guard = []
        if plan["holds"]:
            at = plan["holds"][0].split(" at version ")[-1]
            guard.append(f"held at {at}: " + " ".join(h.split(" at version ")[0] for h in plan["holds"]))
        if plan["blacklist"]:
            guard.append(f"unattended-upgrades never: {' '.join(plan['blacklist'])}")
        guard = "\n".join(guard)
        table.add_row(plan["component"], plan["source"], "\n".join(plan["packages"]), guard)
    console.print(table)
    for plan in shown["components"]:
        for note in plan["notes"]:
            console.print(f"{plan['component']}: {note}")
    for note in shown["notes"]:
        console.print(f"[yellow]note[/]: {note}")
