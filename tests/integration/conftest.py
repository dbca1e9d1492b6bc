"""Integration tests: real sandbox hosts (systemd-nspawn), real SSH, real Ansible.

They need root and the sandbox tools; without them they are skipped with the reason.
"""

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.workspaces import select_base_only

TOOLS = ("mmdebstrap", "systemd-nspawn", "nft", "ip", "ssh")


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "sandbox hosts need root"
    absent = [t for t in TOOLS if not shutil.which(t)]
    return f"missing tools: {', '.join(absent)}" if absent else None


def pytest_collection_modifyitems(config, items):
    reason = _missing()
    if reason:
        for item in items:
            if item.get_closest_marker("integration"):
                item.add_marker(pytest.mark.skip(reason=reason))


def rigforge(workspace: Path, *args: str, check: bool = True, timeout: int = 1200, **kw):
    """Run the real ``rigforge`` command in a child process, as a user would."""
    if "input" not in kw:
        kw["stdin"] = subprocess.DEVNULL
    proc = subprocess.run(
        [sys.executable, "-m", "provision", "--workspace", str(workspace), *args],
        capture_output=True, text=True, timeout=timeout, **kw,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"rigforge {' '.join(args)} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


@dataclass
class Rig:
    workspace: Path
    name: str

    def ssh(self, command: str, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
        """A command on the host through the workspace's ssh_config (strict host keys)."""
        return subprocess.run(
            ["ssh", "-F", str(self.workspace / ".rigforge" / "ssh_config"), self.name, command],
            capture_output=True, text=True, timeout=timeout, check=check, stdin=subprocess.DEVNULL,
        )


@pytest.fixture(scope="session", autouse=True)
def _stdin_is_dev_null():
    """Children never share pytest's own stdin. An ssh that multiplexes over a ControlMaster
    hands its stdin to the master, which leaves that file non-blocking; every later
    ansible-playbook started with the same stdin then refuses to run ("Ansible requires
    blocking IO on stdin"). Tests that need input pass it explicitly."""
    saved = os.dup(0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    try:
        yield
    finally:
        os.dup2(saved, 0)
        os.close(saved)


def new_rig(tmp_path_factory, suffix: str = "", release: str | None = None):
    """A sandbox host in a fresh workspace, made with the CLI like the README's demo
    (a generator for fixtures: yields the Rig, then destroys the host, also when ``up``
    failed half-way). ``release``: ``sandbox up --release`` (default: the CLI's, bookworm)."""
    workspace = tmp_path_factory.mktemp(f"integration{suffix}") / "ws"
    rigforge(workspace, "init", str(workspace))
    select_base_only(workspace)
    name = f"it{os.getpid() % 100000}{suffix}"
    try:
        rigforge(workspace, "sandbox", "up", name, *(["--release", release] if release else []), timeout=600)
        yield Rig(workspace, name)
    finally:
        rigforge(workspace, "sandbox", "down", name, check=False)


@pytest.fixture(scope="session")
def rig(tmp_path_factory):
    """One sandbox host shared by the test modules that do not need a fresh one."""
    yield from new_rig(tmp_path_factory)
