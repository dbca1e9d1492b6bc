"""Answer the checks' commands from one round trip per host.

Every testinfra command is its own ``ssh`` exec: on a LAN that is a round trip each, and the
base + docker checks alone run dozens. ``rigforge verify`` records, per host, the commands the
checks ran last time. The next verify runs those same commands on the host, in the same order,
in ONE remote shell, and each check's first call of a command gets that command's real result
(exit status, stdout and stderr, taken from the host at the start of this verify). A command
not in the record, or asked for a second time, runs live as before, and the record is replaced
by what ran this time. So nothing is assumed about a host: every result still comes from the
host, only fewer connections carry them, and a stale record costs time, never a wrong answer.
"""

import base64
import hashlib
import io
import json
import re
import tarfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

MARK = "@rigforge-prefetch@"

#: run_local passes the whole ssh command to /bin/sh -c as one argument, which Linux caps at
#: 128 KiB (MAX_ARG_STRLEN); the commands beyond this budget simply run live.
MAX_SCRIPT = 96 * 1024

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")

# Each command runs as a live exec would run it, with stdin on /dev/null (a live exec gets none
# either); its exit status, stdout and stderr go to files, and one tar carries them all back,
# any bytes intact. Only shell builtins run between the commands: a helper process per command
# would cost more on a small host than the round trips it saves. The script's own names start
# with _rf_ so that no command meets them by chance.
_PRELUDE = (
    '_rf_d=$(mktemp -d) || exit 97\n'
    "trap 'rm -rf \"$_rf_d\"' EXIT\n"
    "_rf_i=0\n"
    '_rf_r() {{ _rf_i=$((_rf_i+1)); {runner} </dev/null >"$_rf_d/$_rf_i.o" 2>"$_rf_d/$_rf_i.e"; '
    'echo "$?" >"$_rf_d/$_rf_i.r"; }}\n'
)
#: Over plain ssh a live command runs under the user's login shell.
LOGIN_RUNNER = '"${SHELL:-/bin/sh}" -c "$1"'
#: Under testinfra's sudo a live command is ``/bin/sh -c COMMAND``, and this script itself
#: runs in /bin/sh: a subshell of it (``shift`` empties the positional parameters, as a fresh
#: ``sh -c`` has none) runs the command in the same shell without a fork and exec of a new one
#: per command, which cost about a tenth of a converged host's round trip.
SUDO_RUNNER = '( eval "shift; $1" )'
_EPILOGUE = f'printf "%s\\n" "{MARK}"; cd "$_rf_d" && tar -cf - .\n'


def _quote(command: str) -> str:
    return "'" + command.replace("'", "'\"'\"'") + "'"


def script(commands: list[str], sudo: bool = False) -> tuple[str, int]:
    """The /bin/sh script running ``commands`` in order, each as a live exec would (under
    testinfra's sudo or not), and how many of them fitted."""
    prelude = _PRELUDE.format(runner=SUDO_RUNNER if sudo else LOGIN_RUNNER)
    lines, size = [prelude], len(prelude) + len(_EPILOGUE)
    count = 0
    for command in commands:
        line = f"_rf_r {_quote(command)}\n"
        if size + len(line) > MAX_SCRIPT:
            break
        lines.append(line)
        size += len(line)
        count += 1
    return "".join(lines) + _EPILOGUE, count


def parse(stdout: bytes, count: int) -> list[tuple[int, bytes, bytes]] | None:
    """The ``count`` results carried back by :func:`script`, or None unless all are whole."""
    marker = MARK.encode() + b"\n"
    at = stdout.find(marker)  # whatever a login script printed comes before it
    if at < 0:
        return None
    try:
        with tarfile.open(fileobj=io.BytesIO(stdout[at + len(marker):])) as archive:
            files = {
                m.name.removeprefix("./"): archive.extractfile(m).read()
                for m in archive.getmembers() if m.isfile()
            }
    except (tarfile.TarError, OSError, EOFError):
        return None
    results = []
    for i in range(1, count + 1):
        rc = files.get(f"{i}.r", b"").strip()
        if not rc.isdigit() or f"{i}.o" not in files or f"{i}.e" not in files:
            return None
        results.append((int(rc), files[f"{i}.o"], files[f"{i}.e"]))
    return results


Result = tuple[int, bytes, bytes]


def digest(text: str, results: list[Result]) -> str:
    """What one host answered to one prefetch script: equal digests, byte-identical answers
    (``rigforge verify`` reuses its last results for a host only on an equal digest)."""
    h = hashlib.sha256()
    for part in (text.encode(), *(b for rc, out, err in results for b in (str(rc).encode(), out, err))):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


@dataclass
class Fetched:
    """One host's answers to its recorded commands, as one round trip brought them back."""

    commands: list[str]  # the record the script was made from
    count: int  # how many of them the script ran (the rest did not fit)
    results: list[Result]
    digest: str

    def to_json(self) -> dict:
        b64 = base64.b64encode
        return {"commands": self.commands, "count": self.count, "digest": self.digest,
                "results": [[rc, b64(out).decode(), b64(err).decode()] for rc, out, err in self.results]}

    @classmethod
    def from_json(cls, data: dict) -> "Fetched":
        b64 = base64.b64decode
        return cls(list(data["commands"]), int(data["count"]),
                   [(int(rc), b64(out), b64(err)) for rc, out, err in data["results"]],
                   str(data["digest"]))


def fetch(run: Callable, commands: list[str], sudo: bool) -> Fetched | None:
    """Run ``commands`` through ``run`` (a testinfra backend's own ``run``) in one round
    trip; None if nothing whole came back."""
    if not commands:
        return None
    text, count = script(commands, sudo)
    try:
        result = run("/bin/sh -c %s", text)
    except Exception:  # the live commands will report the same failure, each in its check
        return None
    parsed = parse(result.stdout_bytes, count) if result.rc == 0 else None
    return Fetched(commands, count, parsed, digest(text, parsed)) if parsed is not None else None


def record_path(directory: Path, host: str) -> Path:
    return directory / f"{_SAFE_NAME.sub('_', host)}.json"


def load(directory: Path, host: str) -> list[str]:
    try:
        commands = json.loads(record_path(directory, host).read_text())
    except (OSError, ValueError):
        return []
    return [c for c in commands if isinstance(c, str)] if isinstance(commands, list) else []


@dataclass
class _Host:
    """One wrapped host: its backend's own ``run``, what ran, and the prefetched answers."""

    original: Callable
    sudo: bool
    ran: list[str] = field(default_factory=list)
    answers: dict[str, deque] | None = None  # None until fetched
    answered: int = 0
    fetched: Fetched | None = None

    @property
    def pure(self) -> bool:
        """Whether every command the checks ran was answered by the one round trip: then
        their results follow from that round trip's answers alone."""
        f = self.fetched
        return (f is not None and f.count == len(f.commands) and self.ran == f.commands
                and self.answered == len(self.ran))


class Prefetcher:
    """Wraps each testinfra host's ``backend.run``; ``save`` writes what ran, per host."""

    def __init__(self, directory: Path, fetched: dict[str, Fetched] | None = None):
        self.directory = directory
        self._hosts: dict[str, _Host] = {}
        # Answers `rigforge verify` fetched already in this same verify (see provision/verify/memo.py).
        self._given = dict(fetched or {})

    @property
    def answered(self) -> dict[str, int]:
        """How many commands each host's prefetch answered."""
        return {name: h.answered for name, h in self._hosts.items()}

    def probes(self) -> dict[str, dict]:
        """Per host: the digest of its prefetch answers, and whether they answered all."""
        return {name: {"digest": h.fetched.digest if h.fetched else None, "pure": h.pure}
                for name, h in self._hosts.items()}

    def install(self, host) -> None:
        backend = host.backend
        name = backend.get_hostname()
        if name in self._hosts:
            return
        state = self._hosts[name] = _Host(backend.run, bool(getattr(backend, "sudo", False)))

        def run(command, *args, **kwargs):
            # Recorded and matched before testinfra's sudo wrapping: the whole prefetch runs
            # under one sudo, as one sudo per command would cost more than the round trips.
            key = backend.quote(command, *args)
            state.ran.append(key)
            if state.answers is None:
                self.prime([name])
            queued = state.answers.get(key)
            if queued:
                state.answered += 1
                rc, out, err = queued.popleft()
                return backend.result(rc, backend.encode(backend.get_command(command, *args)), out, err)
            return state.original(command, *args, **kwargs)

        backend.run = run

    def prime(self, names: list[str]) -> None:
        """Fetch these hosts' recorded commands now, all hosts at once (one thread each)."""
        from concurrent.futures import ThreadPoolExecutor

        todo = [n for n in dict.fromkeys(names) if n in self._hosts and self._hosts[n].answers is None]
        states = [self._hosts[n] for n in todo]
        records = [load(self.directory, n) for n in todo]
        given = [self._given.get(n) for n in todo]
        with ThreadPoolExecutor(max_workers=max(1, min(len(todo), 32))) as pool:
            for state, fetched in zip(states, pool.map(self._fetch, states, records, given), strict=True):
                state.fetched = fetched
                state.answers = {}
                for command, answer in zip(fetched.commands if fetched else [],
                                           fetched.results if fetched else [], strict=False):
                    state.answers.setdefault(command, deque()).append(answer)

    @staticmethod
    def _fetch(state: _Host, commands: list[str], given: Fetched | None) -> Fetched | None:
        if given is not None and given.commands == commands:
            return given
        return fetch(state.original, commands, state.sudo)

    def save(self) -> None:
        from provision import fsutil

        for name, state in self._hosts.items():
            fsutil.write_text(record_path(self.directory, name), json.dumps(state.ran, indent=1) + "\n")
