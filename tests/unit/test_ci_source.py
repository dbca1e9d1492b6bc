"""`rigforge init --ci github`: the workflow it writes, and the rigforge that workflow installs
(a wheel kept in the workspace, or a git commit), checked before anything is written."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

from provision import ci_source, selfwheel, workspace
from provision.errors import UsageError
from tests.conftest import snapshot

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ".github/workflows/rigforge.yml"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
GIT = f"git+https://example.org/team/rigforge.git@{COMMIT}"
WHEEL = f"ci/{selfwheel.filename()}"


def _steps(root: Path) -> dict[str, dict]:
    flow = yaml.safe_load((root / WORKFLOW).read_text())
    return {step.get("name", step.get("uses")): step for step in flow["jobs"]["provision"]["steps"]}


@pytest.mark.parametrize("spec", [
    "wheel", GIT, f"git+file:///srv/git/rigforge@{COMMIT}", f"git+ssh://git@example.org/rigforge.git@{COMMIT}",
])
def test_wheel_and_git_sources_at_a_full_commit_are_accepted(spec):
    assert ci_source.check(spec) == spec


@pytest.mark.parametrize("spec, says", [
    ("git+https://example.org/rigforge.git@main", "not a full commit"),
    ("git+https://example.org/rigforge.git@v0.1.0", "not a full commit"),
    (f"git+https://example.org/rigforge.git@{COMMIT[:12]}", "not a full commit"),
    (f"git+https://example.org/rigforge.git@{COMMIT.upper()}", "not a full commit"),
    ("git+https://example.org/rigforge.git", "neither"),
    ("rigforge==0.1.0", "neither"),
    (f"https://example.org/rigforge.git@{COMMIT}", "neither"),
    (f"git+https://example.org/x;touch${{IFS}}pwned@{COMMIT}", "neither"),
])
def test_a_source_that_can_move_or_cannot_be_installed_is_refused_with_the_fix(spec, says):
    with pytest.raises(UsageError, match=says) as err:
        ci_source.check(spec)
    assert "git rev-parse" in err.value.hint and "--rigforge-source wheel" in err.value.hint


def test_the_workflow_proves_the_stack_on_each_image_with_podman(tmp_path):
    workspace.init(tmp_path / "ws", ci="github")
    text = (tmp_path / "ws" / WORKFLOW).read_text()
    job = yaml.safe_load(text)["jobs"]["provision"]
    assert job["runs-on"] == "ubuntu-latest"
    matrix = job["strategy"]["matrix"]
    assert job["strategy"]["fail-fast"] is False
    assert matrix["image"] == ["ubuntu:22.04", "ubuntu:24.04", "ubuntu:26.04", "debian:12", "debian:13"]
    assert all(re.fullmatch(r"[a-z]+:[0-9.]+", image) for image in matrix["image"]), "short names only"
    names = {entry["image"]: entry["name"] for entry in matrix["include"]}
    assert set(names) == set(matrix["image"])
    assert len(set(names.values())) == len(names) and not any(":" in n for n in names.values())
    steps = _steps(tmp_path / "ws")
    install = "Install Podman and nftables (the sandbox fence)"
    assert list(steps) == ["actions/checkout@v4", "actions/setup-python@v5", install,
                           "Install rigforge", "Pull the image",
                           "Provision a throwaway host, check idempotence, verify", "Keep the report"]
    assert steps["actions/setup-python@v5"]["with"]["python-version"] == "3.12"
    assert steps[install]["run"] == "sudo apt-get update && sudo apt-get install -y podman nftables"
    assert steps["Pull the image"]["run"] == "sudo podman pull ${{ matrix.image }}"
    assert steps["Provision a throwaway host, check idempotence, verify"]["run"] == (
        'sudo -E env "PATH=$PATH" rigforge ci --backend podman --image ${{ matrix.image }} '
        "--junit rigforge-junit.xml")
    report = steps["Keep the report"]
    assert report["if"] == "always()" and report["uses"] == "actions/upload-artifact@v4"
    assert report["with"] == {"name": "rigforge-junit-${{ matrix.name }}", "path": "rigforge-junit.xml"}
    for absent in ("vars.", "secrets.", "rigforge==", "://", "mmdebstrap", "nspawn"):
        assert absent not in text, absent
    assert "sandbox` group" in text.replace("\n# ", " ") and "rigforge_components" in text


def test_the_workflow_passes_the_repositorys_yamllint(tmp_path):
    workspace.init(tmp_path / "ws", ci="github", rigforge_source=GIT)
    conf = YamlLintConfig(file=str(ROOT / ".yamllint"))
    problems = list(linter.run((tmp_path / "ws" / WORKFLOW).read_text(), conf, WORKFLOW))
    assert [str(p) for p in problems] == []


def test_by_default_the_workflow_installs_the_wheel_init_writes_beside_it(tmp_path):
    _, written = workspace.init(tmp_path / "ws", ci="github")
    root = tmp_path / "ws"
    assert {WORKFLOW, WHEEL, ci_source.RECORD} <= set(written)
    assert (root / WHEEL).read_bytes() == selfwheel.build()
    assert _steps(root)["Install rigforge"]["run"] == f"python -m pip install ./{WHEEL}"
    assert ci_source.recorded(root) == "wheel"
    assert WHEEL in (root / WORKFLOW).read_text().split("name: rigforge")[0], "the header names it"


def test_a_git_source_is_installed_from_that_commit_and_no_wheel_is_written(tmp_path):
    workspace.init(tmp_path / "ws", ci="github", rigforge_source=GIT)
    root = tmp_path / "ws"
    assert _steps(root)["Install rigforge"]["run"] == f'python -m pip install "rigforge @ {GIT}"'
    assert ci_source.recorded(root) == GIT
    assert not list((root / "ci").glob("*.whl"))


def test_force_keeps_the_recorded_source_and_rebuilds_the_wheel(tmp_path):
    root = tmp_path / "ws"
    workspace.init(root, ci="github")
    (root / WHEEL).write_bytes(b"stale")
    (root / "ci/rigforge-0.0.1-py3-none-any.whl").write_bytes(b"an older rigforge")
    workspace.init(root, force=True, ci="github")
    assert (root / WHEEL).read_bytes() == selfwheel.build()
    assert sorted(p.name for p in (root / "ci").iterdir()) == sorted([Path(WHEEL).name, "rigforge-source"])
    workspace.init(root, force=True, ci="github", rigforge_source=GIT)
    workspace.init(root, force=True, ci="github")
    assert ci_source.recorded(root) == GIT, "a git source stays chosen"
    assert not (root / WHEEL).exists(), "the wheel of the source given up is removed"
    workspace.init(root, force=True, ci="github", rigforge_source="wheel")
    assert (root / WHEEL).is_file() and ci_source.recorded(root) == "wheel"


def test_a_bad_source_writes_nothing(tmp_path):
    with pytest.raises(UsageError, match="not a full commit"):
        workspace.init(tmp_path / "new", ci="github", rigforge_source=GIT.replace(COMMIT, "main"))
    assert not (tmp_path / "new").exists()
    root = tmp_path / "ws"
    workspace.init(root, ci="github")
    before = snapshot(root)
    with pytest.raises(UsageError, match="neither"):
        workspace.init(root, force=True, ci="github", rigforge_source="rigforge==0.1.0")
    assert snapshot(root) == before
    (root / ci_source.RECORD).write_text("# edited by hand\ngit+https://example.org/rigforge.git@main\n")
    before = snapshot(root)
    with pytest.raises(UsageError, match=r"ci/rigforge-source: .* not a full commit"):
        workspace.init(root, force=True, ci="github")
    assert snapshot(root) == before


@pytest.mark.skipif(not shutil.which("git"), reason="git is not installed")
def test_the_generated_gitignore_keeps_the_wheel_in_git(tmp_path):
    root = tmp_path / "ws"
    workspace.init(root, ci="github")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "global-ignore").write_text("*.whl\n")
    excludes = f"core.excludesFile={root / 'global-ignore'}"
    check = subprocess.run(["git", "-c", excludes, "check-ignore", WHEEL], cwd=root, capture_output=True,
                           text=True)
    assert check.returncode == 1, check.stdout
