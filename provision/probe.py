"""``rigforge probe``: read what is on a host in one SSH round trip, without changing it.

A single shell script prints each fact in its own section; pure parsers from
:mod:`provision.gpu.parsers` turn the sections into facts. Host keys are checked against
the workspace's ``known_hosts`` only: an unknown or changed key is refused.
"""

import datetime
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from provision.errors import HostFailedError
from provision.gpu.commands import PCI_SYSFS_SCRIPT
from provision.inventory import Host
from provision.workspace import Workspace

MARK = "@@rigforge:"
ABSENT = "@@absent@@"

# Read-only commands, each guarded so that a missing tool is reported, not fatal.
SCRIPT = r"""
s() { printf '\n@@rigforge:%s@@\n' "$1"; }
run() { if command -v "$1" >/dev/null 2>&1; then "$@" 2>&1; echo "@@rc=$?"; else echo "@@absent@@"; fi; }
s os-release; cat /etc/os-release 2>/dev/null
s kernel; uname -r
s arch; uname -m
s meminfo; grep '^MemTotal:' /proc/meminfo
s df; df -P -k / | tail -n 1
s lspci; run lspci -nn -d 10de:
s pci-sysfs; @PCI_SYSFS@
s nvidia-version; cat /proc/driver/nvidia/version 2>/dev/null
s nvidia-smi; run nvidia-smi \
  --query-gpu=index,name,driver_version,memory.total,pci.bus_id --format=csv,noheader,nounits
# mokutil: stdout and stderr mean different things, so read them apart.
s mokutil-out
if command -v mokutil >/dev/null 2>&1; then
  mokutil --sb-state 2>/dev/null; echo "@@rc=$?"
else
  echo "@@absent@@"
fi
s mokutil-err; command -v mokutil >/dev/null 2>&1 && mokutil --sb-state 2>&1 >/dev/null
# The key DKMS signs modules with (dkms's prepare_signing: Ubuntu's update-secureboot-policy key,
# else its own, unless /etc/dkms/framework.conf names another) and whether it is enrolled.
s mok-key
k=/var/lib/dkms/mok.pub
case "$(sed -n 's/^ID=//p' /etc/os-release 2>/dev/null | tr -d '"')" in
  ubuntu*) k=/var/lib/shim-signed/mok/MOK.der;;
esac
c=$(sed -n 's/^[[:space:]]*mok_certificate=//p' /etc/dkms/framework.conf /etc/dkms/framework.conf.d/*.conf \
  2>/dev/null | tail -n 1 | tr -d "\"'")
[ -n "$c" ] && k=$c
echo "@@key=$k"
if [ -r "$k" ]; then run mokutil --test-key "$k"
elif [ -e "$k" ] || { [ -d "${k%/*}" ] && [ ! -x "${k%/*}" ]; }; then echo "@@unreadable@@"
else echo "@@no-key@@"; fi
s reboot-required; test -e /var/run/reboot-required && echo yes || echo no
s end
""".replace("@PCI_SYSFS@", PCI_SYSFS_SCRIPT)


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
    from provision.gpu import parsers

    def text(name: str) -> str:
        return sections.get(name, Section("")).text

    unreadable: list[str] = []

    def parse(what: str, parser, *args):
        # A host's odd output must not abort the probe: the fact becomes unknown, and says so.
        try:
            return parser(*args)
        except (parsers.ParseError, ValueError, IndexError) as exc:
            unreadable.append(f"{what}: {exc}")
            return None

    osr = parse("os-release", parsers.parse_os_release, text("os-release"))
    lspci = sections.get("lspci", Section("", absent=True))
    if lspci.absent and "pci-sysfs" in sections:
        # A fresh host may lack lspci (pciutils); sysfs lists the same functions, unnamed.
        devices = parse("pci-sysfs", parsers.parse_sysfs_pci, text("pci-sysfs"))
    else:
        devices = None if lspci.absent else parse("lspci", parsers.parse_lspci, lspci.text)
    gpus = None if devices is None else [
        {
            "slot": g.slot,
            "device_id": g.device_id,
            "class": g.class_code,
            "name": g.label,
            "architecture": g.architecture,
        }
        for g in devices
    ]
    module = parse(
        "/proc/driver/nvidia/version", parsers.parse_proc_driver_version, text("nvidia-version")
    ) if text("nvidia-version").strip() else None
    smi = sections.get("nvidia-smi", Section("", absent=True))
    mok_out = sections.get("mokutil-out", Section("", absent=True))
    secure = parse(
        "mokutil", parsers.parse_mokutil_sb_state,
        mok_out.text, text("mokutil-err"), 127 if mok_out.absent else (mok_out.rc or 0),
    ) or parsers.SecureBoot("unknown")
    mok_key = _mok_key_facts(sections.get("mok-key"), parse)
    mem = re.search(r"(\d+)\s*kB", text("meminfo"))
    df = text("df").split()
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
        "memory_mib": int(mem.group(1)) // 1024 if mem else None,
        "disk_free_gib": round(int(df[3]) / 1024 / 1024, 1) if len(df) > 3 and df[3].isdigit()
        else None,
        "gpus": gpus,
        "driver": {"loaded": module.version, "flavor": module.flavor} if module else None,
        "nvidia_smi": _smi_facts(smi, parse),
        "secure_boot": {
            "state": secure.state,
            "validation_disabled": secure.validation_disabled,
            "enforcing": secure.enforcing,
        },
        "secure_boot_key": mok_key,
        "reboot_required": text("reboot-required").strip() == "yes",
        "unreadable": unreadable,
    }


def _mok_key_facts(section: Section | None, parse) -> dict | None:
    """The module-signing key and what ``mokutil --test-key`` says of it (None: not asked)."""
    from provision.gpu import parsers

    if section is None:
        return None
    lines = section.text.split("\n")
    key = lines.pop(0).removeprefix("@@key=") if lines and lines[0].startswith("@@key=") else None
    rest = "\n".join(lines)
    why = None
    if "@@no-key@@" in rest:
        found = parsers.MokKey("no-key", key)
    elif "@@unreadable@@" in rest:
        found, why = parsers.MokKey("unknown", key), "the key is not readable without root"
    elif section.absent:
        found, why = parsers.MokKey("unknown", key), "mokutil is not installed"
    else:
        found = parse("mokutil --test-key", parsers.parse_mokutil_test_key, rest, "",
                      section.rc or 0) or parsers.MokKey("unknown", key)
    facts = {"key": found.key or key, "state": found.state, "where": found.where}
    if found.state == "unknown":
        facts["why_unknown"] = why or (rest.strip().splitlines() or ["mokutil said nothing"])[0]
    return facts


def _smi_facts(smi: Section, parse) -> dict:
    from provision.gpu import parsers

    if smi.absent:
        return {"status": "absent", "gpus": []}
    if smi.rc:
        return {"status": parsers.classify_nvidia_smi_failure(smi.text) or "error", "gpus": [],
                "message": smi.text.strip().splitlines()[0] if smi.text.strip() else ""}
    return {
        "status": "ok",
        "gpus": [
            {"name": g.name, "driver_version": g.driver_version,
             "memory_total_mib": g.memory_total_mib}
            for g in parse("nvidia-smi", parsers.parse_nvidia_smi_query, smi.text) or []
        ],
    }


def host_facts(record: dict | None):
    """``rigforge_facts`` -> the resolver's :class:`HostFacts` (empty when never probed)."""
    from provision.gpu import parsers, stack

    if not record:
        return stack.HostFacts(os_id=None, os_version=None, arch=None)
    gpus = tuple(
        parsers.GpuDevice(
            slot=g.get("slot", ""),
            class_code=g.get("class", "0300"),
            device_id=g.get("device_id", ""),
            name=g.get("name", ""),
            architecture=g.get("architecture"),
        )
        for g in (record.get("gpus") or [])
    )
    secure = record.get("secure_boot") or {}
    return stack.HostFacts(
        os_id=(record.get("os") or {}).get("id"),
        os_version=(record.get("os") or {}).get("version"),
        arch=record.get("arch"),
        gpus=gpus,
        secure_boot=secure.get("state"),
        secure_boot_validation_disabled=bool(secure.get("validation_disabled")),
        driver_loaded=(record.get("driver") or {}).get("loaded"),
        secure_boot_key=(record.get("secure_boot_key") or {}).get("state"),
    )


@dataclass
class ProbeResult:
    host: str
    facts: dict | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)


def probe_host(workspace: Workspace, host: Host, timeout: float = 15.0) -> dict:
    """Run the probe script on ``host`` over SSH (Fabric), host key checked strictly."""
    import paramiko
    from fabric import Connection

    from provision.hosts import connection

    host = connection(workspace, host)

    connect_kwargs = {"timeout": timeout, "banner_timeout": timeout, "auth_timeout": timeout}
    if host.key:
        connect_kwargs["key_filename"] = str(Path(host.key).expanduser())
    conn = Connection(
        host.address, user=host.user or None, port=host.port, connect_kwargs=connect_kwargs
    )
    # Fabric's default client trusts unknown keys (AutoAddPolicy); ours trusts only the
    # workspace's known_hosts.
    client = paramiko.SSHClient()
    if workspace.known_hosts.exists():
        client.load_host_keys(str(workspace.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    conn.client = client
    try:
        result = conn.run(SCRIPT, hide=True, warn=True, in_stream=False, shell="/bin/sh")
    except paramiko.BadHostKeyException as exc:
        raise HostFailedError(
            f"{host.name}: the host key of {host.address} changed ({exc.key.get_name()})",
            hint="if the host was reinstalled, remove it and add it again; otherwise do not "
            "connect",
        ) from None
    except paramiko.SSHException as exc:
        raise HostFailedError(f"{host.name}: {exc}", hint="is its host key recorded? "
                              "`rigforge host add` records it") from None
    except OSError as exc:
        raise HostFailedError(f"{host.name}: cannot connect: {exc}") from None
    finally:
        conn.close()
    return facts_from_sections(split_sections(result.stdout))


def probe_hosts(workspace: Workspace, hosts: list[Host]) -> list[ProbeResult]:
    """Probe hosts in parallel; an unreachable host is a result with an error, not a crash."""

    def one(host: Host) -> ProbeResult:
        try:
            return ProbeResult(host.name, facts=probe_host(workspace, host))
        except HostFailedError as exc:
            return ProbeResult(host.name, error=str(exc))

    with ThreadPoolExecutor(max_workers=min(16, max(1, len(hosts)))) as pool:
        return list(pool.map(one, hosts))


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
