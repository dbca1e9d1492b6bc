"""Fault injection on real sandbox hosts: the failures a home lab actually meets.

Each scenario breaks something (a held dpkg lock, a killed dpkg, a host that powers off, an
unreachable host, a killed rigforge, a full disk), checks what rigforge reports, and then
checks that ONE plain re-run converges the host and that no workspace file was lost.

"Converges" is checked with ``rigforge provision --yes --check-idempotence``: its first run is
exactly a plain ``rigforge provision --yes`` (the re-run), and its second run must report
changed=0 for every host (the idempotence check).

Only the ``base`` component is used: the hosts select just ``base`` (the default
``rigforge_components``), and every run passes ``--components base``, which applies the same
tasks but skips the other components' plays outright (about 250 skipped tasks, half of a
converged run's time).

One host (``fault_rig``) is shared by the single-host scenarios, in file order; each scenario
starts from a converged host (``converged`` provisions it first when needed), except the disk
one, which wants the host fresh. The three-host scenario adds two hosts of its own.
"""

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest
import yaml

from provision.inventory import Inventory
from provision.sandbox import SandboxManager
from tests.integration.conftest import new_rig, rigforge
from tests.integration.faults import (
    HOLD_DPKG_LOCKS,
    KILL_DPKG_WHILE_UNPACKING,
    POLICY_RC_D,
    SERVICE_PACKAGE,
    SMALL_BASE_PACKAGES,
    Background,
    Guest,
    alive,
    disk_threshold,
    host_entry,
    unparsable_files,
    user_files,
    wait_until,
)

pytestmark = pytest.mark.integration

RUN_TIMEOUT_S = 900
LOCK_HOLD_S = 75
LOCK_UNIT = "rf-fault-holdlock"
APT_UNIT = "rf-fault-apt"
# The threshold sits this many GiB above the free space: others share this machine's disk,
# and a host they remove can free several GiB while the test runs.
DISK_MARGIN_GIB = 10
# A base package with many files: a wide window to kill dpkg while it unpacks.
UNPACK_PACKAGE = "git"
BLACKLIST = "/etc/apt/apt.conf.d/51rigforge-unattended-upgrades"
INSTALL_TASK = "base : Install the base packages."
FIRST_ROLE_TASK = "base : Assert that the operating system and architecture are supported."
REPAIR_TASK = "Finish the interrupted dpkg run."
REINSTALL_TASK = "Reinstall the packages that an interrupted dpkg left broken."
BASE_ONLY = ("--components", "base")
CONNECTION_WORDS = re.compile(r"ssh|connect|reach", re.IGNORECASE)
# What Ansible says when a task's module is killed on the host (its output is empty).
KILLED_MODULE = re.compile(r"Module result deserialization failed|MODULE FAILURE")

# --- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture(scope="module")
def fault_rig(tmp_path_factory):
    """The host the single-host scenarios share (fresh when the module starts)."""
    yield from new_rig(tmp_path_factory, "flt")


@pytest.fixture
def host(fault_rig):
    """The shared host, running (a scenario that failed half-way may have left it halted)."""
    guest = Guest(fault_rig.name)
    if not guest.running:
        rigforge(fault_rig.workspace, "sandbox", "boot", fault_rig.name, timeout=300)
    return fault_rig, guest


def base_packages(workspace: Path) -> list[str]:
    defaults = yaml.safe_load((workspace / "roles" / "base" / "defaults" / "main.yml").read_text())
    return defaults["base_packages"]


def is_converged(workspace: Path, guest: Guest) -> bool:
    """A cheap look: dpkg is clean, every base package installed, the blacklist in place."""
    return (
        guest.dpkg_problems() == ""
        and all(guest.status_of(p) == "ii" for p in base_packages(workspace))
        and guest.sh(f"test -e {BLACKLIST}", check=False).returncode == 0
    )


@pytest.fixture
def converged(host):
    """The shared host, provisioned (a set-up step when a scenario runs on its own)."""
    rig, guest = host
    if not is_converged(rig.workspace, guest):
        rigforge(rig.workspace, "provision", "--yes", *BASE_ONLY, timeout=RUN_TIMEOUT_S)
    return rig, guest


def assert_idempotent(report: dict) -> None:
    """The second run of a ``--check-idempotence`` report changed nothing on any host."""
    second = report["idempotence"]
    assert second["changed_tasks"] == [], second["changed_tasks"]
    assert all(h["status"] == "ok" and h["changed"] == 0 for h in second["hosts"]), second


def assert_converges(workspace: Path, *, already: bool = False) -> dict:
    """The one plain re-run plus the idempotence check (see the module docstring)."""
    proc = rigforge(workspace, "provision", "--yes", "--check-idempotence", "--json", *BASE_ONLY,
                    check=False, timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, f"the re-run did not converge\n{proc.stdout}\n{proc.stderr}"
    report = json.loads(proc.stdout)
    assert_idempotent(report)
    if already:
        assert report["run"]["changed_tasks"] == [], report["run"]["changed_tasks"]
    return report


def changed_tasks(report: dict, name: str, key: str = "run") -> list[str]:
    return [t["task"] for t in report[key]["changed_tasks"] if t["host"] == name]


def apt_refuses(guest: Guest) -> bool:
    """Whether apt refuses to work because dpkg was interrupted (jq is installed, so a
    working apt would do nothing here)."""
    proc = guest.sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -q jq", check=False)
    return proc.returncode == 100 and "dpkg was interrupted" in proc.stderr


def last_run(workspace: Path) -> dict:
    return json.loads((workspace / ".rigforge" / "last-run.json").read_text())


# --- 6. nearly full disk (first: it wants the host fresh) -----------------------------------


def test_nearly_full_disk_is_refused_before_any_change(host):
    """The disk cannot really be filled (the sandbox's root is an overlay on this machine's
    disk), so the host is made to look nearly full by the threshold instead."""
    rig, guest = host
    ws = rig.workspace
    files = user_files(ws)
    missing = [p for p in base_packages(ws) if guest.status_of(p) != "ii"]
    fresh = bool(missing)
    packages, apt_conf = guest.package_state(), guest.apt_conf()
    free = guest.free_gib()
    need = disk_threshold(free, DISK_MARGIN_GIB)
    host_vars_dir = ws / "inventory" / "host_vars"
    made_dir = not host_vars_dir.exists()
    host_vars_dir.mkdir(exist_ok=True)
    host_vars = host_vars_dir / f"{rig.name}.yml"
    host_vars.write_text(f"---\n# test_faults: {rig.name} looks nearly full\n"
                         f"base_min_free_disk_gb: {need}\n")
    try:
        proc = rigforge(ws, "provision", "--yes", "--json", *BASE_ONLY, check=False,
                        timeout=RUN_TIMEOUT_S)
    finally:
        host_vars.unlink()
        if made_dir:
            host_vars_dir.rmdir()

    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    entry = host_entry(report, rig.name)
    assert entry["status"] == "failed" and entry["changed"] == 0, entry
    assert report["run"]["changed_tasks"] == []
    message = " ".join(entry["messages"])
    found = re.search(
        rf"Only ([0-9.]+) GiB are free on / of {rig.name}, but (\d+) GiB are required "
        r"\(base_min_free_disk_gb\)", message)
    assert found, message
    assert abs(float(found[1]) - free) < DISK_MARGIN_GIB, (found[1], free)
    assert int(found[2]) == need
    assert "base_min_free_disk_gb" in proc.stderr and found[1] in proc.stderr
    # Nothing changed on the host: not a package, not an apt setting, not dpkg's journal.
    assert guest.package_state() == packages
    assert guest.apt_conf() == apt_conf
    if fresh:
        assert [p for p in base_packages(ws) if guest.status_of(p) != "ii"] == missing
    assert user_files(ws) == files

    report = assert_converges(ws)
    assert host_entry(report, rig.name)["status"] in ("changed", "ok")


# --- 1. the dpkg lock held for more than a minute -------------------------------------------


def test_waits_for_a_dpkg_lock_held_longer_than_a_minute(converged):
    """As unattended-upgrades does on a first boot: the run waits for the lock, then succeeds."""
    rig, guest = converged
    ws = rig.workspace
    files = user_files(ws)
    guest.remove_packages(*SMALL_BASE_PACKAGES)  # work for apt, so the run needs the lock
    guest.write("/run/rf-fault-holdlock.py", HOLD_DPKG_LOCKS)
    try:
        guest.sh(f"rm -f /run/rf-fault-holdlock.ready && systemd-run --quiet --collect "
                 f"--unit={LOCK_UNIT} python3 /run/rf-fault-holdlock.py {LOCK_HOLD_S}")
        wait_until(lambda: guest.sh("test -e /run/rf-fault-holdlock.ready",
                                    check=False).returncode == 0, 30, "the lock holder")
        # The run is checked for idempotence at once: its second pass is the follow-up run.
        with Background(ws, "provision", "--yes", "--check-idempotence", "--json",
                        *BASE_ONLY) as run:
            reached = run.wait_for_task(INSTALL_TASK, timeout=180)
            holder = guest.sh(f"systemctl is-active {LOCK_UNIT}", check=False).stdout.strip()
            assert holder == "active", f"the lock was gone before the install task ({reached:.0f} s)"
            done = run.wait(timeout=RUN_TIMEOUT_S)
            seconds = run.run_seconds()
    finally:
        guest.sh(f"systemctl stop {LOCK_UNIT} 2>/dev/null || true; "
                 "rm -f /run/rf-fault-holdlock.py /run/rf-fault-holdlock.ready", check=False)

    assert done.returncode == 0, done.stdout + done.stderr
    assert len(seconds) == 2, seconds  # the run, then the idempotence check
    assert seconds[0] > 60, f"the run took {seconds[0]:.0f} s: it cannot have waited"
    report = done.json()
    assert INSTALL_TASK.removeprefix("base : ") in changed_tasks(report, rig.name)
    assert all(guest.status_of(p) == "ii" for p in SMALL_BASE_PACKAGES)
    assert_idempotent(report)
    assert user_files(ws) == files


# --- 2. dpkg killed in the middle of an install ---------------------------------------------


def test_dpkg_killed_while_configuring_is_repaired(converged):
    """SIGKILL dpkg inside a postinst (parked there by a sleeping policy-rc.d): the package is
    half-configured, dpkg's journal is left behind and apt refuses to work until repaired."""
    rig, guest = converged
    ws = rig.workspace
    files = user_files(ws)
    guest.sh(f"DEBIAN_FRONTEND=noninteractive apt-get purge -y -q {SERVICE_PACKAGE} >/dev/null")
    try:
        guest.write("/usr/sbin/policy-rc.d", POLICY_RC_D, mode="0755")
        guest.sh(f"rm -f /run/rf-fault-in-postinst && systemd-run --quiet --collect "
                 f"--unit={APT_UNIT} --setenv=DEBIAN_FRONTEND=noninteractive "
                 f"apt-get install -y -q {SERVICE_PACKAGE}")
        wait_until(lambda: guest.sh("test -e /run/rf-fault-in-postinst",
                                    check=False).returncode == 0, 180, "dpkg in the postinst")
        guest.sh(f"main=$(systemctl show -p MainPID --value {APT_UNIT}) && "
                 'dpkg=$(pgrep -P "$main" -x dpkg) && kill -KILL "$dpkg"')
        # apt-get exits when its dpkg dies; systemd then stops what is left of the unit.
        wait_until(lambda: guest.sh(f"systemctl is-active -q {APT_UNIT}",
                                    check=False).returncode != 0, 60, "apt-get to exit")
    finally:
        guest.sh(f"rm -f /usr/sbin/policy-rc.d /run/rf-fault-in-postinst; "
                 f"systemctl kill -s KILL {APT_UNIT} 2>/dev/null || true", check=False)
    try:
        assert guest.status_of(SERVICE_PACKAGE) == "iF"  # half-configured
        assert guest.sh("ls -A /var/lib/dpkg/updates").stdout.strip(), "no dpkg journal left"
        assert apt_refuses(guest)

        report = assert_converges(ws)
        assert REPAIR_TASK in changed_tasks(report, rig.name)
        assert REINSTALL_TASK not in changed_tasks(report, rig.name)  # configuring was enough
        assert guest.status_of(SERVICE_PACKAGE) == "ii"
        assert guest.dpkg_problems() == ""
        assert user_files(ws) == files
    finally:
        guest.sh(f"DEBIAN_FRONTEND=noninteractive apt-get purge -y -q {SERVICE_PACKAGE} "
                 ">/dev/null", check=False)


def test_dpkg_killed_while_unpacking_is_repaired(converged):
    """SIGKILL dpkg while it unpacks a base package (as a power cut during an install does):
    the package is half-installed and needs a reinstall, which `dpkg --configure -a` is not."""
    rig, guest = converged
    ws = rig.workspace
    files = user_files(ws)
    guest.write("/run/rf-fault-unpack.py", KILL_DPKG_WHILE_UNPACKING)
    try:
        outcomes = []
        for _ in range(3):  # the kill races dpkg's unpacking; it wins nearly always
            outcomes.append(guest.sh(f"python3 /run/rf-fault-unpack.py {UNPACK_PACKAGE}").stdout)
            if guest.status_of(UNPACK_PACKAGE) == "iHR":
                break
        else:
            raise RuntimeError(f"could not kill dpkg while it unpacked {UNPACK_PACKAGE}: {outcomes}")
        if not apt_refuses(guest):
            raise RuntimeError("apt still works: the interrupted state was not reached")

        report = assert_converges(ws)
        assert REPAIR_TASK in changed_tasks(report, rig.name)
        assert REINSTALL_TASK in changed_tasks(report, rig.name)
        assert guest.status_of(UNPACK_PACKAGE) == "ii"
        assert guest.dpkg_problems() == ""
        assert user_files(ws) == files
    finally:
        # Leave the host usable for the next scenarios, whatever happened above.
        guest.sh("rm -rf /run/rf-fault-unpack /run/rf-fault-unpack.py; "
                 f"if [ \"$(dpkg-query -W -f='${{db:Status-Abbrev}}' {UNPACK_PACKAGE})\" != ii ]; "
                 "then dpkg --configure -a >/dev/null 2>&1 || true; "
                 "DEBIAN_FRONTEND=noninteractive apt-get install --reinstall -y -q "
                 f"{UNPACK_PACKAGE} >/dev/null; fi", check=False)


# --- 3. the host powers off in the middle of a run ------------------------------------------


def test_host_powered_off_mid_run_is_reported_then_converges(converged):
    """The host halts while the run is going; the run has a change still to make (the
    unattended-upgrades blacklist) but no package work, so the power cut cannot land inside
    dpkg (that case is the unpacking test above)."""
    rig, guest = converged
    ws = rig.workspace
    files = user_files(ws)
    guest.sh(f"rm -f {BLACKLIST}")
    with Background(ws, "provision", "--yes", "--json", *BASE_ONLY) as run:
        run.wait_for_task(FIRST_ROLE_TASK, timeout=180)
        SandboxManager().halt(rig.name)
        done = run.wait(timeout=RUN_TIMEOUT_S)

    assert done.returncode == 1, done.stdout + done.stderr
    entry = host_entry(done.json(), rig.name)
    assert entry["status"] in ("unreachable", "failed"), entry
    message = " ".join(entry["messages"])
    # A race (about 1 run in 8 on a loaded machine): the power-off kills the task's module
    # (rc 143, "Terminated") before the connection drops. rigforge reads that result as the
    # host going away: unreachable, with the rc and what the module printed.
    assert not (entry["status"] == "failed" and KILLED_MODULE.search(message)), entry
    assert CONNECTION_WORDS.search(message), entry["messages"]
    assert f"{rig.name}: {entry['messages'][0]}" in done.stderr
    assert last_run(ws)["hosts"][rig.name] in ("unreachable", "failed")  # --retry-failed's pick

    rigforge(ws, "sandbox", "boot", rig.name, timeout=300)
    assert_converges(ws)
    assert guest.sh(f"test -e {BLACKLIST}", check=False).returncode == 0
    assert user_files(ws) == files


# --- 5. the controller is killed in the middle of a run -------------------------------------


def test_controller_killed_mid_run_leaves_the_workspace_intact(converged):
    rig, guest = converged
    ws = rig.workspace
    files = user_files(ws)
    hosts_yml = (ws / "inventory" / "hosts.yml").read_bytes()
    record = ws / ".rigforge" / "last-run.json"
    previous = record.read_bytes() if record.exists() else None
    guest.remove_packages(*SMALL_BASE_PACKAGES)  # the run is busy installing when it is killed
    ansible: list[int] = []
    try:
        with Background(ws, "provision", "--yes", "--json", *BASE_ONLY) as run:
            run.wait_for_task(INSTALL_TASK, timeout=180)
            time.sleep(1)  # into the install: apt is at work on the host
            ansible = run.descendants()
            run.kill_group()
        # ansible-runner starts Ansible in a session of its own (a pty), so it is not in
        # rigforge's process group: it finishes its current task and exits once it finds its
        # terminal gone. Wait for that (bounded) before the re-run.
        wait_until(lambda: not any(alive(pid) for pid in ansible), 180,
                   f"the orphaned Ansible processes {ansible} to exit")
    finally:
        for pid in ansible:  # what is left of our own child's children, by pid
            if alive(pid):
                os.kill(pid, signal.SIGKILL)

    assert (ws / "inventory" / "hosts.yml").read_bytes() == hosts_yml
    assert user_files(ws) == files
    assert unparsable_files(ws) == []
    if record.exists():
        text = record.read_bytes()
        assert text == previous or isinstance(json.loads(text).get("hosts"), dict), text

    assert_converges(ws)
    assert all(guest.status_of(p) == "ii" for p in SMALL_BASE_PACKAGES)
    assert user_files(ws) == files


# --- 4. one of three hosts unreachable, then --retry-failed ---------------------------------


@pytest.fixture(scope="module")
def trio(tmp_path_factory, fault_rig):
    """A workspace with three hosts: two fresh ones of its own, and the shared fault host,
    added by address like any rig (its key fetched and recorded by `host add`)."""
    rigs = new_rig(tmp_path_factory, "fq")
    first = next(rigs)
    ws = first.workspace
    second = f"{first.name}b"
    made = []
    try:
        rigforge(ws, "sandbox", "up", second, timeout=600)
        made.append(second)
        third = Inventory(fault_rig.workspace / "inventory" / "hosts.yml").get(fault_rig.name)
        rigforge(ws, "host", "add", third.name, "--address", third.address, "--user", third.user,
                 "--port", str(third.port), "--key", third.key, "--group", "sandbox",
                 "--accept-host-key")
        yield ws, (first.name, second, third.name)
    finally:
        for name in made:
            rigforge(ws, "sandbox", "down", name, check=False)
        rigs.close()


def test_one_unreachable_host_of_three_then_retry_failed(trio, host):
    ws, (first, second, third) = trio
    guest = host[1]
    assert guest.name == third
    guest.remove_packages(*SMALL_BASE_PACKAGES)  # so that the retry has real work to do
    files = user_files(ws)
    SandboxManager().halt(third)
    try:
        proc = rigforge(ws, "provision", "--yes", "--json", *BASE_ONLY, check=False,
                        timeout=RUN_TIMEOUT_S)
    finally:
        rigforge(ws, "sandbox", "boot", third, timeout=300)

    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert sorted(h["host"] for h in report["run"]["hosts"]) == sorted([first, second, third])
    for name in (first, second):
        entry = host_entry(report, name)
        assert entry["status"] == "changed" and entry["failed"] == entry["unreachable"] == 0, entry
    entry = host_entry(report, third)
    assert entry["status"] == "unreachable", entry
    assert CONNECTION_WORDS.search(" ".join(entry["messages"])), entry["messages"]
    assert last_run(ws)["hosts"] == {first: "changed", second: "changed", third: "unreachable"}

    retry = rigforge(ws, "provision", "--yes", "--retry-failed", "--json", *BASE_ONLY,
                     check=False, timeout=RUN_TIMEOUT_S)
    assert retry.returncode == 0, retry.stdout + retry.stderr
    report = json.loads(retry.stdout)
    assert [h["host"] for h in report["run"]["hosts"]] == [third]
    assert host_entry(report, third)["status"] == "changed"
    assert {t["host"] for t in report["run"]["changed_tasks"]} == {third}
    assert last_run(ws)["hosts"][third] == "changed"

    report = assert_converges(ws, already=True)
    assert sorted(h["host"] for h in report["idempotence"]["hosts"]) == sorted(
        [first, second, third])
    assert all(guest.status_of(p) == "ii" for p in SMALL_BASE_PACKAGES)
    assert user_files(ws) == files
