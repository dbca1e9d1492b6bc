"""Run the workspace's playbook with ansible-runner and turn its events into results.

Progress comes from ansible-runner's per-event callbacks, never from parsing stdout.
"""

import contextlib
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from provision.workspace import Workspace

BECOME_PROMPT = r"BECOME password.*:\s*?$"

# A module whose output Ansible could not read (so ``module_stderr`` and ``rc`` instead of a
# result) usually died with its host: a powered-off host SIGTERMs it (rc 143), its ssh pipe
# breaks (-13) or ssh itself gives up (255), before Ansible notices the host has gone away.
_LOST_RCS = (143, -13)
_LOST_WORDS = re.compile(
    r"Shared connection to \S+ closed|Connection to \S+ closed|closed by remote host"
    r"|Connection (refused|reset|timed out)|Broken pipe|No route to host"
    r"|kex_exchange_identification|ssh_exchange_identification",
    re.IGNORECASE,
)


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
    #: What a role reported as not done, with the reason ("SKIPPED: ..." messages).
    skipped_notes: list[str] = field(default_factory=list)
    retry_notes: list[str] = field(default_factory=list)
    retrying: bool = False
    not_reached: bool = False
    # Failed tasks whose connection died under them: counted as unreachable, not failed.
    lost: int = 0

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
            "retries": len(self.retry_notes),
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
        elif name and (kind.startswith("runner_on_") or kind == "runner_retry"):
            self._apply_host_event(kind, data, name)
        # Returning False keeps event payloads (which can carry module args) off the disk.
        return False

    def _apply_host_event(self, kind: str, data: dict, name: str) -> None:
        host = self._host(name)
        task = data.get("task") or ""
        res = data.get("res") or {}
        host.current_task = task
        host.retrying = kind == "runner_retry"
        warning = _warning(res) if kind == "runner_on_ok" else None
        if warning:
            host.warnings.append(warning)
        skipped = _skipped_note(res) if kind == "runner_on_ok" else None
        if skipped:
            host.skipped_notes.append(skipped)
        if kind == "runner_on_ok" and res.get("changed"):
            self.result.changed_tasks.append(
                ChangedTask(name, task, data.get("role"), _as_list(res.get("diff")))
            )
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            if _connection_lost(res):
                host.lost += 1
                host.messages.append(
                    f"unreachable during {task!r}: the connection to the host was lost: "
                    f"{_message(res)}"
                )
            else:
                host.messages.append(f"{task}: {_message(res)}")
        elif kind == "runner_retry":
            host.retry_notes.append(_retry_note(task, res))
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
            moved = min(host.lost, host.failed)
            host.failed -= moved
            host.unreachable += moved
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


def _skipped_note(res: dict) -> str | None:
    """Roles report what they could not do here, and why, as messages starting ``SKIPPED:``."""
    msg = res.get("msg")
    lines = msg if isinstance(msg, list) else [msg] if isinstance(msg, str) else []
    text = " ".join(" ".join(str(line) for line in lines).split())
    return text.removeprefix("SKIPPED:").strip() if text.startswith("SKIPPED:") else None


def _unparsed(res: dict) -> bool:
    """Whether Ansible got no result from the module, only its raw output."""
    return "module_stderr" in res or "module_stdout" in res


def _connection_lost(res: dict) -> bool:
    """Whether a failed task's module died because its host or connection went away."""
    if not _unparsed(res):
        return False  # the module answered: a real failure
    stdout = str(res.get("module_stdout") or "")
    stderr = str(res.get("module_stderr") or "")
    try:
        rc = int(res.get("rc"))
    except (TypeError, ValueError):
        rc = None
    if rc == 255 or _LOST_WORDS.search(stderr) or _LOST_WORDS.search(stdout):
        return True
    return rc in _LOST_RCS and not stdout.strip()


def _first_line(value) -> str:
    text = str(value or "").strip()
    return text.splitlines()[0].strip() if text else ""


def _message(res: dict) -> str:
    msg = (_first_line(res.get("msg")) or _first_line(res.get("stderr"))
           or _first_line(res.get("module_stderr")) or "no message")
    if not _unparsed(res):
        return msg
    # Ansible's own words ("Module result deserialization failed") do not say what happened;
    # the exit code and the last line the module (or ssh) printed usually do.
    details = []
    if res.get("rc") is not None:
        details.append(f"rc {res['rc']}")
    lines = [line.strip() for line in str(res.get("module_stderr") or "").splitlines()]
    last = next((line for line in reversed(lines) if line), "")
    if last and last != msg:
        details.append(last)
    return f"{msg} ({'; '.join(details)})" if details else msg


def _retry_note(task: str, res: dict) -> str:
    """``retrying "Task" (attempt 2 of 4): why`` from a ``runner_retry`` event's result, where
    ``attempts`` is the attempt that just failed and ``retries`` counts every attempt."""
    note = f'retrying "{task}"'
    with contextlib.suppress(KeyError, TypeError, ValueError):
        note += f" (attempt {int(res['attempts']) + 1} of {int(res['retries'])})"
    why = _first_line(res.get("msg"))
    # "Request failed" and "non-zero return code" alone do not say what went wrong.
    detail = _first_line(res.get("response")) or (
        _first_line(res.get("stderr")) if res.get("rc") else "")
    if detail and detail not in why:
        why = f"{why}: {detail}" if why else detail
    return f"{note}: {why}" if why else note


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
    cmdline, passwords = _command_line(check, diff, vault_password_file, become_password)
    env = {
        "ANSIBLE_CONFIG": str(workspace.ansible_cfg),
        # ansible-runner finds ansible-playbook on PATH; make it the one beside this Python.
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
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
    _mark_not_reached(result, expected_hosts or [])
    return result


def _command_line(check: bool, diff: bool, vault_password_file: str | None,
                  become_password: str | None) -> tuple[list[str], dict[str, str]]:
    """ansible-playbook's options, and the answers to its prompts (the password is answered
    on the prompt, never put on the command line)."""
    cmdline = [*(["--check"] if check else []), *(["--diff"] if diff else [])]
    if vault_password_file:
        cmdline += ["--vault-password-file", vault_password_file]
    passwords = {}
    if become_password is not None:
        cmdline.append("--ask-become-pass")
        passwords[BECOME_PROMPT] = become_password
    return cmdline, passwords


def _mark_not_reached(result: RunResult, expected_hosts: list[str]) -> None:
    for name in expected_hosts:
        if name not in result.hosts:
            # Never pass as "ok": a rolling update stopped before this host (untouched), or
            # an inventory problem kept Ansible from seeing it.
            result.hosts[name] = HostResult(
                name, not_reached=True,
                messages=["not reached: Ansible did not run on this host, which is untouched "
                          "(a rolling update stopped earlier, or see -vvv)"],
            )
