"""``rigforge doctor [HOST]``: verify's checks, every tier, with a diagnosis and a fix per failure."""

from __future__ import annotations

from provision.workspace import Workspace


def doctor(workspace: Workspace, host: str | None, components: str | None = None, tier: str | None = None,
           full: bool = False):
    """(the verify result, its diagnoses). ``host``: one host or a --limit pattern; default all."""
    from provision import doctor as diagnosis
    from provision.commands.verify import verify

    result = verify(workspace, host, components, full, tier=tier)
    return result, diagnosis.diagnose(result)
