"""Adding, listing and removing hosts: the inventory, known_hosts and ssh_config together."""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from provision import fsutil, known_hosts
from provision.errors import UsageError
from provision.inventory import (
    Host,
    Inventory,
    validate_address,
    validate_name,
    validate_port,
    validate_user,
)
from provision.known_hosts import HostKey
from provision.workspace import Workspace

SANDBOX_GROUP = "sandbox"


def add_host(
    workspace: Workspace,
    host: Host,
    confirm_key: Callable[[HostKey], bool],
    fetch: Callable[[str, int], HostKey] | None = None,
) -> HostKey:
    """Validate ``host``, fetch and confirm its SSH host key, then record both.

    Nothing is written unless validation passes and ``confirm_key`` returns True.
    """
    inventory = Inventory(workspace.inventory)
    validate_name(host.name)
    validate_address(host.address)
    validate_user(host.user)
    validate_port(host.port)
    inventory.add(host)  # in memory only: catches duplicates and bad groups before the network
    if host.key and not Path(host.key).expanduser().is_file():
        raise UsageError(
            f"SSH key {host.key} does not exist", hint="give the private key's path with --key"
        )
    key = (fetch or known_hosts.fetch)(host.address, host.port)
    known_hosts.check_consistent(workspace.known_hosts, host.address, host.port, [key])
    if not confirm_key(key):
        raise UsageError(
            f"host key of {host.address} not accepted; nothing was changed",
            hint="compare the fingerprint with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`"
            " on the host's console, then pass --accept-host-key",
        )
    known_hosts.record(workspace.known_hosts, host.address, host.port, [key])
    inventory.save()
    write_ssh_config(workspace, inventory)
    return key


def register(workspace: Workspace, host: Host, keys: list[HostKey]) -> None:
    """Record a host whose keys were obtained out of band (a sandbox's, read from its disk)."""
    inventory = Inventory(workspace.inventory)
    inventory.add(host)
    known_hosts.record(workspace.known_hosts, host.address, host.port, keys)
    inventory.save()
    write_ssh_config(workspace, inventory)


def check_can_add(workspace: Workspace, name: str) -> None:
    """Fail early (before any host is created) when ``name`` is taken or invalid."""
    validate_name(name)
    inventory = Inventory(workspace.inventory)
    if inventory.get(name):
        raise UsageError(
            f"host {name!r} is already in {workspace.inventory}",
            hint=f"pick another name, or `rigforge host remove {name}` first",
        )


def remove_host(workspace: Workspace, name: str) -> Host:
    inventory = Inventory(workspace.inventory)
    host = inventory.remove(name)
    still_used = any(
        (h.address, h.port) == (host.address, host.port) for h in inventory.hosts()
    )
    inventory.save()
    if not still_used:
        known_hosts.forget(workspace.known_hosts, host.address, host.port)
    write_ssh_config(workspace, inventory)
    return host


def list_hosts(workspace: Workspace) -> list[Host]:
    return Inventory(workspace.inventory).hosts()


#: Connection variables rigforge's own SSH honours (probe, converged check, verify), as Ansible does.
_CONNECTION_VARS = {"ansible_host": "address", "ansible_port": "port", "ansible_user": "user",
                    "ansible_ssh_private_key_file": "key"}


def connection(workspace: Workspace, host: Host) -> Host:
    """``host`` with the connection variables of its ``host_vars`` files applied: Ansible lets
    them override what ``hosts.yml`` says, so every path of rigforge must too. (A value that
    is templated or vaulted cannot be read here and is left to Ansible.)"""
    import dataclasses

    changes = {}
    for name, value in _host_vars_files(workspace, host.name).items():
        attr = _CONNECTION_VARS.get(name)
        if attr is None or not isinstance(value, str | int) or isinstance(value, bool) or "{{" in str(value):
            continue
        if attr == "port":
            if not str(value).isdigit():
                continue  # refused by validation before any run
            value = int(value)
        changes[attr] = value
    return dataclasses.replace(host, **changes) if changes else host


def _host_vars_files(workspace: Workspace, name: str) -> dict:
    """What ``host_vars/NAME.yml`` (or ``.yaml``, or the files in ``host_vars/NAME/``) set."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    # !vault and other tags: not readable here, and not needed.
    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    base = workspace.root / "inventory" / "host_vars"
    paths = [base / f"{name}.yml", base / f"{name}.yaml", *sorted((base / name).glob("*.y*ml"))]
    found: dict = {}
    for path in paths:
        if path.is_file():
            try:
                data = yaml.load(path.read_text(encoding="utf-8"), Loader=Loader)
            except yaml.YAMLError:
                continue  # Ansible reports it, with the file's name
            if isinstance(data, dict):
                found.update(data)
    return found


def write_ssh_config(workspace: Workspace, inventory: Inventory | None = None) -> Path:
    """(Re)write ``.rigforge/ssh_config`` for testinfra and ``ssh -F``."""
    inventory = inventory or Inventory(workspace.inventory)
    hosts = [
        {
            "name": h.name,
            "address": h.address,
            "port": h.port,
            "user": h.user,
            "key": str(Path(h.key).expanduser()) if h.key else None,
        }
        for h in (connection(workspace, h) for h in inventory.hosts())
    ]
    # Unix socket paths are limited to 108 bytes, which a workspace path can exceed.
    control_dir = Path(tempfile.gettempdir()) / f"rigforge-cp-{os.getuid()}"
    control_dir.mkdir(exist_ok=True, mode=0o700)
    if control_dir.stat().st_uid != os.getuid() or control_dir.stat().st_mode & 0o077:
        raise UsageError(
            f"{control_dir} is not a private directory of this user",
            hint="remove it; rigforge recreates it with mode 0700",
        )
    context = {"hosts": hosts, "known_hosts": workspace.known_hosts, "control_dir": control_dir}
    # Every verify and run calls this: when neither the hosts nor the template changed, the
    # file stands as it is, without loading Jinja2 or an fsync'd rewrite.
    inputs = _ssh_config_inputs(context)
    if _ssh_config_stamp(workspace.ssh_config) == inputs:
        return workspace.ssh_config
    from provision.render import render

    text = render("ssh_config.j2", context)
    stamp = f"# rigforge-inputs {inputs} {_sha256(text.encode())}\n"
    fsutil.write_text(workspace.ssh_config, stamp + text, mode=0o600)
    return workspace.ssh_config


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _ssh_config_inputs(context: dict) -> str:
    import json

    from provision import assets

    template = (assets.templates_dir() / "ssh_config.j2").read_bytes()
    return _sha256(json.dumps(context, sort_keys=True, default=str).encode() + b"\0" + template)


def _ssh_config_stamp(path: Path) -> str | None:
    """The inputs an ssh_config was rendered from, if the file is still as rendered."""
    try:
        head, _, text = path.read_bytes().partition(b"\n")
    except OSError:
        return None
    fields = head.decode(errors="replace").split()
    if len(fields) != 4 or fields[:2] != ["#", "rigforge-inputs"] or fields[3] != _sha256(text):
        return None
    return fields[2]
