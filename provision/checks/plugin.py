"""pytest plugin (auto-loaded through the ``pytest11`` entry point) for the rigforge checks.

Inert unless a collected test carries ``@pytest.mark.component``.
"""

import json
import os
from pathlib import Path

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("rigforge")
    group.addoption(
        "--rigforge-workspace",
        default=os.environ.get("RIGFORGE_WORKSPACE") or ".",
        help="workspace whose variables say what each host should look like (default: .)",
    )
    group.addoption(
        "--rigforge-components",
        default=os.environ.get("RIGFORGE_COMPONENTS"),
        help="only check these components (comma-separated)",
    )
    group.addoption(
        "--rigforge-tiers",
        default=os.environ.get("RIGFORGE_TIERS"),
        help="only run the checks of these tiers (comma-separated: install, health, workload; "
        "default: all)",
    )
    group.addoption("--rigforge-report", default=None, help="write per-check results as JSON")
    group.addoption(
        "--rigforge-vars",
        default=None,
        help="read each host's variables from this JSON file (written by `rigforge verify`) "
        "instead of loading the inventory through Ansible",
    )
    group.addoption(
        "--rigforge-prefetch",
        default=None,
        metavar="DIR",
        help="answer each host's commands from one round trip, replaying the commands "
        "recorded in DIR/<host>.json by the last run, and record this run's there",
    )
    group.addoption(
        "--rigforge-answers",
        default=None,
        metavar="FILE",
        help="(with --rigforge-prefetch) take these hosts' round-trip answers from FILE, "
        "fetched by `rigforge verify` in this same verify, instead of fetching them again",
    )
    group.addoption(
        "--rigforge-probes",
        default=None,
        metavar="FILE",
        help="(with --rigforge-prefetch) write per host the digest of its round-trip answers "
        "and whether they answered every command the checks ran",
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "component(name): the rigforge component a check belongs to")
    config.addinivalue_line("markers", "tier(name): install (default), health or workload")
    path = config.getoption("--rigforge-report")
    if path:
        config.pluginmanager.register(_Report(Path(path)), "rigforge-report")
    directory = config.getoption("--rigforge-prefetch")
    if directory:
        answers, probes = config.getoption("--rigforge-answers"), config.getoption("--rigforge-probes")
        config.pluginmanager.register(
            _Prefetch(Path(directory), Path(answers) if answers else None,
                      Path(probes) if probes else None),
            "rigforge-prefetch",
        )


def _testinfra_host(item):
    spec = getattr(item, "callspec", None)
    return spec.params.get("_testinfra_host") if spec else None


def _host_name(item) -> str | None:
    host = _testinfra_host(item)
    return host.backend.get_hostname() if host is not None else None


def _component(item) -> str | None:
    marker = item.get_closest_marker("component")
    return marker.args[0] if marker else None


def _tier(item) -> str:
    marker = item.get_closest_marker("tier")
    return marker.args[0] if marker else "install"


def _workspace_vars(config) -> dict[str, dict]:
    cached = getattr(config, "_rigforge_vars", None)
    if cached is None and config.getoption("--rigforge-vars"):
        # `rigforge verify` has resolved the variables already: loading Ansible's inventory
        # machinery again would cost more than the checks' own commands on a small host.
        path = Path(config.getoption("--rigforge-vars"))
        cached = config._rigforge_vars = json.loads(path.read_text())
    if cached is None:
        from provision import hostvars
        from provision.workspace import open_workspace

        workspace = open_workspace(Path(config.getoption("--rigforge-workspace")))
        cached = config._rigforge_vars = hostvars.resolve(workspace)
    return cached


def pytest_collection_modifyitems(config, items):
    """Keep each host's checks to the components that host selects."""
    if not any(_component(item) for item in items):
        return
    from provision import components
    from provision.verify import tiers

    narrowing = components.parse_list(config.getoption("--rigforge-components"))
    chosen = tiers.parse(config.getoption("--rigforge-tiers"))
    all_vars = _workspace_vars(config)
    keep, drop = [], []
    for item in items:
        name, component = _host_name(item), _component(item)
        if component and _tier(item) not in chosen:
            drop.append(item)
        elif component and name in all_vars:
            try:
                selected = components.host_components(all_vars[name], name)
            except components.NoFactsError as exc:  # auto, and never probed
                raise pytest.UsageError(str(exc)) from None
            wanted = components.effective(selected, narrowing)
            (keep if component in wanted else drop).append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture
def rig(request, host) -> dict:
    """The host's variables: role defaults overlaid with the workspace inventory."""
    name = host.backend.get_hostname()
    all_vars = _workspace_vars(request.config)
    if name not in all_vars:
        pytest.fail(f"host {name!r} is not in the workspace inventory")
    return all_vars[name]


class _Prefetch:
    """Installs :class:`provision.checks.prefetch.Prefetcher` on the collected hosts."""

    def __init__(self, directory: Path, answers: Path | None = None, probes: Path | None = None):
        from provision.checks.prefetch import Fetched, Prefetcher

        given = {}
        if answers is not None:
            given = {h: Fetched.from_json(f) for h, f in json.loads(answers.read_text()).items()}
        self.prefetcher = Prefetcher(directory, given)
        self.probes = probes

    def pytest_collection_finish(self, session):
        names = []
        for item in session.items:
            host = _testinfra_host(item)
            if host is not None:
                self.prefetcher.install(host)
                names.append(host.backend.get_hostname())
        if not session.config.option.collectonly:
            # Every host's round trip at once, before the first check, so that one process
            # checking a fleet waits for the slowest host once, not for each in turn.
            self.prefetcher.prime(names)

    def pytest_sessionfinish(self, session):
        if not session.config.option.collectonly:
            self.prefetcher.save()
            if self.probes is not None:
                from provision import fsutil

                fsutil.write_text(self.probes, json.dumps(self.prefetcher.probes()) + "\n")


class _Report:
    """Collects ``{host, component, check, outcome, message}`` per check, written at the end."""

    def __init__(self, path: Path):
        self.path = path
        self.results: list[dict] = []
        self.warnings: dict[str, list[str]] = {}

    def pytest_warning_recorded(self, warning_message, when, nodeid, location):
        from provision.checks import RigforgeWarning

        # Recorded once the test's whole protocol is over, after its report: kept by node id.
        if nodeid and issubclass(warning_message.category, RigforgeWarning):
            self.warnings.setdefault(nodeid, []).append(str(warning_message.message))

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        failed_setup = report.when == "setup" and report.outcome != "passed"
        if report.when != "call" and not failed_setup:
            return
        self.results.append(
            {
                "host": _host_name(item),
                "component": _component(item),
                "tier": _tier(item),
                "check": getattr(item, "originalname", item.name),
                "outcome": "error" if failed_setup and report.failed else report.outcome,
                "message": _message(report, call),
                "fix": _fix(call),
                "nodeid": item.nodeid,
            }
        )

    def pytest_sessionfinish(self, session):
        from provision import fsutil

        for result in self.results:
            if self.warnings.get(result["nodeid"]):
                result["warning"] = " ".join(self.warnings[result["nodeid"]])
        fsutil.write_text(self.path, json.dumps(self.results, indent=2) + "\n")


def _fix(call) -> str:
    """The fix a failing check named (:func:`provision.checks.fail`)."""
    from provision.checks import Finding

    if call.excinfo is not None and isinstance(call.excinfo.value, Finding):
        return call.excinfo.value.fix
    return ""


def _message(report, call) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    if call.excinfo is not None:
        text = str(call.excinfo.value).strip()
        return text.splitlines()[0] if text else call.excinfo.typename
    return ""


@pytest.fixture
def stack(host, rig):
    """The host's resolved stack: its variables, with "auto" resolved for this host's OS."""
    from provision import components
    from provision.facts import host_facts
    from provision.gpu import stack as resolver

    record = rig.get("rigforge_facts")
    if not record:
        info = host.system_info
        release = info.release if info.distribution == "ubuntu" else info.release.split(".")[0]
        record = {"os": {"id": info.distribution, "version": release}, "arch": info.arch}
    name = host.backend.get_hostname()
    return resolver.resolve(rig, host_facts(record), components.host_components(rig, name)).stack
