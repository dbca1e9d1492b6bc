"""The install step of the workflow `rigforge init --ci github` writes, run here as the runner runs
it: the step's exact `run:` line, with bash, in the workspace, in a brand-new virtualenv (its bin
first on PATH, as actions/setup-python's is). Once for each source: the wheel the workspace
carries, and a git commit (a commit of this working tree, uncommitted files included, built by
pip with hatchling). The dependencies come from the package index, or pip's cache.

Not run here: GitHub itself, Podman pulls, the `rigforge ci` step (test_sandbox_podman.py and
test_ci_command.py run that on this machine)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from provision import __version__, selfwheel
from tests.integration.conftest import rigforge

pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.skipif(not shutil.which("git"), reason="git is not installed")]

ROOT = Path(__file__).resolve().parents[2]
STEP = "Install rigforge"


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """One virtualenv for the module: the dependencies are installed once, rigforge per test.
    Its pip is brought up to date, as actions/setup-python's is: the pip that Python 3.11's venv
    bundles (23.2) refuses `rigforge @ git+file:///...` (an old packaging wants a URL host)."""
    path = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, capture_output=True)
    subprocess.run([path / "bin/python", "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True,
                   capture_output=True, timeout=300)
    return path


def _env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "RIGFORGE_WORKSPACE")}
    return env | {"PATH": f"{venv / 'bin'}{os.pathsep}{env['PATH']}", "VIRTUAL_ENV": str(venv)}


def _run(args, venv: Path, cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=cwd, env=_env(venv), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{args} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _install_line(workspace: Path) -> str:
    flow = yaml.safe_load((workspace / ".github/workflows/rigforge.yml").read_text())
    (step,) = [s for s in flow["jobs"]["provision"]["steps"] if s.get("name") == STEP]
    return step["run"]


def _installed_from(venv: Path) -> dict:
    (record,) = venv.glob("lib/python*/site-packages/rigforge-*.dist-info/direct_url.json")
    return json.loads(record.read_text())


def _install_and_use(workspace: Path, venv: Path, tmp_path: Path) -> Path:
    """Run the step in a venv without rigforge; prove that rigforge runs from the venv."""
    subprocess.run([venv / "bin/python", "-m", "pip", "uninstall", "-y", "-q", "rigforge"],
                   capture_output=True, env=_env(venv))
    _run(["bash", "-c", _install_line(workspace)], venv, workspace, timeout=600)
    version = _run(["rigforge", "--version"], venv, tmp_path)
    assert version.stdout.strip() == f"rigforge, version {__version__}"
    where = _run(["python", "-c", "import provision.assets as a; print(a.data_root())"], venv, tmp_path)
    assert where.stdout.strip().startswith(str(venv)), "the venv's rigforge, with its own roles"
    fresh = tmp_path / "from-venv"
    _run(["rigforge", "init", str(fresh), "--ci", "github"], venv, tmp_path)
    assert (fresh / "roles/base/tasks/main.yml").is_file() and (fresh / "playbooks/base.yml").is_file()
    return fresh


def test_the_wheel_the_workspace_carries_installs_a_working_rigforge(venv, tmp_path):
    workspace = tmp_path / "ws"
    rigforge(workspace, "init", str(workspace), "--ci", "github")
    wheel = workspace / "ci" / selfwheel.filename()
    assert _install_line(workspace) == f"python -m pip install ./ci/{wheel.name}"
    fresh = _install_and_use(workspace, venv, tmp_path)
    assert _installed_from(venv)["url"] == wheel.as_uri()
    assert (fresh / "ci" / wheel.name).read_bytes() == wheel.read_bytes(), \
        "the rigforge installed from the wheel writes the same wheel"


def _commit_of_this_tree(dest: Path) -> str:
    """A git repository holding this working tree (tracked and untracked, not ignored) in one commit."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    git = ["git", "-c", "user.name=rigforge tests", "-c", "user.email=tests@rigforge.invalid",
           "-c", "commit.gpgsign=false"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "this working tree"]):
        subprocess.run([*git, *args], cwd=dest, check=True, capture_output=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=dest, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_a_git_commit_installs_a_working_rigforge(venv, tmp_path):
    source = tmp_path / "rigforge.git"
    commit = _commit_of_this_tree(source)
    spec = f"git+{source.as_uri()}@{commit}"
    workspace = tmp_path / "ws"
    rigforge(workspace, "init", str(workspace), "--ci", "github", "--rigforge-source", spec)
    assert _install_line(workspace) == f'python -m pip install "rigforge @ {spec}"'
    assert not list(workspace.glob("ci/*.whl"))
    _install_and_use(workspace, venv, tmp_path)
    installed = _installed_from(venv)
    assert installed["url"] == source.as_uri() and installed["vcs_info"]["commit_id"] == commit
