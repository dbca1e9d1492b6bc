"""The registry is the one place a component is declared: a ninth component registered there,
with its role and its check module, gets its playbook, its place in site.yml and the stacks,
its CLI help, its documented variables, its converged digest and its checks, and nothing else
is edited."""

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from provision import assets, components, converged, registry, workspace
from provision.targets import Target

ROOT = Path(__file__).resolve().parents[2]

ROLE_FILES = {
    "meta/main.yml": """---
galaxy_info:
  role_name: jupyter
  author: rigforge
  description: JupyterLab for the rig's users.
  license: MIT
  min_ansible_version: "2.16"
  platforms:
    - name: Debian
      versions: [bookworm]
dependencies: []
""",
    "meta/argument_specs.yml": """---
argument_specs:
  main:
    short_description: Run JupyterLab as a service.
    description:
      - Installs JupyterLab into its own virtualenv and listens on loopback only.
    options:
      jupyter_port:
        type: int
        default: 8888
        description: The port JupyterLab listens on, on 127.0.0.1.
""",
    "defaults/main.yml": "---\njupyter_port: 8888\n",
    "tasks/main.yml": "---\n- name: Say hello.\n  ansible.builtin.debug:\n    msg: jupyter\n",
    "tasks/state.yml": "---\n- name: Record nothing.\n  ansible.builtin.debug:\n    msg: state\n",
}


@pytest.fixture
def ninth(tmp_path, monkeypatch):
    """A copy of the shipped data with a `jupyter` role and check module, and the registry
    entry: exactly what adding a component takes."""
    data = tmp_path / "data"
    for name in ("roles", "playbooks", "templates"):
        shutil.copytree(ROOT / name, data / name)
    for rel, text in ROLE_FILES.items():
        (data / "roles" / "jupyter" / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / "roles" / "jupyter" / rel).write_text(text)
    checks = tmp_path / "checks"
    shutil.copytree(assets.checks_dir(), checks)
    (checks / "test_jupyter.py").write_text(
        'import pytest\n\npytestmark = pytest.mark.component("jupyter")\n\n\n'
        'def test_jupyter_listens(host):\n    assert host.socket("tcp://127.0.0.1:8888").is_listening\n')
    monkeypatch.setattr(assets, "data_root", lambda: data)
    monkeypatch.setattr(assets, "checks_dir", lambda: checks)
    monkeypatch.setattr(registry, "REGISTRY",
                        (*registry.REGISTRY, registry.Component("jupyter", "JupyterLab.")))
    from provision import render

    render._environment.cache_clear()
    yield workspace.init(tmp_path / "ws")[0]
    render._environment.cache_clear()


def test_a_ninth_component_gets_its_playbook_and_its_place_in_site_yml(ninth):
    (play,) = yaml.safe_load((ninth.root / "playbooks" / "jupyter.yml").read_text())
    assert play["name"] == "JupyterLab."
    assert play["roles"] == [{"role": "jupyter", "tags": ["jupyter"],
                              "when": "'jupyter' in gpu_stack_selected_components"}]
    assert play["tasks"][-1]["ansible.builtin.import_role"] == {"name": "jupyter", "tasks_from": "state.yml"}
    site = yaml.safe_load((ninth.root / "site.yml").read_text())
    assert site[-1] == {"name": "Import the jupyter component.",
                        "ansible.builtin.import_playbook": "playbooks/jupyter.yml"}


def test_a_ninth_component_is_in_the_stacks_the_choices_and_the_help(ninth):
    assert registry.cpu_stack()[-1] == "jupyter" and registry.gpu_stack()[-1] == "jupyter"
    assert components.parse_list("base,jupyter") == ["base", "jupyter"]
    from provision.cli import main

    result = CliRunner().invoke(main, ["provision", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "conda, ollama, jupyter." in result.output


def test_a_ninth_component_has_its_variables_documented(ninth):
    text = (ninth.root / "inventory" / "group_vars" / "all.yml").read_text()
    assert "# --- Run JupyterLab as a service (role `jupyter`)" in text
    assert "# The port JupyterLab listens on, on 127.0.0.1.\n# jupyter_port: 8888\n" in text
    assert "ollama, jupyter." in text.split("rigforge_components:")[0]  # the list of components


def test_a_ninth_component_has_a_converged_digest_of_its_role(ninth):
    before = converged.desired_digests(ninth, ["jupyter"], {})
    (ninth.root / "roles" / "jupyter" / "tasks" / "main.yml").write_text("---\n[]\n")
    after = converged.desired_digests(ninth, ["jupyter"], {})
    assert set(before) == {"jupyter"} and before != after


def test_a_ninth_component_is_verified_by_its_check_module(ninth):
    from provision.inventory import Host
    from provision.verify import check_modules

    target = Target(Host("rig1", "10.0.0.2"), ["base", "jupyter"], {})
    assert [Path(m).name for m in check_modules([target])] == ["test_base.py", "test_jupyter.py"]
