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
import json
import re
from collections import deque
from pathlib import Path

MARK = "@rigforge-prefetch@"

#: run_local passes the whole ssh command to /bin/sh -c as one argument, which Linux caps at
#: 128 KiB (MAX_ARG_STRLEN); the commands beyond this budget simply run live.
MAX_SCRIPT = 96 * 1024

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")

# A function per command keeps the commands out of each other's way: each runs under the login
# shell as a live ssh exec does, with stdin on /dev/null (a live exec gets none either), and its
# output is framed and base64-encoded so that any bytes survive.
_PRELUDE = (
    'd=$(mktemp -d) || exit 97\n'
    "trap 'rm -rf \"$d\"' EXIT\n"
    f'r() {{ printf "%s\\n" "{MARK}"; "${{SHELL:-/bin/sh}}" -c "$1" </dev/null >"$d/o" 2>"$d/e"; '
    'printf "%s\\n" "$?"; base64 <"$d/o" | tr -d "\\n"; printf "\\n"; '
    'base64 <"$d/e" | tr -d "\\n"; printf "\\n"; }\n'
)


def _quote(command: str) -> str:
    return "'" + command.replace("'", "'\"'\"'") + "'"


def script(commands: list[str]) -> tuple[str, int]:
    """The shell script running ``commands`` in order, and how many of them fitted."""
    lines, size = [_PRELUDE], len(_PRELUDE)
    for count, command in enumerate(commands):
        line = f"r {_quote(command)}\n"
        if size + len(line) > MAX_SCRIPT:
            return "".join(lines), count
        lines.append(line)
        size += len(line)
    return "".join(lines), len(commands)


def parse(stdout: str, count: int) -> list[tuple[int, bytes, bytes]] | None:
    """The ``count`` results framed by :func:`script`, or None when the output is not whole."""
    lines = stdout.split("\n")
    if MARK in lines:  # whatever a login script printed comes before the first record
        lines = lines[lines.index(MARK):]
    results = []
    for start in range(0, 4 * count, 4):
        record = lines[start:start + 4]
        if len(record) < 4 or record[0] != MARK or not record[1].isdigit():
            return None
        try:
            out, err = base64.b64decode(record[2]), base64.b64decode(record[3])
        except ValueError:
            return None
        results.append((int(record[1]), out, err))
    return results


def record_path(directory: Path, host: str) -> Path:
    return directory / f"{_SAFE_NAME.sub('_', host)}.json"


def load(directory: Path, host: str) -> list[str]:
    try:
        commands = json.loads(record_path(directory, host).read_text())
    except (OSError, ValueError):
        return []
    return [c for c in commands if isinstance(c, str)] if isinstance(commands, list) else []


class Prefetcher:
    """Wraps each testinfra host's ``backend.run``; ``save`` writes what ran, per host."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.ran: dict[str, list[str]] = {}
        self.answered: dict[str, int] = {}
        self._answers: dict[str, dict[str, deque] | None] = {}
        self._originals: dict[str, object] = {}

    def install(self, host) -> None:
        backend = host.backend
        name = backend.get_hostname()
        if name in self.ran:
            return
        original = self._originals[name] = backend.run
        ran = self.ran[name] = []
        self.answered[name] = 0
        self._answers[name] = None

        def run(command, *args, **kwargs):
            key = backend.get_command(command, *args)
            ran.append(key)
            if self._answers[name] is None:
                self.prime([name])
            queued = self._answers[name].get(key)
            if queued:
                self.answered[name] += 1
                rc, out, err = queued.popleft()
                return backend.result(rc, backend.encode(key), out, err)
            return original(command, *args, **kwargs)

        backend.run = run

    def prime(self, names: list[str]) -> None:
        """Fetch these hosts' recorded commands now, all hosts at once (one thread each)."""
        todo = [n for n in names if self._answers.get(n) is None and n in self._originals]
        if len(todo) == 1:
            self._answers[todo[0]] = self._fetch(self._originals[todo[0]], load(self.directory, todo[0]))
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=max(1, min(len(todo), 32))) as pool:
            fetched = pool.map(lambda n: self._fetch(self._originals[n], load(self.directory, n)), todo)
            self._answers.update(zip(todo, fetched, strict=True))

    @staticmethod
    def _fetch(original, commands: list[str]) -> dict[str, deque]:
        answers: dict[str, deque] = {}
        if not commands:
            return answers
        text, count = script(commands)
        try:
            result = original("sh -c %s", text)
        except Exception:  # the live commands will report the same failure, each in its check
            return answers
        parsed = parse(result.stdout_bytes.decode("ascii", "replace"), count) if result.rc == 0 else None
        for command, answer in zip(commands, parsed or [], strict=False):
            answers.setdefault(command, deque()).append(answer)
        return answers

    def save(self) -> None:
        from provision import fsutil

        for name, commands in self.ran.items():
            fsutil.write_text(record_path(self.directory, name), json.dumps(commands, indent=1) + "\n")
