"""``rigforge verify``: the testinfra checks of each host's components, in one pytest run."""

from __future__ import annotations

from pathlib import Path

from provision.workspace import Workspace


def verify(workspace: Workspace, limit: str | None, components: str | None, full: bool = False,
           output: Path | None = None, fmt: str = "table", tier: str | None = None):
    """Choose the hosts and their components (probing ``auto`` hosts never probed), run the
    checks of the tiers in ``tier`` (comma-separated; default: all), write the report to
    ``output`` in ``fmt`` if given; returns the :class:`~provision.verify.VerifyResult`."""
    from provision import components as comp
    from provision import targets
    from provision.verify import run_checks
    from provision.verify import tiers as verify_tiers
    from provision.verify import vars as verify_vars

    narrowing = comp.parse_list(components)
    tiers = verify_tiers.parse(tier)
    loaded = verify_vars.Deferred()
    chosen = targets.resolve(workspace, limit, narrowing, loaded)
    unknown = [t for t in chosen if t.auto and not t.vars.get("rigforge_facts")]
    if unknown:  # auto hosts never probed: their facts decide which checks apply
        from provision.deploy import probe_facts

        targets.settle_auto(chosen, narrowing, *probe_facts(workspace, unknown))
    targets.settle_auto(chosen, narrowing)
    loaded.save()
    if tiers != list(verify_tiers.TIERS):
        from provision.verify.spec import refuse_empty_tiers

        refuse_empty_tiers(chosen, tiers)
    result = run_checks(workspace, chosen, narrowing, reuse=not full,
                        tiers=None if tiers == list(verify_tiers.TIERS) else tiers)
    if output is not None:
        from provision import fsutil

        fsutil.write_text(output, report_text(result, fmt))
    return result


def report_text(result, fmt: str) -> str:
    """The report in ``fmt`` (table, json or junit), as written to ``--output``."""
    from provision import output

    if fmt == "json":
        return output.dumps(result.to_dict()) + "\n"
    if fmt == "junit":
        return result.junit_xml
    return output.verify_table_text(result)
