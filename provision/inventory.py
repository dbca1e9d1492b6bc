"""Hosts and groups in ``inventory/hosts.yml``, edited without losing the user's comments.

The file is ordinary Ansible YAML inventory::

    all:
      hosts:
        rig1: {ansible_host: 10.0.0.5, ansible_user: alice, ansible_port: 22}
      children:
        gpu:
          hosts:
            rig1:
"""

import io
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from provision import fsutil
from provision.errors import UsageError

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
_GROUP = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
RESERVED_GROUPS = ("all", "ungrouped")


@dataclass
class Host:
    name: str
    address: str
    user: str | None = None
    port: int = 22
    key: str | None = None
    groups: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "address": self.address,
            "user": self.user,
            "port": self.port,
            "key": self.key,
            "groups": self.groups,
        }


def validate_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise UsageError(
            f"invalid host name {name!r}",
            hint="use a letter first, then letters, digits, '-' or '_' (at most 63 characters),"
            " e.g. rig1",
        )
    return name


def validate_group(group: str) -> str:
    if not _GROUP.match(group or "") or group in RESERVED_GROUPS:
        raise UsageError(
            f"invalid group name {group!r}",
            hint="use lower-case letters, digits and '_', starting with a letter"
            " (not 'all' or 'ungrouped'), e.g. gpu_rigs",
        )
    return group


def validate_address(address: str) -> str:
    """An IPv4/IPv6 address or a DNS name."""
    try:
        ipaddress.ip_address(address)
        return address
    except ValueError:
        pass
    labels = (address or "").rstrip(".").split(".")
    looks_numeric = all(label.isdigit() for label in labels)
    if address and len(address) <= 253 and not looks_numeric and all(
        _DNS_LABEL.match(label) for label in labels
    ):
        return address
    raise UsageError(
        f"invalid address {address!r}",
        hint="give an IPv4 or IPv6 address (192.168.1.50) or a DNS name (rig1.lan)",
    )


#: A login name as useradd accepts it (POSIX portable characters, no leading dash).
_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")


def validate_user(user: str | None) -> str | None:
    if user is not None and not _USER.match(user):
        raise UsageError(
            f"invalid user name {user!r}",
            hint="give the login name on the host: a letter or '_' first, then letters, digits, "
            "'.', '_' or '-' (at most 32 characters), e.g. alice",
        )
    return user


def validate_port(port: int) -> int:
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise UsageError(f"invalid port {port!r}", hint="use a number from 1 to 65535")
    return port


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.explicit_start = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


_parsed: dict[str, object] = {}


def _parse(text: str):
    """``hosts.yml`` parsed, once per text and process: one command reads the inventory
    several times (targets, ssh_config), and the round-trip parser costs far more than a
    copy. Each caller gets its own copy, free to change and save."""
    import copy

    if text not in _parsed:
        _parsed.clear()
        _parsed[text] = _yaml().load(text)
    return copy.deepcopy(_parsed[text])


class Inventory:
    """A round-trip view of ``hosts.yml``. Call :meth:`save` to write it back atomically."""

    def __init__(self, path: Path):
        self.path = path
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UsageError(
                f"inventory {path} is missing", hint="run `rigforge init --force` to recreate it"
            ) from None
        try:
            data = _parse(text)
        except YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise UsageError(
                f"{path} is not valid YAML{where}: {problem}",
                hint="fix the file by hand (or restore it from git); rigforge changed nothing",
            ) from None
        self._data = self._check_shape(data)

    def _check_shape(self, data) -> CommentedMap:
        def bad(what: str) -> UsageError:
            return UsageError(
                f"{self.path}: {what}",
                hint="the file must be Ansible YAML inventory with a top-level `all:` mapping;"
                " see `rigforge init --help`",
            )

        if data is None:
            data = CommentedMap()
        if not isinstance(data, dict):
            raise bad("the top level is not a mapping")
        if set(data) - {"all"}:
            raise bad(f"unexpected top-level keys {sorted(set(data) - {'all'})}")
        root = data.setdefault("all", CommentedMap())
        if root is None:
            root = data["all"] = CommentedMap()
        if not isinstance(root, dict):
            raise bad("`all` is not a mapping")
        for key in ("hosts", "children"):
            if root.get(key) is None:
                root[key] = CommentedMap()
            if not isinstance(root[key], dict):
                raise bad(f"`all.{key}` is not a mapping")
        for name, group in root["children"].items():
            if group is not None and not isinstance(group, dict):
                raise bad(f"group {name!r} is not a mapping")
            members = (group or {}).get("hosts")
            if members is not None and not isinstance(members, dict):
                raise bad(f"`hosts` of group {name!r} is not a mapping")
        for name, hvars in root["hosts"].items():
            if hvars is not None and not isinstance(hvars, dict):
                raise bad(f"the vars of host {name!r} are not a mapping")
        return data

    @property
    def _root(self) -> CommentedMap:
        return self._data["all"]

    def group_names(self) -> list[str]:
        return list(self._root["children"])

    def hosts(self) -> list[Host]:
        """Every host, from ``all.hosts`` and from the groups."""
        members: dict[str, list[str]] = {}
        for group, body in self._root["children"].items():
            for name in ((body or {}).get("hosts") or {}):
                members.setdefault(str(name), []).append(str(group))
        names = list(dict.fromkeys([*map(str, self._root["hosts"]), *members]))
        return [self._host(name, members.get(name, [])) for name in names]

    def _host(self, name: str, groups: list[str]) -> Host:
        hvars = dict(self._root["hosts"].get(name) or {})
        for group in groups:
            hvars = {**(self._root["children"][group]["hosts"].get(name) or {}), **hvars}
        return Host(
            name=name,
            address=str(hvars.get("ansible_host", name)),
            user=hvars.get("ansible_user"),
            port=int(hvars.get("ansible_port", 22)),
            key=hvars.get("ansible_ssh_private_key_file"),
            groups=groups,
        )

    def get(self, name: str) -> Host | None:
        return next((h for h in self.hosts() if h.name == name), None)

    def add(self, host: Host) -> None:
        """Add a validated host; a duplicate name is an error."""
        validate_name(host.name)
        validate_address(host.address)
        validate_user(host.user)
        validate_port(host.port)
        for group in host.groups:
            validate_group(group)
        if self.get(host.name):
            raise UsageError(
                f"host {host.name!r} is already in {self.path}",
                hint=f"pick another name, or `rigforge host remove {host.name}` first",
            )
        hvars = CommentedMap()
        hvars["ansible_host"] = host.address
        if host.user:
            hvars["ansible_user"] = host.user
        hvars["ansible_port"] = host.port
        if host.key:
            hvars["ansible_ssh_private_key_file"] = host.key
        self._root["hosts"][host.name] = hvars
        for group in host.groups:
            body = self._root["children"].get(group)
            if body is None:
                body = self._root["children"][group] = CommentedMap()
            if body.get("hosts") is None:
                body["hosts"] = CommentedMap()
            body["hosts"][host.name] = None

    def set_host_var(self, name: str, key: str, value) -> None:
        """Set one variable of a host in ``all.hosts``, leaving everything else as it was."""
        if self.get(name) is None:
            raise UsageError(f"no host {name!r} in {self.path}")
        hosts = self._root["hosts"]
        if hosts.get(name) is None:
            hosts[name] = CommentedMap()
        hosts[name][key] = value

    def remove(self, name: str) -> Host:
        host = self.get(name)
        if host is None:
            raise UsageError(
                f"no host {name!r} in {self.path}", hint="`rigforge host list` shows the hosts"
            )
        self._root["hosts"].pop(name, None)
        for body in self._root["children"].values():
            if body and body.get("hosts"):
                body["hosts"].pop(name, None)
        return host

    def dumps(self) -> str:
        stream = io.StringIO()
        _yaml().dump(self._data, stream)
        return stream.getvalue()

    def save(self) -> None:
        fsutil.write_text(self.path, self.dumps())
