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
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from provision import fsutil
from provision.checks import prefetch
from provision.targets import Target
from provision.workspace import Workspace

#: Per host, the results of the last verify whose round trip answered every command.
MEMO_DIR = "verify-results"

_PACKAGE = Path(__file__).resolve().parent
#: The installed distributions whose code the checks run besides rigforge's own.
_RUNNERS = ("pytest", "pytest_testinfra", "pluggy", "pyyaml")


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Every source file of rigforge (checks, plugin and what they import) and the versions
    of pytest and testinfra, read without importing either."""
    import importlib.util

    h = hashlib.sha256(sys.version.encode())
    for path in sorted(_PACKAGE.rglob("*.py")):
        h.update(str(path.relative_to(_PACKAGE)).encode() + b"\0" + path.read_bytes() + b"\0")
    # The facts table the checks read (package names, hold patterns, supported OSes).
    from provision.gpu.table import table_path

    h.update(table_path().read_bytes())
    spec = importlib.util.find_spec("testinfra")
    if spec and spec.origin:
        site = Path(spec.origin).parents[1]
        names = sorted(n for n in _listdir(site)
                       if n.endswith(".dist-info") and n.lower().startswith(_RUNNERS))
        h.update("\0".join(names).encode())
    return h.hexdigest()


def _listdir(path: Path) -> list[str]:
    try:
        return [p.name for p in path.iterdir()]
    except OSError:
        return []


def local_key(target: Target, components: list[str] | None) -> str:
    """What the results depend on besides the host's answers."""
    from provision.verify import check_modules, host_spec
    from provision.verify_vars import public

    local = [
        code_fingerprint(),
        host_spec(target),
        [Path(m).name for m in check_modules([target])],
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
    """Each host's recorded commands, answered in one round trip per host, all hosts at once,
    over the same testinfra backend (ssh, sudo) the checks use. ``while_waiting`` runs here
    meanwhile: local work that need not wait for the hosts."""
    import testinfra

    from provision.verify import host_spec

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


def testcases_by_host(junit_xml: str, checks: list[dict]) -> dict[str, list[str]]:
    """The JUnit ``<testcase>`` elements of each host, matched through the checks' node ids
    (JUnit names a test by its node id's last part, its class by the rest)."""
    import xml.etree.ElementTree as ET

    if not junit_xml:
        return {}
    owner = {_case_id(c["nodeid"]): c["host"] for c in checks if c.get("nodeid") and c.get("host")}
    found: dict[str, list[str]] = {}
    for case in ET.fromstring(junit_xml).iter("testcase"):
        classname = (case.get("classname") or "").split(".")
        host = owner.get((classname[-1], case.get("name") or ""))
        if host:
            found.setdefault(host, []).append(ET.tostring(case, encoding="unicode").strip())
    return found


def _case_id(nodeid: str) -> tuple[str, str]:
    """(innermost module or class, test name) as pytest's JUnit report spells them."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    parent = names[-2] if len(names) > 2 else names[0].rsplit("/", 1)[-1].removesuffix(".py")
    return parent, names[-1] + bracket + params


def suite(host: str, testcases: list[str], evaluated: str) -> str:
    """One ``<testsuite>`` of reused testcases, named as a one-host verify names it."""
    import socket
    import xml.etree.ElementTree as ET

    cases = [ET.fromstring(text) for text in testcases]
    counts = {tag: sum(1 for c in cases if c.find(tag) is not None)
              for tag in ("failure", "error", "skipped")}
    root = ET.Element("testsuite", {
        "name": f"rigforge-verify-{host}",
        "errors": str(counts["error"]),
        "failures": str(counts["failure"]),
        "skipped": str(counts["skipped"]),
        "tests": str(len(cases)),
        "time": f"{sum(float(c.get('time') or 0) for c in cases):.3f}",
        "timestamp": datetime.now(UTC).isoformat(),
        "hostname": socket.gethostname(),
    })
    props = ET.SubElement(root, "properties")
    ET.SubElement(props, "property", {"name": "rigforge-reused-results-of", "value": evaluated})
    root.extend(cases)
    return ET.tostring(root, encoding="unicode")
