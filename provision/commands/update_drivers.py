"""``rigforge update-drivers``: move the NVIDIA driver to a new branch (or update it), rolling,
``serial`` hosts at a time, with a rollback per host (playbooks/update_drivers.yml)."""

from __future__ import annotations

from dataclasses import dataclass, field

from provision import deploy
from provision.commands.converge import RunOptions, apply
from provision.commands.interaction import Interaction
from provision.errors import DeclinedError, UsageError
from provision.runner import RunResult
from provision.workspace import Workspace

PLAYBOOK = "playbooks/update_drivers.yml"


@dataclass
class UpdateResult:
    run: RunResult
    #: ``{host: message}`` about the branch recorded in the inventory.
    pinned: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"run": self.run.to_dict()}


def update_drivers(workspace: Workspace, branch: str | None, limit: str | None, serial: int,
                   ui: Interaction, options: RunOptions | None = None) -> UpdateResult:
    options = options or RunOptions()
    if branch is not None and not (branch.isdigit() and len(branch) == 3):
        raise UsageError(f"invalid --branch {branch!r}", hint='give a driver branch like "575"')
    overrides = {"nvidia_driver_branch": branch} if branch else {}
    if not (workspace.root / PLAYBOOK).is_file():
        raise UsageError("this workspace has no playbooks/update_drivers.yml (it predates it)",
                         hint="run `rigforge init --force` to refresh roles, playbooks and "
                         "site.yml; your inventory, vars and known_hosts are kept")
    # Hosts named with --limit must select the driver; without it, the others are left out, saying so.
    prepared = deploy.prepare(workspace, limit, "nvidia_driver", overrides=overrides,
                              refuse_unselected=bool(limit))
    for t in prepared.targets:
        if "nvidia_driver" not in t.components:
            ui.say(f"{t.host.name}: left out (it does not select nvidia_driver)")
    prepared.targets = [t for t in prepared.targets if "nvidia_driver" in t.components]
    if not prepared.targets:
        raise UsageError("no host selects the nvidia_driver component",
                         hint="add nvidia_driver to rigforge_components in inventory/host_vars/HOST.yml "
                         "or group_vars; nothing was run")
    if not ui.confirm(f"Update the NVIDIA driver on {', '.join(prepared.names)}?"):
        raise DeclinedError("not confirmed: nothing was changed")
    options.become_password = ui.become_password()
    run = apply(prepared, ui, "update-drivers", options, record_converged=False, playbook=PLAYBOOK,
                extravars={"rigforge_serial": serial, **overrides})
    result = UpdateResult(run)
    if branch:
        result.pinned = _pin(workspace, run, branch)
    return result


def _pin(workspace: Workspace, run: RunResult, branch: str) -> dict[str, str]:
    """Otherwise the next ``provision`` would switch the updated hosts back."""
    updated = [n for n, h in run.hosts.items() if h.status in ("ok", "changed")]
    shadowed = deploy.pin_branch(workspace, updated, branch)
    return {
        name: (f"warning {name}: a host_vars file sets another nvidia_driver_branch, which "
               f"outranks hosts.yml: set it to {branch!r} there, or the next provision switches "
               "the host back") if name in shadowed
        else f"{name}: nvidia_driver_branch is now {branch!r} in inventory/hosts.yml"
        for name in updated
    }
