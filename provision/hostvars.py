"""Each host's variables as Ansible sees them, plus the shipped roles' defaults.

Used to validate choices before any host is touched, and by the checks to know what the
host should look like. Values are not templated: a ``"{{ ... }}"`` string stays a string.
"""


import yaml

from provision.errors import UsageError
from provision.workspace import Workspace


def role_defaults(workspace: Workspace) -> dict:
    """Every role's ``defaults/main.yml`` merged (role variables are prefixed, so no clashes)."""
    merged: dict = {}
    for path in sorted((workspace.root / "roles").glob("*/defaults/main.yml")):
        merged.update(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    return merged


def inventory_vars(workspace: Workspace) -> dict[str, dict]:
    """``{host: vars}`` from the inventory, group_vars and host_vars (Ansible's precedence)."""
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.manager import VariableManager

    loader = DataLoader()
    try:
        inventory = InventoryManager(loader=loader, sources=[str(workspace.inventory)])
        manager = VariableManager(loader=loader, inventory=inventory)
        return {
            host.name: _plain(manager.get_vars(host=host, include_hostvars=False))
            for host in inventory.get_hosts()
        }
    except AnsibleError as exc:
        raise UsageError(
            f"Ansible cannot read the inventory in {workspace.inventory.parent}: {exc.message}",
            hint="fix the named file; rigforge changed nothing",
        ) from None


def _plain(value):
    """Ansible's tagged containers -> plain dicts/lists/str, so they compare and print simply."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool | int | float) or value is None:
        return value
    try:
        return str(value)
    except Exception:  # a vaulted value without its password: we never need its plain text
        return "<vaulted>"


def resolve(workspace: Workspace) -> dict[str, dict]:
    """``{host: role defaults overlaid with inventory vars}``."""
    defaults = role_defaults(workspace)
    return {
        name: {**defaults, **hvars}
        for name, hvars in inventory_vars(workspace).items()
    }

