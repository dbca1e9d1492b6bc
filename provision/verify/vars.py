"""Each host's variables for ``rigforge verify``, kept while the workspace is unchanged.

Resolving variables means loading the inventory through Ansible, which costs more than the
checks' own round trips on a small host. The result depends only on the workspace's files
(values are not templated), so it is kept in ``.rigforge/verify-vars.json`` under the same
fingerprint the converged check uses, and reused until any of those files changes.

The file holds what the checks may see and nothing else: every variable whose name says it
is a secret is left out, at any depth, and the file is readable by its owner only.
"""

import json

from provision import fsutil
from provision.fingerprint import workspace_fingerprint
from provision.secrets import public
from provision.workspace import Workspace

CACHE = "verify-vars.json"


def host_vars(workspace: Workspace) -> dict[str, dict]:
    """``{host: vars}`` as :func:`provision.hostvars.resolve` gives them, secrets left out."""
    loader = Deferred()
    hosts = loader(workspace)
    loader.save()
    return hosts


class Deferred:
    """:func:`host_vars` that keeps a freshly resolved result in memory until :meth:`save`,
    so that a command refused after reading the variables leaves the workspace as it was."""

    def __init__(self) -> None:
        self._pending: tuple[Workspace, str, dict] | None = None

    def __call__(self, workspace: Workspace) -> dict[str, dict]:
        fp = workspace_fingerprint(workspace)
        try:
            cached = json.loads((workspace.state_dir / CACHE).read_text())
        except (OSError, ValueError):
            cached = {}
        fresh = isinstance(cached, dict) and cached.get("fingerprint") == fp
        if fresh and isinstance(cached.get("hosts"), dict):
            return cached["hosts"]
        from provision import hostvars

        hosts = {name: public(v) for name, v in hostvars.resolve(workspace).items()}
        self._pending = (workspace, fp, hosts)
        return hosts

    def save(self) -> None:
        if self._pending:
            workspace, fp, hosts = self._pending
            fsutil.write_text(workspace.state_dir / CACHE,
                              json.dumps({"fingerprint": fp, "hosts": hosts}, default=str) + "\n", mode=0o600)
            self._pending = None
