"""The conda role on a real sandbox host, installing the STAND-IN Miniforge installer.

The real installer comes from GitHub, which these machines cannot reach: the tests build
stand-in installers (tests/standins/miniforge.py) for two releases and serve them on the
sandbox bridge. The role and playbook are copied into the session's workspace and run with
plain ``ansible-playbook``; the conda variables go into ``inventory/host_vars/<host>/`` so
that the checks see them too. The tests share one host and run in file order: bad pins change
nothing, install, a converged run, environments, an upgrade in place, the checks.
"""

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.standins.apt_repo import RepoServer
from tests.standins.miniforge import build_installer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
CHECKS = REPO / "provision" / "checks" / "test_conda.py"
OLD, OLD_CONDA = "25.3.0-3", "25.3.0"
NEW, NEW_CONDA = "25.3.1-0", "25.3.1"
PREFIX = "/opt/conda"
CACHE = "/var/cache/rigforge"
RECAP = re.compile(
    r"^(?P<host>\S+)\s+: ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)",
    re.M,
)
TASK = re.compile(r"^TASK \[(?:conda : )?(?P<name>.+?)\] \*+$")
STATUS = re.compile(r"^(?P<status>ok|changed|skipping|fatal|failed): \[")


@dataclass
class Run:
    rc: int
    output: str
    stats: dict[str, int]
    # task name -> statuses reported for it (one per loop item)
    tasks: dict[str, list[str]] = field(default_factory=dict)

    def changed_tasks(self) -> list[str]:
        return [name for name, statuses in self.tasks.items() if "changed" in statuses]

    def status(self, task: str) -> list[str]:
        return self.tasks.get(task, [])


@dataclass
class CondaSite:
    rig: object
    server: RepoServer
    installers: dict[str, tuple[Path, str]]
    files: Path

    @property
    def name(self) -> str:
        return self.rig.name

    @property
    def workspace(self) -> Path:
        return self.rig.workspace

    def url(self, version: str) -> str:
        return self.server.url + self.installers[version][0].name

    def pin(self, version: str, **extra) -> dict:
        """Role variables that install ``version`` from the stand-in server."""
        return {
            "conda_version": version,
            "conda_installer_url": self.url(version),
            "conda_installer_sha256": self.installers[version][1],
            "conda_users": ["rig"],
            **extra,
        }

    def set_vars(self, variables: dict) -> None:
        host_vars = self.workspace / "inventory" / "host_vars" / self.name
        host_vars.mkdir(parents=True, exist_ok=True)
        (host_vars / "conda.yml").write_text(yaml.safe_dump(variables, sort_keys=False))
        (host_vars / "components.yml").write_text(
            yaml.safe_dump({"rigforge_components": ["base", "conda"]})
        )

    def play(self, *args: str) -> Run:
        env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
               "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
        proc = subprocess.run(
            [str(VENV_BIN / "ansible-playbook"), "playbooks/conda.yml", "--limit", self.name, *args],
            cwd=self.workspace, env=env, capture_output=True, text=True, timeout=900,
        )
        return _parse(proc.returncode, proc.stdout + proc.stderr, self.name)

    def ssh(self, command: str, check: bool = True) -> str:
        return self.rig.ssh(command, check=check).stdout.strip()

    def exists(self, path: str) -> bool:
        return self.rig.ssh(f"test -e {path}", check=False).returncode == 0

    def env_file(self, name: str, dependencies: list[str]) -> Path:
        path = self.files / f"{name}.yml"
        path.write_text(yaml.safe_dump(
            {"name": name, "channels": ["conda-forge"], "dependencies": dependencies}, sort_keys=False
        ))
        return path


def _parse(rc: int, output: str, host: str) -> Run:
    tasks: dict[str, list[str]] = {}
    current = None
    for line in output.splitlines():
        if match := TASK.match(line):
            current = match["name"]
            tasks.setdefault(current, [])
        elif (match := STATUS.match(line)) and current is not None:
            # One status per loop item; a loop whose items were all skipped adds a bare
            # "skipping: [host]" line after them, which is not counted.
            statuses = tasks[current]
            if "(item=" in line or not statuses:
                statuses.append(match["status"])
    stats = {}
    for match in RECAP.finditer(output):
        if match["host"] == host:
            stats = {k: int(v) for k, v in match.groupdict().items() if k != "host"}
    return Run(rc, output, stats, tasks)


def _converged(run: Run) -> None:
    assert run.rc == 0, run.output[-3000:]
    assert run.stats["changed"] == 0 and run.stats["failed"] == 0, (
        f"changed: {run.changed_tasks()}\n{run.output[-3000:]}"
    )


@pytest.fixture(scope="module")
def site(rig, tmp_path_factory):
    """Two stand-in releases served on the bridge; the role in the workspace; cleanup after."""
    workdir = tmp_path_factory.mktemp("miniforge")
    installers = {
        OLD: build_installer(workdir / "www", OLD, OLD_CONDA),
        NEW: build_installer(workdir / "www", NEW, NEW_CONDA),
    }
    role = rig.workspace / "roles" / "conda"
    had_role = role.exists()
    shutil.copytree(REPO / "roles" / "conda", role, dirs_exist_ok=True)
    host_vars = rig.workspace / "inventory" / "host_vars" / rig.name
    files = workdir / "envs"
    files.mkdir()
    try:
        with RepoServer(workdir / "www") as server:
            yield CondaSite(rig, server, installers, files)
    finally:
        # Other test modules share this host's workspace: leave it as it was found.
        for name in ("conda.yml", "components.yml"):
            (host_vars / name).unlink(missing_ok=True)
        if not had_role:
            shutil.rmtree(role, ignore_errors=True)


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        # No checksum is pinned for this release (none given, none known to the role).
        ({"conda_version": NEW, "conda_installer_url": None, "conda_installer_sha256": None},
         "conda_installer_sha256 is not pinned for Miniforge 25.3.1-0"),
        ({"conda_installer_sha256": "abc123"}, "is not 64 hex digits"),
        ({"conda_version": "25.3"}, "is not a Miniforge release"),
        ({"conda_prefix": "opt/conda"}, "must be absolute"),
        ({"conda_users": ["rig", "nosuchuser"]}, "conda_users names users that do not exist"),
        ({"conda_environments": [{"name": "base", "file": "/nonexistent.yml"}]},
         "conda_environments is invalid"),
    ],
    ids=["unpinned-sha256", "malformed-sha256", "bad-version", "relative-prefix", "unknown-user",
         "bad-environment"],
)
def test_bad_variables_fail_in_preflight(site, overrides, needle):
    variables = {**site.pin(OLD), **overrides}
    site.set_vars({k: v for k, v in variables.items() if v is not None})
    run = site.play()
    assert run.rc != 0 and needle in run.output, run.output[-3000:]
    assert run.stats["changed"] == 0
    assert "Download the pinned Miniforge installer and verify its SHA-256." not in run.tasks
    assert not site.exists(PREFIX)


def test_wrong_sha256_fails_before_the_host_changes(site):
    site.set_vars({**site.pin(OLD), "conda_installer_sha256": site.installers[NEW][1]})
    run = site.play()
    assert run.rc != 0 and "did not match" in run.output, run.output[-3000:]
    assert run.status("Download the pinned Miniforge installer and verify its SHA-256.") == ["fatal"]
    assert not site.exists(PREFIX), "the installer ran although its checksum was wrong"
    assert not site.exists(f"{CACHE}/{site.installers[OLD][0].name}"), "the bad download was kept"
    assert site.rig.ssh("getent group conda", check=False).returncode != 0


def test_check_mode_on_a_fresh_host_changes_nothing(site):
    site.set_vars(site.pin(OLD))
    run = site.play("--check", "--diff")
    assert run.rc == 0, run.output[-3000:]
    assert run.stats["changed"] > 0, "check mode must report the install"
    assert not site.exists(PREFIX) and not site.exists(f"{CACHE}/{site.installers[OLD][0].name}")
    assert not site.exists("/etc/profile.d/conda.sh")
    assert site.rig.ssh("getent group conda", check=False).returncode != 0


def test_install(site):
    site.set_vars(site.pin(OLD))
    run = site.play()
    assert run.rc == 0, run.output[-3000:]
    assert run.status("Install Miniforge into the prefix, or upgrade the prefix in place.") == ["changed"]
    assert site.ssh(f"{PREFIX}/bin/conda --version") == f"conda {OLD_CONDA}"
    assert site.ssh(f"cat {PREFIX}/.rigforge-miniforge-version") == OLD
    history = site.ssh(f"cat {PREFIX}/conda-meta/history")
    assert f"-b -p {PREFIX}" in history and " -u " not in history
    assert site.ssh(f"stat -c '%U:%G %a' {PREFIX} {PREFIX}/envs").splitlines() == [
        "root:root 755", "root:conda 2775",
    ]
    condarc = yaml.safe_load(site.ssh(f"cat {PREFIX}/.condarc"))
    assert condarc["channels"] == ["conda-forge"] and condarc["channel_priority"] == "strict"
    # The rig user's login shell gets the conda function from /etc/profile.d/conda.sh.
    assert site.ssh("bash -lc 'type -t conda && conda --version'").splitlines() == [
        "function", f"conda {OLD_CONDA}",
    ]
    assert site.ssh(f"sha256sum {CACHE}/{site.installers[OLD][0].name}").split()[0] == site.installers[OLD][1]


def test_conda_group_members_can_create_environments(site):
    # sudo -u starts a fresh login for rig, with the group it was just added to.
    as_rig = "sudo -n -u rig --"
    site.ssh("printf 'name: mine\\ndependencies:\\n  - python\\n' > /tmp/mine.yml")
    site.ssh(f"{as_rig} {PREFIX}/bin/conda env create -f /tmp/mine.yml -n mine")
    try:
        assert site.ssh(f"stat -c '%U:%G' {PREFIX}/envs/mine") == "rig:conda"
        # Members cannot change the base installation.
        assert site.rig.ssh(f"{as_rig} touch {PREFIX}/bin/x", check=False).returncode != 0
    finally:
        site.ssh(f"{as_rig} rm -rf {PREFIX}/envs/mine /tmp/mine.yml")


def test_second_run_changes_and_downloads_nothing(site):
    installer = f"{CACHE}/{site.installers[OLD][0].name}"
    before = site.ssh(f"stat -c '%Y %i' {installer}")
    served = len(site.server.requests)
    run = site.play()
    _converged(run)
    assert run.status("Download the pinned Miniforge installer and verify its SHA-256.") == ["skipping"]
    assert run.status("Install Miniforge into the prefix, or upgrade the prefix in place.") == ["skipping"]
    assert site.server.requests[served:] == [], "a converged run downloaded something"
    assert site.ssh(f"stat -c '%Y %i' {installer}") == before
    # Check mode on the converged host agrees, and changes nothing either.
    _converged(site.play("--check", "--diff"))


def test_environment_is_created_then_updated_only_when_its_file_changes(site):
    spec = site.env_file("ml", ["python=3.12", "numpy"])
    site.set_vars(site.pin(OLD, conda_environments=[{"name": "ml", "file": str(spec)}]))
    history = f"{PREFIX}/envs/ml/conda-meta/history"

    created = site.play()
    assert created.rc == 0, created.output[-3000:]
    assert created.status("Create the environments that do not exist yet.") == ["changed"]
    assert site.ssh(f"grep -c '^==>' {history}") == "1"
    assert site.ssh(f"stat -c '%U:%G' {PREFIX}/envs/ml") == "root:conda"

    _converged(site.play())
    assert site.ssh(f"grep -c '^==>' {history}") == "1", "an unchanged spec was applied again"

    site.env_file("ml", ["python=3.12", "scipy"])
    updated = site.play()
    assert updated.rc == 0, updated.output[-3000:]
    assert updated.status("Create the environments that do not exist yet.") == ["skipping"]
    update = "Update the environments whose spec changed, removing packages no longer listed."
    assert updated.status(update) == ["changed"]
    assert site.ssh(f"grep -c '^==>' {history}") == "2"
    assert "# prune: true" in site.ssh(f"cat {history}")
    records = site.ssh(f"ls {PREFIX}/envs/ml/conda-meta")
    assert "scipy-" in records and "numpy-" not in records, records


def test_new_pin_upgrades_in_place(site):
    spec = site.files / "ml.yml"
    site.set_vars(site.pin(NEW, conda_environments=[{"name": "ml", "file": str(spec)}]))
    planned = site.play("--check", "--diff")
    assert planned.rc == 0 and planned.stats["changed"] > 0, planned.output[-3000:]
    assert site.ssh(f"{PREFIX}/bin/conda --version") == f"conda {OLD_CONDA}", "check mode upgraded"
    run = site.play()
    assert run.rc == 0, run.output[-3000:]
    assert run.status("Install Miniforge into the prefix, or upgrade the prefix in place.") == ["changed"]
    assert f"-b -u -p {PREFIX}" in site.ssh(f"tail -n 2 {PREFIX}/conda-meta/history")
    assert site.ssh(f"{PREFIX}/bin/conda --version") == f"conda {NEW_CONDA}"
    assert site.ssh(f"cat {PREFIX}/.rigforge-miniforge-version") == NEW
    assert site.exists(f"{PREFIX}/envs/ml/conda-meta/history"), "the upgrade lost an environment"
    # The installer rewrote .condarc; the role put its own back.
    assert "channel_priority: strict" in site.ssh(f"cat {PREFIX}/.condarc")
    cached = site.ssh(f"cd {CACHE} && ls Miniforge3-*").split()
    assert cached == [site.installers[NEW][0].name], "the old release's installer was kept"
    _converged(site.play())


def _checks(site) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(CHECKS), "-p", "no:cacheprovider", "-q",
         "--ssh-config=.rigforge/ssh_config", f"--hosts=ssh://{site.name}?sudo=true",
         f"--rigforge-workspace={site.workspace}"],
        cwd=site.workspace, capture_output=True, text=True, timeout=600,
    )


def test_checks_pass_then_catch_drift(site):
    proc = _checks(site)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "7 passed" in proc.stdout, proc.stdout[-2000:]

    site.ssh(f"printf 'channels:\\n  - defaults\\n' | sudo -n tee {PREFIX}/.condarc >/dev/null")
    proc = _checks(site)
    assert proc.returncode == 1 and "test_condarc_uses_conda_forge_only" in proc.stdout, proc.stdout[-3000:]

    run = site.play()
    assert run.rc == 0, run.output[-3000:]
    assert run.changed_tasks() == ["Configure conda for conda-forge only."], run.output[-3000:]
    assert _checks(site).returncode == 0


def test_profile_script_is_removed_when_switched_off(site):
    spec = site.files / "ml.yml"
    site.set_vars(site.pin(NEW, conda_profile_script=False,
                           conda_environments=[{"name": "ml", "file": str(spec)}]))
    run = site.play()
    assert run.rc == 0, run.output[-3000:]
    assert run.changed_tasks() == ["Remove the login-shell hook that rigforge wrote."], run.output[-3000:]
    assert not site.exists("/etc/profile.d/conda.sh")
    assert _checks(site).returncode == 0
