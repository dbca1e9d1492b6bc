"""Reuse a host's last verify results while everything they were computed from is unchanged.

A check's outcome is a function of what the host answered (every command the check ran, with
its exit status, stdout and stderr) and of what rigforge holds locally (the check code, the
host's variables, the components asked for). When the prefetch (provision/checks/prefetch.py)
answered every command of a verify's checks, its one round trip is all the host input those
results depend on. After such a verify rigforge keeps the host's results under a key made of
that round trip's digest and the local inputs. The next verify makes the same round trip
first, and when every answer is byte-identical and nothing local changed, pytest would compute
the same results from the same inputs: they are reused instead of starting pytest. One byte of
difference in one answer, or any change to the code, the variables or the components, and
pytest evaluates every check as before. `rigforge verify --full` always evaluates.

The host is asked every time: reuse skips the evaluation, never the probing. What is kept
holds no answer from the host, only the results (as the report shows them) and a hash.
"""

import hashlib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from provision import fsutil
from provision.checks import prefetch
from provision.fingerprint import code_fingerprint
from provision.secrets import public
from provision.targets import Target
from provision.verify import junit
from provision.verify.results import CheckResult, VerifyResult
from provision.verify.spec import PREFETCH_DIR, check_modules, host_spec, scoped
from provision.workspace import Workspace

#: Per host, the results of the last verify whose round trip answered every command.
MEMO_DIR = "verify-results"


def local_key(target: Target, components: list[str] | None, tiers: list[str] | None = None) -> str:
    """What the results depend on besides the host's answers."""
    local = [
        code_fingerprint(),
        host_spec(target),
        [Path(m).name for m in check_modules([target], tiers)],
        sorted(components or []),
        public(target.vars),
    ]
    return hashlib.sha256(json.dumps(local, sort_keys=True, default=str).encode()).hexdigest()


def key(local: str, answers_digest: str) -> str:
    return hashlib.sha256(f"{local}\0{answers_digest}".encode()).hexdigest()


def memo_path(directory: Path, host: str) -> Path:
    return prefetch.record_path(directory, host)


def load(directory: Path, host: str) -> dict | None:
    try:
        memo = json.loads(memo_path(directory, host).read_text())
    except (OSError, ValueError):
        return None
    ok = (isinstance(memo, dict) and isinstance(memo.get("key"), str)
          and isinstance(memo.get("checks"), list) and isinstance(memo.get("testcases"), list))
    return memo if ok else None


def save(directory: Path, host: str, memo_key: str, checks: list[dict], testcases: list[str]) -> None:
    memo = {
        "key": memo_key,
        "evaluated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "checks": checks,
        "testcases": testcases,
    }
    fsutil.write_text(memo_path(directory, host), json.dumps(memo, indent=1) + "\n", mode=0o600)


def forget(directory: Path, host: str) -> None:
    memo_path(directory, host).unlink(missing_ok=True)


def fetch(workspace: Workspace, targets: list[Target], records: Path,
          while_waiting: Callable[[], object] | None = None) -> dict[str, prefetch.Fetched]:
    """Each host's recorded commands, answered in one round trip per host, all hosts at once.

    Over testinfra's own ssh backend (sudo, quoting, the login shell), exactly as the checks'
    prefetch runs them: the answers are handed to the child pytest as its own, and reused
    results are only right if these are byte for byte what the checks would have seen.
    ``while_waiting`` runs here meanwhile: local work that need not wait for the hosts."""
    import testinfra

    def one(target: Target) -> prefetch.Fetched | None:
        backend = testinfra.get_host(host_spec(target), ssh_config=str(workspace.ssh_config)).backend
        commands = prefetch.load(records, target.host.name)
        return prefetch.fetch(backend.run, commands, bool(getattr(backend, "sudo", False)))

    with ThreadPoolExecutor(max_workers=max(1, min(len(targets), 32))) as pool:
        pending = [pool.submit(one, t) for t in targets]
        if while_waiting is not None:
            while_waiting()
        fetched = [f.result() for f in pending]
    return {t.host.name: f for t, f in zip(targets, fetched, strict=True) if f is not None}


def reuse(workspace: Workspace, recorded: list[Target], components: list[str] | None,
          tiers: list[str] | None = None):
    """The recorded hosts whose last results still hold, as results; and the round trips
    made to find out, for the child pytest to use instead of fetching again."""
    memo_dir = scoped(workspace.state_dir, MEMO_DIR, components, tiers)
    memos = {t.host.name: m for t in recorded if (m := load(memo_dir, t.host.name))}
    if not memos:
        return {}, {}
    candidates = [t for t in recorded if t.host.name in memos]
    local: dict[str, str] = {}

    def meanwhile():
        local.update((t.host.name, local_key(t, components, tiers)) for t in candidates)

    fetched = fetch(workspace, candidates, scoped(workspace.state_dir, PREFETCH_DIR, components, tiers),
                    meanwhile)
    reused = {}
    for t in candidates:
        name, answers = t.host.name, fetched.get(t.host.name)
        memo = memos[name]
        if answers and memo["key"] == key(local[name], answers.digest):
            checks = [CheckResult(**c) for c in memo["checks"]]
            reused[name] = VerifyResult(
                checks=checks,
                junit_xml=suite(name, memo["testcases"], memo.get("evaluated", "")),
                pytest_rc=1 if any(c.outcome in ("failed", "error") for c in checks) else 0,
                reused={name: memo.get("evaluated", "")},
            )
    return reused, {n: f for n, f in fetched.items() if n not in reused}


def remember(workspace: Workspace, group: list[Target], components: list[str] | None,
             result: VerifyResult, probes: dict, tiers: list[str] | None = None) -> None:
    """Keep the results of each host whose checks were all answered by its round trip."""
    memo_dir = scoped(workspace.state_dir, MEMO_DIR, components, tiers)
    checks = [c.__dict__ for c in result.checks]
    cases = testcases_by_host(result.junit_xml, checks)
    for t in group:
        name = t.host.name
        mine = [c for c in checks if c.get("host") == name]
        probe = probes.get(name) or {}
        whole = bool(mine) and len(cases.get(name, [])) == len(mine)
        if result.pytest_rc in (0, 1) and probe.get("pure") and probe.get("digest") and whole:
            save(memo_dir, name, key(local_key(t, components, tiers), probe["digest"]), mine, cases[name])
        else:
            forget(memo_dir, name)


def testcases_by_host(junit_xml: str, checks: list[dict]) -> dict[str, list[str]]:
    """The JUnit ``<testcase>`` elements of each host, matched through the checks' node ids
    (JUnit names a test by its node id's last part, its class by the rest)."""
    owner = {case_id(c["nodeid"]): c["host"] for c in checks if c.get("nodeid") and c.get("host")}
    found: dict[str, list[str]] = {}
    for case in junit.testcases(junit_xml):
        classname = (case.get("classname") or "").split(".")
        host = owner.get((classname[-1], case.get("name") or ""))
        if host:
            found.setdefault(host, []).append(junit.to_text(case).strip())
    return found


def case_id(nodeid: str) -> tuple[str, str]:
    """(innermost module or class, test name) as pytest's JUnit report spells them."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    parent = names[-2] if len(names) > 2 else names[0].rsplit("/", 1)[-1].removesuffix(".py")
    return parent, names[-1] + bracket + params


def suite(host: str, testcases: list[str], evaluated: str) -> str:
    """One ``<testsuite>`` of reused testcases, named as a one-host verify names it."""
    import xml.etree.ElementTree as ET

    cases = [ET.fromstring(text) for text in testcases]
    return junit.to_text(junit.testsuite(f"rigforge-verify-{host}", cases,
                                         {"rigforge-reused-results-of": evaluated}))
