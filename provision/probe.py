"""``rigforge probe``: read what is on a host in one SSH round trip, without changing it.

A single shell script of :mod:`provision.gpu.commands` prints each fact in its own section;
pure parsers (:mod:`provision.gpu.parsing` lists them) turn the sections into facts. The script
runs over
:mod:`provision.remote` (``ssh`` through the workspace's ssh_config), on a connection of its
own: the host key is checked against the workspace's ``known_hosts`` on every probe, and an
unknown or changed key is refused.
"""

import datetime
import re
from dataclasses import dataclass, field
from pathlib import Path

from provision import remote
from provision.errors import HostFailedError
from provision.gpu import commands
from provision.inventory import Host
from provision.workspace import Workspace

MARK = "@@rigforge:"
ABSENT = "@@absent@@"

# Read-only commands (provision.gpu.commands), each guarded so that a missing tool is reported,
# not fatal.
SCRIPT = r"""
s() { printf '\n@@rigforge:%s@@\n' "$1"; }
run() { if command -v "$1" >/dev/null 2>&1; then "$@" 2>&1; echo "@@rc=$?"; else echo "@@absent@@"; fi; }
s os-release; @OS_RELEASE@ 2>/dev/null
s kernel; @KERNEL_RELEASE@
s arch; @MACHINE@
s meminfo; @MEMINFO_TOTAL@
s df; @DF_ROOT@
s lspci; run @LSPCI@
s pci-sysfs; @PCI_SYSFS_SCRIPT@
s nvidia-version; @PROC_DRIVER_VERSION@ 2>/dev/null
s nvidia-smi; run @NVIDIA_SMI_QUERY@
# mokutil: stdout and stderr mean different things, so read them apart.
s mokutil-out
if command -v mokutil >/dev/null 2>&1; then
  @MOKUTIL_SB_STATE@ 2>/dev/null; echo "@@rc=$?"
else
  echo "@@absent@@"
fi
s mokutil-err; command -v mokutil >/dev/null 2>&1 && @MOKUTIL_SB_STATE@ 2>&1 >/dev/null
# The key DKMS signs modules with (dkms's prepare_signing: Ubuntu's update-secureboot-policy key,
# else its own, unless /etc/dkms/framework.conf names another) and whether it is enrolled.
s mok-key
@MOK_SIGNING_KEY@
echo "@@key=$k"
if [ -r "$k" ]; then run @MOKUTIL_TEST_KEY@
elif [ -e "$k" ] || { [ -d "${k%/*}" ] && [ ! -x "${k%/*}" ]; }; then echo "@@unreadable@@"
else echo "@@no-key@@"; fi
s reboot-required; test -e /var/run/reboot-required && echo yes || echo no
s end
"""
# @NAME@ is provision.gpu.commands.NAME (the script's own markers are lower case).
SCRIPT = re.sub(r"@([A-Z_]+)@", lambda found: getattr(commands, found[1]), SCRIPT)


@dataclass
class Section:
    text: str
    rc: int | None = None
    absent: bool = False


def split_sections(output: str) -> dict[str, Section]:
    """The script's output -> ``{name: Section}`` (text without the rc/absent markers)."""
    sections: dict[str, Section] = {}
    for chunk in output.split("\n" + MARK)[1:]:
        name, _, body = chunk.partition("@@\n")
        lines = body.rstrip("\n").split("\n") if body.strip() else []
        section = Section("")
        if lines and lines[-1] == ABSENT:
            section.absent, lines = True, lines[:-1]
        elif lines and (match := re.fullmatch(r"@@rc=(\d+)", lines[-1])):
            section.rc, lines = int(match.group(1)), lines[:-1]
        section.text = "\n".join(lines)
        sections[name] = section
    return sections


def facts_from_sections(sections: dict[str, Section]) -> dict:
    """Plain, YAML-friendly facts (recorded as ``rigforge_facts`` in the host's vars)."""
    from provision.gpu import kernel_module, system
    from provision.gpu.parsing import ParseError

    def text(name: str) -> str:
        return sections.get(name, Section("")).text

    unreadable: list[str] = []

    def parse(what: str, parser, *args):
        # A host's odd output must not abort the probe: the fact becomes unknown, and says so.
        try:
            return parser(*args)
        except (ParseError, ValueError, IndexError) as exc:
            unreadable.append(f"{what}: {exc}")
            return None

    osr = parse("os-release", system.parse_os_release, text("os-release"))
    gpus = _gpu_facts(sections, parse)
    module = parse(
        "/proc/driver/nvidia/version", kernel_module.parse_proc_driver_version, text("nvidia-version")
    ) if text("nvidia-version").strip() else None
    smi = sections.get("nvidia-smi", Section("", absent=True))
    secure = _secure_boot_facts(sections, parse)
    mok_key = _mok_key_facts(sections.get("mok-key"), parse)
    return {
        "probed_at": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "os": {
            "id": osr.id,
            "version": osr.version_id,
            "codename": osr.codename,
            "name": osr.pretty_name,
        } if osr else None,
        "kernel": text("kernel").strip(),
        "arch": text("arch").strip(),
        "memory_mib": parse("/proc/meminfo", system.parse_meminfo_total_mib, text("meminfo")),
        "disk_free_gib": parse("df", system.parse_df_avail_gib, text("df")),
        "gpus": gpus,
        "driver": {"loaded": module.version, "flavor": module.flavor} if module else None,
        "nvidia_smi": _smi_facts(smi, parse),
        "secure_boot": secure,
        "secure_boot_key": mok_key,
        "reboot_required": text("reboot-required").strip() == "yes",
        "unreadable": unreadable,
    }


def _gpu_facts(sections: dict[str, Section], parse) -> list[dict] | None:
    """The NVIDIA GPUs on the PCI bus (None: the probe could not tell)."""
    from provision.gpu import pci_bus

    lspci = sections.get("lspci", Section("", absent=True))
    if lspci.absent and "pci-sysfs" in sections:
        # A fresh host may lack lspci (pciutils); sysfs lists the same functions, unnamed.
        devices = parse("pci-sysfs", pci_bus.parse_sysfs_pci, sections["pci-sysfs"].text)
    else:
        devices = None if lspci.absent else parse("lspci", pci_bus.parse_lspci, lspci.text)
    return None if devices is None else [
        {
            "slot": g.slot,
            "device_id": g.device_id,
            "class": g.class_code,
            "name": g.label,
            "architecture": g.architecture,
        }
        for g in devices
    ]


def _secure_boot_facts(sections: dict[str, Section], parse) -> dict:
    """What ``mokutil --sb-state`` says (its stdout and stderr mean different things)."""
    from provision.gpu import mokutil

    out = sections.get("mokutil-out", Section("", absent=True))
    err = sections.get("mokutil-err", Section("")).text
    secure = parse(
        "mokutil", mokutil.parse_mokutil_sb_state, out.text, err, 127 if out.absent else (out.rc or 0),
    ) or mokutil.SecureBoot("unknown")
    return {
        "state": secure.state,
        "validation_disabled": secure.validation_disabled,
        "enforcing": secure.enforcing,
    }


def _mok_key_facts(section: Section | None, parse) -> dict | None:
    """The module-signing key and what ``mokutil --test-key`` says of it (None: not asked)."""
    from provision.gpu import mokutil

    if section is None:
        return None
    lines = section.text.split("\n")
    key = lines.pop(0).removeprefix("@@key=") if lines and lines[0].startswith("@@key=") else None
    rest = "\n".join(lines)
    why = None
    if "@@no-key@@" in rest:
        found = mokutil.MokKey("no-key", key)
    elif "@@unreadable@@" in rest:
        found, why = mokutil.MokKey("unknown", key), "the key is not readable without root"
    elif section.absent:
        found, why = mokutil.MokKey("unknown", key), "mokutil is not installed"
    else:
        found = parse("mokutil --test-key", mokutil.parse_mokutil_test_key, rest, "",
                      section.rc or 0) or mokutil.MokKey("unknown", key)
    facts = {"key": found.key or key, "state": found.state, "where": found.where}
    if found.state == "unknown":
        facts["why_unknown"] = why or (rest.strip().splitlines() or ["mokutil said nothing"])[0]
    return facts


def _smi_facts(smi: Section, parse) -> dict:
    from provision.gpu import nvidia_smi

    if smi.absent:
        return {"status": "absent", "gpus": []}
    if smi.rc:
        return {"status": nvidia_smi.classify_nvidia_smi_failure(smi.text) or "error", "gpus": [],
                "message": smi.text.strip().splitlines()[0] if smi.text.strip() else ""}
    return {
        "status": "ok",
        "gpus": [
            {"name": g.name, "driver_version": g.driver_version,
             "memory_total_mib": g.memory_total_mib}
            for g in parse("nvidia-smi", nvidia_smi.parse_nvidia_smi_query, smi.text) or []
        ],
    }


@dataclass
class ProbeResult:
    host: str
    facts: dict | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)


#: How long one probe may take, connection included.
TIMEOUT_S = 60.0
#: Hosts probed at once.
PARALLEL_HOSTS = 16


def probe_host(workspace: Workspace, host: Host, timeout: float = TIMEOUT_S) -> dict:
    """Run the probe script on ``host`` over SSH, on a connection of its own, host key
    checked strictly; raises :class:`HostFailedError` when the host does not answer."""
    from provision.hosts import connection

    remote.ensure_ssh_config(workspace)
    host = connection(workspace, host)
    try:
        # Reached as hosts.yml and host_vars say now, whatever ssh_config was last written.
        answer = remote.run(workspace, host.name, SCRIPT, timeout, fresh=True, overrides=_reach(host))
    except remote.Unreachable as exc:
        raise _failure(host, exc) from None
    return facts_from_sections(split_sections(answer.stdout))


def probe_hosts(workspace: Workspace, hosts: list[Host]) -> list[ProbeResult]:
    """Probe hosts in parallel; an unreachable host is a result with an error, not a crash."""
    from concurrent.futures import ThreadPoolExecutor

    def one(host: Host) -> ProbeResult:
        try:
            return ProbeResult(host.name, facts=probe_host(workspace, host))
        except HostFailedError as exc:
            return ProbeResult(host.name, error=str(exc))

    remote.ensure_ssh_config(workspace)
    with ThreadPoolExecutor(max_workers=min(PARALLEL_HOSTS, max(1, len(hosts)))) as pool:
        return list(pool.map(one, hosts))


def _reach(host: Host) -> dict[str, object]:
    """The ssh options that reach ``host``: its address, port, user and key."""
    options: dict[str, object] = {"HostName": host.address, "Port": host.port}
    if host.user:
        options["User"] = host.user
    if host.key:
        options.update(IdentityFile=Path(host.key).expanduser(), IdentitiesOnly="yes")
    return options


#: ssh's names of key types -> their names in known_hosts.
_KEY_NAMES = {"ED25519": "ssh-ed25519", "RSA": "ssh-rsa", "DSA": "ssh-dss"}


def _failure(host: Host, exc: remote.Unreachable) -> HostFailedError:
    """The error ``rigforge probe`` reports for a host ssh did not reach."""
    from provision.known_hosts import host_pattern

    if exc.kind == "host-key-changed":
        return HostFailedError(
            f"{host.name}: the host key of {host.address} changed "
            f"({_KEY_NAMES.get(exc.key_type, exc.key_type or 'its key')})",
            hint="if the host was reinstalled, remove it and add it again; otherwise do not "
            "connect",
        )
    if exc.kind == "host-key-unknown":
        detail = f"Server {host_pattern(host.address, host.port)!r} not found in known_hosts"
    elif exc.kind in ("auth", "ssh"):
        detail = exc.detail
    else:
        return HostFailedError(f"{host.name}: cannot connect: {exc.detail}")
    return HostFailedError(f"{host.name}: {detail}",
                           hint="is its host key recorded? `rigforge host add` records it")


FACTS_VAR = "rigforge_facts"


def record_facts(workspace: Workspace, results: list[ProbeResult]) -> None:
    """Store each probed host's facts as its ``rigforge_facts`` variable in hosts.yml.

    In hosts.yml rather than host_vars/: Ansible reads either host_vars/NAME/ or
    host_vars/NAME.yml, never both, so a directory of ours would hide the user's file.
    """
    from provision.inventory import Inventory

    inventory = Inventory(workspace.inventory)
    for result in results:
        if result.facts is not None:
            inventory.set_host_var(result.host, FACTS_VAR, result.facts)
    inventory.save()
