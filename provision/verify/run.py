"""``rigforge verify``: run the testinfra checks under plain pytest and collect the results.

The checks run in a child ``python -m pytest`` exactly as a user would run them by hand,
so "works under rigforge" and "works under pytest" cannot drift apart.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from provision.secrets import public
from provision.targets import Target
from provision.verify import junit, memo
from provision.verify.results import CheckResult, VerifyResult
from provision.verify.spec import PREFETCH_DIR, check_modules, host_spec, scoped
from provision.workspace import Workspace

#: Hosts checked at once: each gets its own pytest process (and SSH connection).
PARALLEL_HOSTS = 8


def pytest_command(
    workspace: Workspace,
    targets: list[Target],
    components: list[str] | None,
    report: Path,
    junit_file: Path,
    tiers: list[str] | None = None,
) -> list[str]:
    command = [
        sys.executable, "-m", "pytest", *check_modules(targets, tiers),
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
        f"--rigforge-prefetch={scoped(workspace.state_dir, PREFETCH_DIR, components, tiers)}",
        f"--junitxml={junit_file}",
        "-o", "junit_family=xunit2",
        "-o", "junit_suite_name=rigforge-verify"
        + (f"-{targets[0].host.name}" if len(targets) == 1 else ""),
    ]
    if components:
        command.append(f"--rigforge-components={','.join(components)}")
    if tiers:
        command.append(f"--rigforge-tiers={','.join(tiers)}")
    return command


def run_checks(
    workspace: Workspace, targets: list[Target], components: list[str] | None,
    reuse: bool = True, tiers: list[str] | None = None,
) -> VerifyResult:
    """Check every host, in parallel, and merge the results.

    The hosts whose commands were recorded by an earlier verify share ONE pytest process:
    their round trips are made at once before the first check (see
    provision/checks/prefetch.py), and the checks then cost CPU, not connections, so one
    process start-up serves the whole fleet. Each host without a record gets a process of its
    own, because its checks' commands all go over the wire one by one.

    Before that, with ``reuse``, a recorded host whose answers and local inputs are exactly
    those of its last fully-prefetched verify gets that verify's results back without pytest
    (provision/verify/memo.py); its round trip is handed on to pytest when it is not reused.
    """
    from concurrent.futures import ThreadPoolExecutor

    from provision.checks import prefetch
    from provision.hosts import write_ssh_config

    write_ssh_config(workspace)
    directory = scoped(workspace.state_dir, PREFETCH_DIR, components, tiers)
    recorded, groups = [], []
    for t in targets:
        if prefetch.record_path(directory, t.host.name).is_file():
            recorded.append(t)
        else:
            groups.append([t])
    reused, fetched = memo.reuse(workspace, recorded, components, tiers) if reuse else ({}, {})
    recorded = [t for t in recorded if t.host.name not in reused]
    if recorded:
        groups.insert(0, recorded)
    with ThreadPoolExecutor(max_workers=min(PARALLEL_HOSTS, max(1, len(groups)))) as pool:
        parts = list(pool.map(
            lambda group: _check_group(workspace, group, components, fetched, tiers), groups))
    return _merged([*reused.values(), *parts])


def _merged(parts: list[VerifyResult]) -> VerifyResult:
    checks = [c for part in parts for c in part.checks]
    warnings: dict[str, list[str]] = {}
    for c in checks:
        if c.warning and c.warning not in warnings.get(c.host, []):
            warnings.setdefault(c.host, []).append(c.warning)
    return VerifyResult(
        checks=checks,
        junit_xml=junit.merge([part.junit_xml for part in parts]),
        pytest_rc=max((part.pytest_rc for part in parts if part.pytest_rc != 5), default=5),
        output="".join(part.output for part in parts),
        reused={h: when for part in parts for h, when in part.reused.items()},
        warnings=warnings,
    )


def _check_group(
    workspace: Workspace, group: list[Target], components: list[str] | None,
    fetched: dict | None = None, tiers: list[str] | None = None,
) -> VerifyResult:
    with tempfile.TemporaryDirectory(prefix="rigforge-verify-") as tmp:
        report, junit_file = Path(tmp) / "report.json", Path(tmp) / "junit.xml"
        probes = Path(tmp) / "probes.json"
        (Path(tmp) / "pytest.ini").write_text("[pytest]\n")
        command = pytest_command(workspace, group, components, report, junit_file, tiers)
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
            junit_xml=_tier_properties(junit_file.read_text(), checks) if junit_file.exists() else "",
            pytest_rc=proc.returncode,
            output=proc.stdout + proc.stderr,
        )
        memo.remember(workspace, group, components, result,
                      json.loads(probes.read_text()) if probes.exists() else {}, tiers)
        return result


def _tier_properties(junit_xml: str, checks: list[CheckResult]) -> str:
    """Each testcase with its tier (``rigforge.tier``), matched through the checks' node ids."""
    tiers = {memo.case_id(c.nodeid): c.tier for c in checks if c.nodeid}
    return junit.with_property(junit_xml, "rigforge.tier",
                               lambda classname, name: tiers.get((classname.split(".")[-1], name)))


def _write_vars(directory: Path, targets: list[Target]) -> Path:
    """The hosts' resolved variables for the child pytest, passwords and secrets left out
    (the checks never need them, and this file must not hold them even briefly)."""
    return _write_private(directory / "vars.json", {t.host.name: public(t.vars) for t in targets})


def _write_private(path: Path, data) -> Path:
    """A new file readable by its owner only from the start (it may hold what hosts said)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, default=str)
    return path
