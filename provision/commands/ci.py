"""``rigforge ci``: boot a throwaway host, provision, check idempotence, verify, tear down."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from provision.workspace import Workspace


def ci(workspace: Workspace, components: str | None, keep: bool = False,
       say: Callable[[str], None] = print, junit: Path | None = None,
       backend: str | None = None, image: str | None = None):
    """The run's :class:`~provision.ci.CiResult`; its JUnit report goes to ``junit``."""
    from provision import components as comp
    from provision import fsutil
    from provision.ci import junit_xml, run_ci

    result = run_ci(workspace, comp.parse_list(components), keep=keep, say=say, backend=backend, image=image)
    if junit is not None:
        fsutil.write_text(junit, junit_xml(result))
    return result
