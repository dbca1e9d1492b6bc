"""Run the workspace's playbook with ansible-runner and turn its events into results.

Progress comes from ansible-runner's per-event callbacks, never from parsing stdout.
"""

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from provision.workspace import Workspace

BECOME_PROMPT = r"BECOME password.*:\s*?$"


@dataclass
class HostResult:
    name: str
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    current_task: str = ""
    messages: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    not_reached: bool = False

    @property
    def status(self) -> str:
        if self.not_reached:
            return "not reached"
        if self.unreachable:
            return "unreachable"
        if self.failed:
            return "failed"
        return "changed" if self.changed else "ok"

    def to_dict(self) -> dict:
        return {
            "host": self.name,
            "status": self.status,
            "ok": self.ok,
            "changed": self.changed,
            "failed": self.failed,
            "unreachable": self.unreachable,
            "skipped": self.skipped,
            "messages": self.messages,
            "warnings": self.warnings,
        }


@dataclass
class ChangedTask:
    host: str
    task: str
    role: str | None = None
    diff: list = field(default_factory=list)


@dataclass
class RunResult:
    hosts: dict[str, HostResult] = field(default_factory=dict)
    changed_tasks: list[ChangedTask] = field(default_factory=list)
    status: str = "unknown"
    rc: int | None = None

    @property
    def succeeded(self) -> bool:
        return self.rc == 0 and not any(
            h.failed or h.unreachable or h.not_reached for h in self.hosts.values()
        )

    def to_dict(self) -> dict:
        return {
            "status": "successful" if self.succeeded else "failed",
            "hosts": [h.to_dict() for h in self.hosts.values()],
            "changed_tasks": [
                {"host": t.host, "task": t.task, "role": t.role} for t in self.changed_tasks
            ],
        }


class EventCollector:
    """Folds ansible-runner events into a :class:`RunResult` and reports progress.

    ``on_update(result, host)`` is called after each event that concerns a host.
    """

    def __init__(self, on_update: Callable[[RunResult, str], None] | None = None):
        self.result = RunResult()
        self._on_update = on_update

    def _host(self, name: str) -> HostResult:
        return self.result.hosts.setdefault(name, HostResult(name))

    def __call__(self, event: dict) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        name = data.get("host") or data.get("remote_addr")
        if kind == "playbook_on_stats":
            self._apply_stats(data)
        elif name and kind.startswith("runner_on_"):
            self._apply_host_event(kind, data, name)
        # Returning False keeps event payloads (which can carry module args) off the disk.
        return False

    def _apply_host_event(self, kind: str, data: dict, name: str) -> None:
        host = self._host(name)
        task = data.get("task") or ""
        res = data.get("res") or {}
        host.current_task = task
        warning = _warning(res) if kind == "runner_on_ok" else None
        if warning:
            host.warnings.append(warning)
        if kind == "runner_on_ok" and res.get("changed"):
            self.result.changed_tasks.append(
                ChangedTask(name, task, data.get("role"), _as_list(res.get("diff")))
            )
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            host.messages.append(f"{task}: {_message(res)}")
        elif kind == "runner_on_unreachable":
            host.messages.append(f"unreachable during {task!r}: {_message(res)}")
        if self._on_update:
            self._on_update(self.result, name)

    def _apply_stats(self, data: dict) -> None:
        counts = {
            "ok": "ok",
            "changed": "changed",
            "failures": "failed",
            "dark": "unreachable",
            "skipped": "skipped",
        }
        names = set()
        for key in (*counts, "processed"):
            names.update((data.get(key) or {}).keys())
        for name in names:
            host = self._host(name)
            for key, attr in counts.items():
                setattr(host, attr, int((data.get(key) or {}).get(name, 0)))
            if self._on_update:
                self._on_update(self.result, name)


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _warning(res: dict) -> str | None:
    """Roles report things to look at (a pending reboot, no kernel headers) as
    ``debug`` messages starting with ``WARNING:``; lift them into the summary."""
    msg = res.get("msg")
    lines = msg if isinstance(msg, list) else [msg] if isinstance(msg, str) else []
    if lines and str(lines[0]).startswith("WARNING:"):
        return " ".join(str(line) for line in lines).removeprefix("WARNING:").strip()
    return None


def _message(res: dict) -> str:
    msg = res.get("msg") or res.get("stderr") or res.get("module_stderr") or "no message"
    return str(msg).strip().splitlines()[0] if str(msg).strip() else "no message"


def run_playbook(
    workspace: Workspace,
    *,
    limit: str | None = None,
    tags: list[str] | None = None,
    check: bool = False,
    diff: bool = False,
    verbosity: int = 0,
    become_password: str | None = None,
    vault_password_file: str | None = None,
    on_update: Callable[[RunResult, str], None] | None = None,
    expected_hosts: list[str] | None = None,
    playbook: str = "site.yml",
    extravars: dict | None = None,
) -> RunResult:
    """Run ``site.yml`` in ``workspace``; returns per-host results.

    The become password, if any, is answered to Ansible's prompt through ansible-runner's
    pexpect channel: it is never in argv, the environment, ``env/`` files or artifacts.
    """
    import ansible_runner

    collector = EventCollector(on_update)
    cmdline = []
    if check:
        cmdline.append("--check")
    if diff:
        cmdline.append("--diff")
    if vault_password_file:
        cmdline += ["--vault-password-file", vault_password_file]
    passwords = {}
    if become_password is not None:
        cmdline.append("--ask-become-pass")
        passwords[BECOME_PROMPT] = become_password
    bindir = os.path.dirname(sys.executable)
    env = {
        "ANSIBLE_CONFIG": str(workspace.ansible_cfg),
        # ansible-runner finds ansible-playbook on PATH; make it the one beside this Python.
        "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
        "ANSIBLE_FORCE_COLOR": "0",
    }
    private = workspace.state_dir / "runner"
    private.mkdir(parents=True, exist_ok=True)
    runner = ansible_runner.run(
        private_data_dir=str(private),
        project_dir=str(workspace.root),
        playbook=playbook,
        extravars=extravars or None,
        inventory=str(workspace.inventory),
        envvars=env,
        cmdline=" ".join(cmdline) or None,
        passwords=passwords or None,
        limit=limit,
        tags=",".join(tags) if tags else None,
        verbosity=verbosity or None,
        event_handler=collector,
        suppress_env_files=True,
        rotate_artifacts=3,
        quiet=verbosity == 0,
    )
    result = collector.result
    result.status, result.rc = runner.status, runner.rc
    for name in expected_hosts or []:
        if name not in result.hosts:
            # Never pass as "ok": a rolling update stopped before this host (untouched), or
            # an inventory problem kept Ansible from seeing it.
            result.hosts[name] = HostResult(
                name, not_reached=True,
                messages=["not reached: Ansible did not run on this host, which is untouched "
                          "(a rolling update stopped earlier, or see -vvv)"],
            )
    return result
