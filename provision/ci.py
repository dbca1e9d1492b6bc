"""``rigforge ci``: prove that the workspace's stack provisions cleanly on a throwaway host.

The stack is the workspace's own (roles, playbooks, group_vars); the host is a fresh sandbox
in group ``sandbox``, so it gets ``group_vars/all.yml`` plus the sandbox profile. The user's
inventory, known_hosts and host_vars are never touched: the run happens in a copy of the
workspace under ``.rigforge/ci/``.
"""

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from provision import fsutil
from provision.verify import VerifyResult
from provision.workspace import Workspace

#: What the copy takes from the workspace; hosts.yml, known_hosts and host_vars stay behind.
COPIED = ("ansible.cfg", "site.yml", "playbooks", "roles", "inventory/group_vars")


@dataclass
class Step:
    name: str
    ok: bool
    seconds: float
    detail: str = ""


@dataclass
class CiResult:
    host: str
    steps: list[Step] = field(default_factory=list)
    verify: VerifyResult | None = None

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.ok for s in self.steps)


def ci_workspace(source: Workspace, dest: Path) -> Workspace:
    """A copy of ``source`` with an empty inventory, for one CI run."""
    from provision.render import render

    if dest.exists():
        shutil.rmtree(dest)
    for name in COPIED:
        path = source.root / name
        if path.is_dir():
            shutil.copytree(path, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif path.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / name)
    fsutil.write_text(dest / "inventory" / "hosts.yml", render("hosts.yml.j2", {}))
    fsutil.write_text(dest / "known_hosts", "", mode=0o600)
    (dest / ".rigforge").mkdir(exist_ok=True)
    return Workspace(dest)


def run_ci(
    workspace: Workspace,
    narrowing: list[str] | None,
    keep: bool = False,
    say: Callable[[str], None] = print,
    backend: str | None = None,
    image: str | None = None,
) -> CiResult:
    """Sandbox up, provision, idempotence, verify, sandbox down (unless ``keep``)."""
    from provision import deploy, hosts
    from provision.inventory import Host
    from provision.known_hosts import HostKey
    from provision.sandbox import backends, get_backend

    chosen, why = backends.choose(backend)
    backend = get_backend(chosen, image)
    backend.preflight()
    say(f"backend: {chosen} ({why})")
    name = f"ci{os.getpid() % 100000}"
    cws = ci_workspace(workspace, workspace.state_dir / "ci" / name)
    result = CiResult(name)
    say(f"sandbox {name}: booting")
    booted = backend.up(name, progress=lambda m: say(f"  {m}"))
    try:
        hosts.register(
            cws,
            Host(name, booted.address, booted.user, booted.port, str(booted.key_path),
                 [hosts.SANDBOX_GROUP]),
            [HostKey.parse(line) for line in booted.host_keys],
        )
        # The same validation, choice of components and resolver check as `provision`.
        prepared = deploy.prepare(cws, None, ",".join(narrowing) if narrowing else None)
        chosen = prepared.targets
        say(f"components: {', '.join(chosen[0].components)} ({chosen[0].reason})")
        _steps(result, prepared, say)
    finally:
        if keep:
            say(f"kept sandbox {name} at {booted.address}; its workspace is {cws.root}")
        else:
            backend.down(name)
            shutil.rmtree(cws.root, ignore_errors=True)
    return result


def _steps(result, prepared, say) -> None:
    """provision, idempotence and verify: the steps `rigforge provision --check-idempotence`
    and `rigforge verify` run, on the throwaway host."""
    from provision.commands.converge import SECOND_RUN, RunOptions, apply
    from provision.commands.interaction import Interaction
    from provision.verify import run_checks

    ui, options = Interaction(say=say), RunOptions()

    def timed(step_name, action):
        say(f"{step_name}: running")
        started = time.monotonic()
        ok, detail = action()
        step = Step(step_name, ok, round(time.monotonic() - started, 1), detail)
        result.steps.append(step)
        say(f"{step_name}: {'ok' if ok else 'FAILED'} in {step.seconds} s {detail}".rstrip())
        return ok

    def provision():
        run = apply(prepared, ui, "provision", options, record_converged=False)
        messages = [m for h in run.hosts.values() for m in h.messages]
        return run.succeeded, "; ".join(messages)

    def idempotence():
        run = apply(prepared, ui, SECOND_RUN, options, second=True)
        changed = [t.task for t in run.changed_tasks]
        detail = ("changed on the second run: " + "; ".join(changed)) if changed else ""
        return run.succeeded and not changed, detail

    def verify():
        result.verify = run_checks(prepared.workspace, prepared.targets, prepared.narrowing)
        failed = [f"{c.check}: {c.message}" for c in result.verify.failed]
        return result.verify.succeeded, "; ".join(failed)

    for step_name, action in (("provision", provision), ("idempotence", idempotence),
                              ("verify", verify)):
        if not timed(step_name, action):
            return


def junit_xml(result: CiResult) -> str:
    """One JUnit document: a ``rigforge-ci`` suite for the steps, then verify's own suites."""
    from provision.verify import junit

    cases = [junit.testcase("rigforge.ci", step.name, step.seconds,
                            None if step.ok else step.detail or f"{step.name} failed")
             for step in result.steps]
    checks = junit.suites(result.verify.junit_xml) if result.verify else []
    return junit.document([junit.testsuite("rigforge-ci", cases), *checks])
