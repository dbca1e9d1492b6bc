"""Connection and download steps retry transient failures (issue 5): ssh through the
workspace's ansible.cfg, downloads through ``until``/``retries``/``delay`` on each role task."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from provision import workspace

ROLES = Path(__file__).resolve().parents[2] / "roles"
DOWNLOADERS = ("ansible.builtin.get_url", "ansible.builtin.apt")


def test_ansible_reads_the_workspace_ssh_retries(tmp_path):
    """Ansible itself resolves the setting: a misspelt key or section would be ignored."""
    ws, _ = workspace.init(tmp_path / "ws")
    bindir = os.path.dirname(sys.executable)
    proc = subprocess.run(
        [os.path.join(bindir, "ansible-config"), "dump", "--only-changed", "-t", "connection"],
        cwd=ws.root, env={**os.environ, "ANSIBLE_CONFIG": str(ws.ansible_cfg)},
        capture_output=True, text=True, timeout=120, check=True,
    )
    assert f"reconnection_retries({ws.ansible_cfg}) = 3" in proc.stdout, proc.stdout


def _tasks(items):
    for task in items or []:
        yield task
        for key in ("block", "rescue", "always"):
            yield from _tasks(task.get(key))


def _downloads():
    for path in sorted(ROLES.glob("*/tasks/*.yml")):
        for task in _tasks(yaml.safe_load(path.read_text())):
            module = next((m for m in DOWNLOADERS if m in task), None)
            if module is None:
                continue
            args = task[module]
            local_deb = "deb" in args and not str(args["deb"]).startswith(("http://", "https://"))
            if module.endswith(".apt") and (args.get("state") == "absent" or local_deb):
                continue
            yield pytest.param(task, id=f"{path.relative_to(ROLES)}: {task['name']}")


@pytest.mark.parametrize("task", list(_downloads()))
def test_every_download_task_retries(task):
    register = task.get("register")
    assert register, "register the result, so that `until` can look at it"
    until = str(task.get("until", ""))
    assert f"{register} is succeeded" in until, until
    assert int(task.get("retries", 0)) >= 2 and int(task.get("delay", 0)) >= 5, task


def test_the_role_tasks_are_found():
    found = [p.id for p in _downloads()]
    assert "base/tasks/packages.yml: Install the base packages." in found
    assert any("conda/tasks/install.yml" in i for i in found)
    assert any("ollama/tasks/download.yml" in i for i in found)  # inside a block
    assert not any("Install the CUDA keyring package." in i for i in found)  # a local .deb
