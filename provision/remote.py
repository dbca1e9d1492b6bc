"""Run a shell script on hosts: one ``ssh`` session each, through the workspace's ssh_config.

rigforge's own reads of a host (``rigforge probe``, the converged check) go through here; the
checks of ``rigforge verify`` go through testinfra's ssh backend, over the same ssh_config.
The ssh_config (:func:`provision.hosts.write_ssh_config`) names each inventory host with its
address, port, user and key, and multiplexes sessions over one connection. Whatever it
says, the command line here insists on strict host-key checking against the workspace's
``known_hosts`` only, and on ``BatchMode`` (no prompt for a password or a new host key).

The script goes to ``sh -s`` on stdin, wrapped so that the shell reads all of it before it
runs any of it: no command in it can read the rest of the script as its own input.
"""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from provision.workspace import Workspace

#: How long one session may take, connection included (the ssh_config's ConnectTimeout is 10 s).
TIMEOUT_S = 60
#: ssh's exit status when ssh itself failed rather than the remote command.
SSH_FAILED = 255


@dataclass
class Completed:
    """The script ran: its exit status and what it printed."""

    host: str
    rc: int
    stdout: str
    stderr: str

    @property
    def error(self) -> str | None:
        """None when the script exited 0, else what went wrong, in a line."""
        if self.rc == 0:
            return None
        return f"ssh exited {self.rc}: {_last_line(self.stderr) or f'exit {self.rc}'}"


class Unreachable(Exception):
    """ssh did not run the script: it could not start, ran out of time, or failed itself.

    ``kind`` says why: ``not-run``, ``timeout``, ``host-key-changed``, ``host-key-unknown``,
    ``auth``, ``connect`` or ``ssh``; ``detail`` is ssh's own word on it; ``str()`` the whole
    of it in a line.
    """

    def __init__(self, host: str, message: str, kind: str, detail: str = "", key_type: str = ""):
        super().__init__(message)
        self.host, self.kind, self.detail, self.key_type = host, kind, detail or message, key_type


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _option(name: str, value: object) -> list[str]:
    text = str(value)
    return ["-o", f'{name}="{text}"' if any(c.isspace() for c in text) else f"{name}={text}"]


def command(workspace: Workspace, host: str, fresh: bool = False,
            overrides: dict[str, object] | None = None) -> list[str]:
    """The ``ssh`` command line that runs ``sh -s`` on ``host``.

    ``fresh``: a connection of its own, never a multiplexed one (whose host key was checked
    when it was opened). ``overrides``: ssh options that win over the ssh_config's.
    """
    argv = ["ssh", "-F", str(workspace.ssh_config),
            *_option("StrictHostKeyChecking", "yes"),
            *_option("UserKnownHostsFile", workspace.known_hosts),
            *_option("BatchMode", "yes")]
    if fresh:
        argv += [*_option("ControlMaster", "no"), *_option("ControlPath", "none")]
    for name, value in (overrides or {}).items():
        argv += _option(name, value)
    return [*argv, host, "sh -s"]


def ensure_ssh_config(workspace: Workspace) -> None:
    """Write the ssh_config if there is none (an existing one is left as it is: a command
    refused later must not have changed the workspace)."""
    if not workspace.ssh_config.is_file():
        from provision.hosts import write_ssh_config

        write_ssh_config(workspace)


def run(workspace: Workspace, host: str, script: str, timeout: float = TIMEOUT_S,
        fresh: bool = False, overrides: dict[str, object] | None = None) -> Completed:
    """Run ``script`` on ``host`` in one ssh session; raises :class:`Unreachable`."""
    argv = command(workspace, host, fresh, overrides)
    try:
        proc = subprocess.run(argv, input=f"{{\n{script}\n}} </dev/null\n".encode(),
                              capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise Unreachable(host, f"ssh failed: {exc}", "timeout", f"no answer within {timeout:g} s") from None
    except OSError as exc:
        raise Unreachable(host, f"ssh failed: {exc}", "not-run", str(exc)) from None
    stdout = proc.stdout.decode("utf-8", "replace")
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode == SSH_FAILED:
        raise _unreachable(host, stderr)
    return Completed(host, proc.returncode, stdout, stderr)


def run_all(workspace: Workspace, hosts: list[str], script: str, timeout: float = TIMEOUT_S,
            fresh: bool = False, overrides: dict[str, dict] | None = None,
            workers: int = 32) -> dict[str, Completed | Unreachable]:
    """:func:`run` on every host at once (``overrides`` per host): its result or its error."""
    if not hosts:
        return {}
    ensure_ssh_config(workspace)

    def one(host: str) -> Completed | Unreachable:
        try:
            return run(workspace, host, script, timeout, fresh, (overrides or {}).get(host))
        except Unreachable as exc:
            return exc

    with ThreadPoolExecutor(max_workers=min(workers, len(hosts))) as pool:
        return dict(zip(hosts, pool.map(one, hosts), strict=True))


_KEY_SENT = re.compile(r"The fingerprint for the (\S+) key sent by the remote host")
_CONNECT = re.compile(r"^ssh: connect to host \S+ port \d+: (.*)$", re.MULTILINE)


def _unreachable(host: str, stderr: str) -> Unreachable:
    """What ssh's own failure (exit 255) was, from what it printed."""
    last = _last_line(stderr)
    message = f"ssh exited {SSH_FAILED}: {last or f'exit {SSH_FAILED}'}"
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr or "has changed and you have" in stderr:
        sent = _KEY_SENT.search(stderr)
        return Unreachable(host, message, "host-key-changed", last, sent.group(1) if sent else "")
    if "host key is known for" in stderr or "Host key verification failed" in stderr:
        return Unreachable(host, message, "host-key-unknown", last)
    if "Permission denied" in stderr:
        return Unreachable(host, message, "auth", last)
    connect = _CONNECT.search(stderr)
    if connect:
        return Unreachable(host, message, "connect", connect.group(1).strip())
    if last.startswith("ssh: ") or "Connection closed by" in last or "kex_exchange" in last:
        return Unreachable(host, message, "connect", last.removeprefix("ssh: "))
    return Unreachable(host, message, "ssh", last or f"exit {SSH_FAILED}")
