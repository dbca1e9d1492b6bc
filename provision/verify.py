"""``rigforge verify``: run the testinfra checks under plain pytest and collect the results.

The checks run in a child ``python -m pytest`` exactly as a user would run them by hand,
so "works under rigforge" and "works under pytest" cannot drift apart.
"""

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from provision import assets
from provision.targets import Target
from provision.workspace import Workspace


@dataclass
class CheckResult:
    host: str
    component: str
    check: str
    outcome: str  # passed | failed | skipped | error
    message: str = ""
    nodeid: str = field(default="", repr=False)  # pytest's; kept with reused results
    #: What passes today and needs the owner soon (a RigforgeWarning the check raised).
    warning: str = ""

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "nodeid" and (k != "warning" or v)}


@dataclass
class VerifyResult:
    checks: list[CheckResult] = field(default_factory=list)
    junit_xml: str = ""
    pytest_rc: int = 0
    output: str = ""
    #: Hosts whose results were reused (see provision/verify_memo.py): when they were computed.
    reused: dict[str, str] = field(default_factory=dict)
    #: Per host, what passes today and needs the user soon (a driver branch past its end of life),
    #: as the checks warned.
    warnings: dict[str, list[str]] = field(default_factory=dict)

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.outcome in ("failed", "error")]

    @property
    def succeeded(self) -> bool:
        return self.pytest_rc in (0, 5) and not self.failed and bool(self.checks)

    def to_dict(self) -> dict:
        return {
            "status": "passed" if self.succeeded else "failed",
            "checks": [c.to_dict() for c in self.checks],
            "reused_results": dict(self.reused),
            "warnings": {host: list(found) for host, found in sorted(self.warnings.items())},
        }


def host_spec(target: Target) -> str:
    """testinfra's host spec: ssh through the workspace's ssh_config, sudo unless root."""
    user = target.host.user
    sudo = "?sudo=true" if user and user != "root" else ""
    return f"ssh://{target.host.name}{sudo}"


#: Per host, the commands the checks ran last time (see provision/checks/prefetch.py).
PREFETCH_DIR = "verify-commands"


def check_modules(targets: list[Target]) -> list[str]:
    """The check modules of the components these hosts get: collecting the others (importing
    them, then deselecting every check) would only slow the run down."""
    wanted = {c for t in targets for c in t.components}
    paths = [assets.checks_dir() / f"test_{c}.py" for c in sorted(wanted)]
    found = [str(p) for p in paths if p.is_file()]
    return found or [str(assets.checks_dir())]


def pytest_command(
    workspace: Workspace,
    targets: list[Target],
    components: list[str] | None,
    report: Path,
    junit: Path,
) -> list[str]:
    command = [
        sys.executable, "-m", "pytest", *check_modules(targets),
        # An empty ini of our own: the checks must not pick up a pytest.ini near the workspace.
        "-c", str(report.parent / "pytest.ini"),
        f"--rootdir={report.parent}",
        "-p", "no:cacheprovider",
        "-q", "--no-header", "-rN", "--tb=no",
        f"--ssh-config={workspace.ssh_config}",
        f"--hosts={','.join(host_spec(t) for t in targets)}",
        "-p", "testinfra.plugin", "-p", "provision.checks.plugin",
        f"--rigforge-workspace={workspace.root}",
        f"--rigforge-report={report}",
        f"--rigforge-prefetch={workspace.state_dir / PREFETCH_DIR}",
        f"--junitxml={junit}",
        "-o", "junit_family=xunit2",
        "-o", "junit_suite_name=rigforge-verify"
        + (f"-{targets[0].host.name}" if len(targets) == 1 else ""),
    ]
    if components:
        command.append(f"--rigforge-components={','.join(components)}")
    return command


#: Hosts checked at once: each gets its own pytest process (and SSH connection).
PARALLEL_HOSTS = 8


def run_checks(
    workspace: Workspace, targets: list[Target], components: list[str] | None,
    reuse: bool = True,
) -> VerifyResult:
    """Check every host, in parallel, and merge the results.

    The hosts whose commands were recorded by an earlier verify share ONE pytest process:
    their round trips are made at once before the first check (see
    provision/checks/prefetch.py), and the checks then cost CPU, not connections, so one
    process start-up serves the whole fleet. Each host without a record gets a process of its
    own, because its checks' commands all go over the wire one by one.

    Before that, with ``reuse``, a recorded host whose answers and local inputs are exactly
    those of its last fully-prefetched verify gets that verify's results back without pytest
    (provision/verify_memo.py); its round trip is handed on to pytest when it is not reused.
    """
    from concurrent.futures import ThreadPoolExecutor

    from provision.checks import prefetch
    from provision.hosts import write_ssh_config

    write_ssh_config(workspace)
    directory = workspace.state_dir / PREFETCH_DIR
    recorded, groups = [], []
    for t in targets:
        if prefetch.record_path(directory, t.host.name).is_file():
            recorded.append(t)
        else:
            groups.append([t])
    reused, fetched = _reuse(workspace, recorded, components) if reuse else ({}, {})
    recorded = [t for t in recorded if t.host.name not in reused]
    if recorded:
        groups.insert(0, recorded)
    with ThreadPoolExecutor(max_workers=min(PARALLEL_HOSTS, max(1, len(groups)))) as pool:
        parts = list(pool.map(
            lambda group: _check_group(workspace, group, components, fetched), groups))
    parts = [*reused.values(), *parts]
    checks = [c for part in parts for c in part.checks]
    warnings: dict[str, list[str]] = {}
    for c in checks:
        if c.warning and c.warning not in warnings.get(c.host, []):
            warnings.setdefault(c.host, []).append(c.warning)
    return VerifyResult(
        checks=[c for part in parts for c in part.checks],
        junit_xml=_merge_junit([part.junit_xml for part in parts]),
        pytest_rc=max((part.pytest_rc for part in parts if part.pytest_rc != 5), default=5),
        output="".join(part.output for part in parts),
        reused={h: when for part in parts for h, when in part.reused.items()},
        warnings=warnings,
    )


def _reuse(workspace: Workspace, recorded: list[Target], components: list[str] | None):
    """The recorded hosts whose last results still hold, as results; and the round trips
    made to find out, for the child pytest to use instead of fetching again."""
    from provision import verify_memo

    memo_dir = workspace.state_dir / verify_memo.MEMO_DIR
    memos = {t.host.name: m for t in recorded if (m := verify_memo.load(memo_dir, t.host.name))}
    if not memos:
        return {}, {}
    candidates = [t for t in recorded if t.host.name in memos]
    local: dict[str, str] = {}

    def meanwhile():
        import xml.etree.ElementTree  # noqa: F401  (needed below either way)

        local.update((t.host.name, verify_memo.local_key(t, components)) for t in candidates)

    fetched = verify_memo.fetch(workspace, candidates, workspace.state_dir / PREFETCH_DIR, meanwhile)
    reused = {}
    for t in candidates:
        name, answers = t.host.name, fetched.get(t.host.name)
        memo = memos[name]
        if answers and memo["key"] == verify_memo.key(local[name], answers.digest):
            checks = [CheckResult(**c) for c in memo["checks"]]
            reused[name] = VerifyResult(
                checks=checks,
                junit_xml=verify_memo.suite(name, memo["testcases"], memo.get("evaluated", "")),
                pytest_rc=1 if any(c.outcome in ("failed", "error") for c in checks) else 0,
                reused={name: memo.get("evaluated", "")},
            )
    return reused, {n: f for n, f in fetched.items() if n not in reused}


def _remember(workspace: Workspace, group: list[Target], components: list[str] | None,
              result: VerifyResult, probes: dict) -> None:
    """Keep the results of each host whose checks were all answered by its round trip."""
    from provision import verify_memo

    memo_dir = workspace.state_dir / verify_memo.MEMO_DIR
    checks = [c.__dict__ for c in result.checks]
    cases = verify_memo.testcases_by_host(result.junit_xml, checks)
    for t in group:
        name = t.host.name
        mine = [c for c in checks if c.get("host") == name]
        probe = probes.get(name) or {}
        whole = bool(mine) and len(cases.get(name, [])) == len(mine)
        if result.pytest_rc in (0, 1) and probe.get("pure") and probe.get("digest") and whole:
            memo_key = verify_memo.key(verify_memo.local_key(t, components), probe["digest"])
            verify_memo.save(memo_dir, name, memo_key, mine, cases[name])
        else:
            verify_memo.forget(memo_dir, name)


def _check_group(
    workspace: Workspace, group: list[Target], components: list[str] | None,
    fetched: dict | None = None,
) -> VerifyResult:
    with tempfile.TemporaryDirectory(prefix="rigforge-verify-") as tmp:
        report, junit = Path(tmp) / "report.json", Path(tmp) / "junit.xml"
        probes = Path(tmp) / "probes.json"
        (Path(tmp) / "pytest.ini").write_text("[pytest]\n")
        command = pytest_command(workspace, group, components, report, junit)
        command.append(f"--rigforge-vars={_write_vars(Path(tmp), group)}")
        command.append(f"--rigforge-probes={probes}")
        given = {t.host.name: fetched[t.host.name].to_json()
                 for t in group if fetched and t.host.name in fetched}
        if given:
            command.append(f"--rigforge-answers={_write_private(Path(tmp) / 'answers.json', given)}")
        proc = subprocess.run(
            command,
            cwd=workspace.root,
            capture_output=True,
            text=True,
            # Only the two plugins the checks need: scanning every installed package for
            # pytest plugins is a measurable part of a converged verify.
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
            # testinfra's ssh commands multiplex over a ControlMaster, which would leave a
            # shared stdin (the user's terminal) non-blocking.
            stdin=subprocess.DEVNULL,
            check=False,
        )
        checks = (
            [CheckResult(**c) for c in json.loads(report.read_text())] if report.exists() else []
        )
        result = VerifyResult(
            checks=checks,
            junit_xml=junit.read_text() if junit.exists() else "",
            pytest_rc=proc.returncode,
            output=proc.stdout + proc.stderr,
        )
        _remember(workspace, group, components, result,
                  json.loads(probes.read_text()) if probes.exists() else {})
        return result


def _write_vars(directory: Path, targets: list[Target]) -> Path:
    """The hosts' resolved variables for the child pytest, passwords and secrets left out
    (the checks never need them, and this file must not hold them even briefly)."""
    from provision.verify_vars import public

    return _write_private(directory / "vars.json", {t.host.name: public(t.vars) for t in targets})


def _write_private(path: Path, data) -> Path:
    """A new file readable by its owner only from the start (it may hold what hosts said)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, default=str)
    return path


def _merge_junit(documents: list[str]) -> str:
    """One ``<testsuites>`` holding every host's suites (names made unique per host)."""
    import xml.etree.ElementTree as ET

    root = ET.Element("testsuites")
    for text in documents:
        if text:
            root.extend(ET.fromstring(text).iter("testsuite"))
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n" if len(root) else ""
