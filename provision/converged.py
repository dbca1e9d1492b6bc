"""Recognise converged hosts in one SSH round trip, so that a re-run runs Ansible only where needed.

A converged re-run under Ansible costs a round trip per task, hundreds of them for the full
stack. rigforge instead remembers, in ``.rigforge/converged.json``, two digests for every
host and component after each successful run:

``desired``
    what the workspace asked for: the component's roles and playbook, ``ansible.cfg``, the
    host's variables and rigforge's version;
``state``
    what the host looked like at the end of that run: the packages (status and version),
    services, files and groups that the role lists in ``/var/lib/rigforge/state/<component>
    .manifest`` (written by the role itself, see ``roles/*/tasks/state.yml``).

A later ``provision`` reads the state of every chosen host at once, one ``ssh`` session each
(:data:`STATE_SCRIPT`), and runs Ansible only for the hosts and components whose digests
differ: drift on the host, a changed variable or role, or no record. Ansible stays the only
thing that changes a host; ``provision --full`` skips this check.

While no file of the workspace changed since the record (its :func:`fingerprint`), the desired
digests are known without loading the inventory through Ansible, which keeps a converged
re-run close to the cost of the SSH session itself.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from provision import __version__, fsutil, remote, roles
from provision.fingerprint import hash_tree as _hash_tree
from provision.fingerprint import workspace_fingerprint as fingerprint  # noqa: F401  (what a record is kept under)
from provision.secrets import is_secret_name
from provision.workspace import Workspace

RECORD = "converged.json"
RECORD_VERSION = 1
STATE_DIR = "/var/lib/rigforge/state"
SSH_TIMEOUT_S = 60


# Variables that do not describe the desired state: connection settings (where the
# passwords live, which must not reach even a digest), Ansible's magic variables, and the
# facts `rigforge probe` records (free disk changes all the time).
_IGNORED_VARS = {
    "groups", "group_names", "inventory_hostname", "inventory_hostname_short", "inventory_dir",
    "inventory_file", "playbook_dir", "omit", "rigforge_facts", "role_names",
}

# Runs as the SSH user (no sudo: the manifests are world-readable and nothing here needs
# root), prints the manifests and the live state of every item they name. Errors such as
# "no packages found" or "No such file" are part of the state: they go to stdout too.
STATE_SCRIPT = r"""
export LC_ALL=C
d=${RIGFORGE_STATE_DIR:-""" + STATE_DIR + r"""}
for m in "$d"/*.manifest; do
  [ -f "$m" ] || continue
  echo "@manifest ${m##*/}"
  cat "$m"
done
items() { cat "$d"/*.manifest 2>/dev/null | awk -v k="$1" '$1 == k { print $2 }' | sort -u; }
pkgs=$(items package)
[ -z "$pkgs" ] || dpkg-query -W -f='@package ${Package} ${db:Status-Abbrev} ${Version}\n' $pkgs 2>&1
for u in $(items service); do
  echo "@service $u $(systemctl is-active "$u" 2>&1) $(systemctl is-enabled "$u" 2>&1)"
done
for f in $(items file); do
  echo "@file $f $(stat -c '%F %a %U %G %s' "$f" 2>&1) $(sha256sum < "$f" 2>/dev/null | cut -c1-64)"
done
for f in $(items stat); do
  echo "@stat $f $(stat -c '%F %a %U %G %s %Y %N' "$f" 2>&1)"
done
for g in $(items group); do
  echo "@group $g $(getent group "$g")"
done
if [ -n "$(items kernel)" ]; then
  echo "@kernel running $(uname -r) $(lspci -n -d 10de: 2>/dev/null | awk '{print $3}' | sort | tr '\n' ' ')"
fi
# Half-installed packages anywhere make every component suspect: base repairs them.
echo "@audit $(dpkg --audit 2>&1 | grep -c .)"
echo "@end"
"""

_MISSING_PACKAGE = re.compile(r"^dpkg-query: no packages found matching (\S+)")


@dataclass
class HostState:
    """What :data:`STATE_SCRIPT` read on one host: a digest per component with a manifest."""

    host: str
    components: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    #: Something wrong host-wide (e.g. dpkg needs repair): every component must run.
    problem: str | None = None


@dataclass
class Decision:
    """What a run has to do on one host, and why."""

    host: str
    run: list[str]
    skip: list[str]
    reasons: dict[str, str] = field(default_factory=dict)
    #: Warnings the last runs of Ansible reported for this host, and when: a converged re-run
    #: does not run Ansible, and must not make them disappear.
    warnings: list[str] = field(default_factory=list)
    warned: str = ""


# --- digests ---------------------------------------------------------------------------------


def desired_vars(host_vars: dict) -> dict:
    """The variables that describe a host's desired state (secrets and connection vars out)."""
    return {
        k: v for k, v in host_vars.items()
        if k not in _IGNORED_VARS and not k.startswith("ansible_") and not is_secret_name(k)
    }


def desired_digests(workspace: Workspace, components: Iterable[str], host_vars: dict) -> dict[str, str]:
    """``{component: digest}`` of what the workspace asks of one host."""
    vars_blob = json.dumps(desired_vars(host_vars), sort_keys=True, default=str).encode()
    result, roles_dir = {}, workspace.root / "roles"
    for component in components:
        digest = hashlib.sha256(f"rigforge {__version__}\0{component}\0".encode())
        for rel in ("ansible.cfg", f"playbooks/{component}.yml",
                    *(f"roles/{role}" for role in roles.of_component(roles_dir, component))):
            _hash_tree(digest, workspace.root, Path(rel))
        digest.update(vars_blob)
        result[component] = digest.hexdigest()
    return result


# --- reading the host ------------------------------------------------------------------------


def parse_state(host: str, output: str) -> HostState:
    """:data:`STATE_SCRIPT`'s output -> a digest per component that has a manifest."""
    lines = output.splitlines()
    if "@end" not in lines:
        return HostState(host, error="the state script did not finish")
    manifests: dict[str, list[str]] = {}
    items: dict[tuple[str, str], str] = {}
    current: list[str] | None = None
    for line in lines:
        if line.startswith("@manifest "):
            name = line.split(" ", 1)[1].removesuffix(".manifest")
            current = manifests.setdefault(name, [])
            continue
        missing = _MISSING_PACKAGE.match(line)
        if missing:
            current = None
            items[("package", missing.group(1))] = line
            continue
        if line.startswith("@"):
            current = None
            parts = line[1:].split(" ", 2)
            if len(parts) >= 2:
                items[(parts[0], parts[1])] = line
            continue
        if current is not None and line.strip():
            current.append(line.strip())
    state = HostState(host)
    audit = items.get(("audit", "0"))
    if audit is None and any(kind == "audit" for kind, _ in items):
        state.problem = "dpkg reports half-installed or unconfigured packages"
    for component, manifest in manifests.items():
        digest = hashlib.sha256()
        for entry in manifest:
            kind, _, name = entry.partition(" ")
            digest.update(f"{entry}\0{items.get((kind, name), '<absent>')}\n".encode())
        state.components[component] = digest.hexdigest()
    return state


def read_states(workspace: Workspace, hosts: list[str]) -> dict[str, HostState]:
    """One ``ssh`` session per host, all at once, through the workspace's ssh_config."""
    answers = remote.run_all(workspace, hosts, STATE_SCRIPT, timeout=SSH_TIMEOUT_S)
    return {host: _state(host, answer) for host, answer in answers.items()}


def _state(host: str, answer: remote.Completed | remote.Unreachable) -> HostState:
    if isinstance(answer, remote.Unreachable):
        return HostState(host, error=str(answer))
    if answer.error:
        return HostState(host, error=answer.error)
    return parse_state(host, answer.stdout)


# --- the record ------------------------------------------------------------------------------


def load(workspace: Workspace) -> dict:
    try:
        data = json.loads((workspace.state_dir / RECORD).read_text())
    except (FileNotFoundError, ValueError):
        return {"version": RECORD_VERSION, "hosts": {}}
    if not isinstance(data, dict) or data.get("version") != RECORD_VERSION:
        return {"version": RECORD_VERSION, "hosts": {}}
    data.setdefault("hosts", {})
    return data


def save(workspace: Workspace, data: dict) -> None:
    fsutil.write_text(workspace.state_dir / RECORD,
                      json.dumps(data, indent=2, sort_keys=True) + "\n")


def forget(workspace: Workspace, hosts: Iterable[str]) -> None:
    """Drop hosts' records: their next run is a full one."""
    data = load(workspace)
    dropped = [data["hosts"].pop(h, None) for h in hosts]
    if any(d is not None for d in dropped):
        save(workspace, data)


def remember(workspace: Workspace, host: str, selected: list[str], desired: dict[str, str],
             state: HostState, components_run: Iterable[str], fp: str,
             warnings: Iterable[str] = ()) -> list[str]:
    """Record a host after a successful run; returns the components recorded.

    ``selected`` is the host's whole component selection and ``desired`` its digests. A
    component is recorded if it ran now, or was recorded before with the same desired
    digest, and the host has its manifest: anything else must run next time.

    ``warnings`` are this run's for the host. A run of every selected component replaces
    the ones kept; a partial run adds to them, since a warning is not tied to a component
    and one from a component that did not run may still hold.
    """
    data = load(workspace)
    previous = data["hosts"].get(host, {})
    old = previous.get("components", {})
    ran = set(components_run)
    recorded = {}
    for component in selected:
        want, have = desired.get(component), state.components.get(component)
        if want is None or have is None:
            continue
        if component in ran or old.get(component, {}).get("desired") == want:
            recorded[component] = {"desired": want, "state": have}
    entry = {"fingerprint": fp, "selected": list(selected), "components": recorded}
    warnings = list(warnings)
    kept = warnings if ran >= set(selected) else [*previous.get("warnings", []), *warnings]
    if kept:
        from datetime import UTC, datetime

        entry["warnings"] = list(dict.fromkeys(kept))
        entry["warned"] = (datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC") if warnings
                           else previous.get("warned", ""))
    data["hosts"][host] = entry
    save(workspace, data)
    return sorted(recorded)


def refresh(workspace: Workspace, hosts: Iterable[str], fp: str, selected: dict[str, list[str]]) -> None:
    """Hosts found converged after the workspace changed: their record holds for ``fp`` too."""
    data = load(workspace)
    for host in hosts:
        if host in data["hosts"]:
            data["hosts"][host]["fingerprint"] = fp
            data["hosts"][host]["selected"] = list(selected[host])
    save(workspace, data)


# --- deciding --------------------------------------------------------------------------------


def decide(host: str, components: list[str], record: dict | None, state: HostState | None,
           desired: dict[str, str] | None) -> Decision:
    """Which of ``components`` must run on ``host``.

    ``desired`` is None when the workspace is unchanged since the record (its desired
    digests still hold).
    """
    run, skip, reasons = [], [], {}
    recorded = (record or {}).get("components", {})
    for component in components:
        entry = recorded.get(component)
        if entry is None:
            reason = "no record of a converged run"
        elif state is None or state.error:
            reason = f"state not read ({state.error})" if state else "state not read"
        elif state.problem:
            reason = state.problem
        elif desired is not None and desired.get(component) != entry.get("desired"):
            reason = "desired state changed (roles, variables or rigforge)"
        elif component not in state.components:
            reason = "its manifest is missing on the host"
        elif state.components[component] != entry.get("state"):
            reason = "the host drifted from the recorded state"
        else:
            skip.append(component)
            continue
        run.append(component)
        reasons[component] = reason
    return Decision(host, run, skip, reasons, list((record or {}).get("warnings", [])),
                    str((record or {}).get("warned", "")))
