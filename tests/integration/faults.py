"""Helpers for the fault-injection tests (``test_faults.py``).

* :class:`Guest` acts on a sandbox host as root without SSH (``SandboxManager.exec``), so a
  fault can be set up even while the host's SSH or apt is in a bad state.
* :class:`Background` runs the real ``rigforge`` in a child process of its own (its own
  process group), follows the run's progress in ansible-runner's ``stdout`` artifact, and
  can kill it like a user's ``kill -9`` would.
* Snapshots of a workspace and of a host's package state, to prove that nothing was lost or
  changed.

Every wait here is bounded in time (and so in count); a timeout is an ``AssertionError``.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from provision.sandbox import SandboxManager

POLL_S = 0.2

# Base packages that are small and quick to (re)install: removing them gives a run real work.
SMALL_BASE_PACKAGES = ("jq", "tmux", "htop")

# A small package (not in the base set) whose postinst starts a service through
# deb-systemd-invoke, which consults /usr/sbin/policy-rc.d first: a policy-rc.d that sleeps
# parks dpkg inside the postinst, so it can be killed there deterministically.
SERVICE_PACKAGE = "anacron"

# Holds dpkg's two fcntl locks (what apt, dpkg and unattended-upgrades take) for argv[1] seconds.
HOLD_DPKG_LOCKS = """\
import fcntl, sys, time
held = []
for path in ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock"):
    f = open(path, "a")
    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    held.append(f)
open("/run/rf-fault-holdlock.ready", "w").close()
time.sleep(float(sys.argv[1]))
"""

# Parks a maintainer script (and so dpkg) until killed; leaves a marker when it gets there.
POLICY_RC_D = """\
#!/bin/sh
# rigforge fault test: hang inside the maintainer script so that dpkg can be killed there.
touch /run/rf-fault-in-postinst
sleep 600
exit 101
"""

# `dpkg --unpack` a package and SIGKILL dpkg as soon as its journal records the package as
# half-installed, i.e. while the files are being unpacked (dpkg journals every status change
# in /var/lib/dpkg/updates/ before acting on it). Prints "killed" when that happened.
KILL_DPKG_WHILE_UNPACKING = """\
import glob, os, signal, subprocess, sys, time
pkg = sys.argv[1]
work = "/run/rf-fault-unpack"
os.makedirs(work, exist_ok=True)
os.chdir(work)
download = ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", pkg]
if subprocess.run(download, stdout=subprocess.DEVNULL).returncode != 0:
    subprocess.run(["apt-get", "update", "-q"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(download, check=True, stdout=subprocess.DEVNULL)
deb = sorted(glob.glob(os.path.join(work, pkg + "_*.deb")))[-1]
journal = "/var/lib/dpkg/updates"
seen = set(os.listdir(journal))
proc = subprocess.Popen(["dpkg", "--unpack", deb], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
deadline = time.monotonic() + 120
killed = False
while not killed and proc.poll() is None and time.monotonic() < deadline:
    for name in sorted(os.listdir(journal)):
        if name in seen or not name.isdigit():
            continue
        seen.add(name)
        try:
            with open(os.path.join(journal, name)) as f:
                text = f.read()
        except OSError:
            continue
        if "Package: %s\\n" % pkg in text and "half-installed" in text:
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
            break
if proc.poll() is None and not killed:
    os.kill(proc.pid, signal.SIGKILL)
proc.wait()
print("killed" if killed else "finished rc=%s" % proc.returncode)
"""


def wait_until(predicate, timeout: float, what: str, interval: float = POLL_S):
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` s pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Guest:
    """Root on a sandbox host, through ``nsenter`` (no SSH, no sudo)."""

    def __init__(self, name: str, manager: SandboxManager | None = None):
        self.name = name
        self.manager = manager or SandboxManager()

    def sh(self, script: str, *, check: bool = True, timeout: float = 300,
           input: str | None = None) -> subprocess.CompletedProcess:
        proc = self.manager.exec(self.name, ["sh", "-euc", script], input=input,
                                 capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"on {self.name}: `{script}` exited {proc.returncode}\n"
                                 f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
        return proc

    def write(self, path: str, text: str, mode: str = "0644") -> None:
        self.sh(f"cat > {path} && chmod {mode} {path}", input=text)

    @property
    def running(self) -> bool:
        return self.manager.get(self.name).running

    def package_state(self) -> str:
        """Every package dpkg knows with its version and status, plus dpkg's journal."""
        return self.sh(
            "dpkg-query -W -f='${db:Status-Abbrev} ${binary:Package} ${Version}\\n';"
            " ls -A /var/lib/dpkg/updates"
        ).stdout

    def dpkg_problems(self) -> str:
        """What ``dpkg --audit`` reports, plus any leftover journal entries ("" when clean)."""
        return self.sh("dpkg --audit || true; ls -A /var/lib/dpkg/updates").stdout.strip()

    def status_of(self, package: str) -> str:
        """dpkg's abbreviated status (``ii``, ``iU``, ``iHR``, ``rc`` ...), ``""`` if unknown."""
        proc = self.sh(f"dpkg-query -W -f='${{db:Status-Abbrev}}' {package}", check=False)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    def apt_conf(self) -> str:
        """Names, modes, owners and checksums of everything in /etc/apt/apt.conf.d."""
        return self.sh(
            "cd /etc/apt/apt.conf.d && stat -c '%n %a %U:%G %s' -- * | sort"
            " && sha256sum -- * | sort"
        ).stdout

    def free_gib(self) -> float:
        """Free space on / the way the base role's preflight measures it (``df -P -k /``)."""
        line = self.sh("df -P -k /").stdout.strip().splitlines()[-1]
        return int(line.split()[3]) / 1024 / 1024

    def remove_packages(self, *packages: str) -> None:
        self.sh("DEBIAN_FRONTEND=noninteractive apt-get remove -y -q " + " ".join(packages)
                + " >/dev/null")


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def json(self) -> dict:
        try:
            return json.loads(self.stdout)
        except ValueError as exc:
            raise AssertionError(f"rigforge printed no JSON ({exc})\n--- stdout\n{self.stdout}\n"
                                 f"--- stderr\n{self.stderr}") from None


class Background:
    """``rigforge --workspace WS ARGS...`` in its own process group, output to temp files."""

    def __init__(self, workspace: Path, *args: str):
        self.artifacts = workspace / ".rigforge" / "runner" / "artifacts"
        self._before = set(self.artifacts.iterdir()) if self.artifacts.is_dir() else set()
        # Closed by close() / the with-block: they outlive this method by design.
        self._out = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self._err = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self.started = time.monotonic()
        self._wall_started = time.time()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "provision", "--workspace", str(workspace), *args],
            stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err, text=True,
            start_new_session=True,
        )

    def _run_stdout(self) -> str:
        """Ansible's output so far, from this run's ansible-runner artifact directory."""
        if not self.artifacts.is_dir():
            return ""
        for path in self.artifacts.iterdir():
            if path not in self._before and (path / "stdout").is_file():
                return (path / "stdout").read_text(errors="replace")
        return ""

    def run_seconds(self) -> list[float]:
        """How long after our start each playbook run of this command ended (ansible-runner
        writes an ``rc`` file into the run's artifact directory when it ends), in order."""
        ends = sorted(
            (path / "rc").stat().st_mtime
            for path in (self.artifacts.iterdir() if self.artifacts.is_dir() else ())
            if path not in self._before and (path / "rc").is_file()
        )
        return [end - self._wall_started for end in ends]

    def wait_for_task(self, task: str, timeout: float = 180) -> float:
        """Wait until Ansible starts the task named ``task``; the seconds since the start."""
        marker = f"TASK [{task}]"

        def started():
            if marker in self._run_stdout():
                return True
            if self.proc.poll() is not None:
                raise AssertionError(f"rigforge exited {self.proc.returncode} before {marker}\n"
                                     + self._read(self._err))
            return False

        wait_until(started, timeout, marker)
        return time.monotonic() - self.started

    def descendants(self) -> list[int]:
        """Pids of every process below ours (ansible-runner starts Ansible in a new session,
        so they are not all in our process group)."""
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
        found, frontier = [], [self.proc.pid]
        while frontier:
            parent = frontier.pop()
            children = [pid for pid, ppid in parents.items() if ppid == parent]
            found += children
            frontier += children
        return found

    def kill_group(self) -> None:
        """SIGKILL rigforge and its process group, as ``kill -9 -PGID`` would."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def wait(self, timeout: float = 900) -> Finished:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_group()
            raise AssertionError(f"rigforge did not finish within {timeout} s") from None
        return Finished(self.proc.returncode, self._read(self._out), self._read(self._err),
                        time.monotonic() - self.started)

    @staticmethod
    def _read(f) -> str:
        f.flush()
        f.seek(0)
        return f.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill_group()
        self._out.close()
        self._err.close()

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def user_files(workspace: Path) -> dict[str, bytes]:
    """Every file of the workspace outside ``.rigforge/`` (local state) with its bytes."""
    return {
        str(p.relative_to(workspace)): p.read_bytes()
        for p in sorted(workspace.rglob("*"))
        if p.is_file() and ".rigforge" not in p.relative_to(workspace).parts
    }


def unparsable_files(workspace: Path) -> list[str]:
    """YAML and JSON files of the workspace (and Ansible's fact cache) that do not parse."""
    bad = []
    facts = workspace / ".rigforge" / "facts"
    for path in sorted(workspace.rglob("*")):
        if not path.is_file():
            continue
        try:
            if path.suffix in (".yml", ".yaml"):
                yaml.safe_load(path.read_text())
            elif path.suffix == ".json" or path.parent == facts:
                json.loads(path.read_text())
        except (ValueError, yaml.YAMLError, UnicodeDecodeError) as exc:
            bad.append(f"{path.relative_to(workspace)}: {exc}")
    return bad


def host_entry(report: dict, name: str, key: str = "run") -> dict:
    entries = [h for h in report[key]["hosts"] if h["host"] == name]
    assert entries, f"{name} is not in the {key!r} report: {report[key]}"
    return entries[0]


def disk_threshold(free_gib: float, margin: int) -> int:
    """A ``base_min_free_disk_gb`` that ``free_gib`` does not meet, by at least ``margin - 1`` GiB."""
    return math.ceil(free_gib) + margin
