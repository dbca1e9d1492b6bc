"""provision/validate.py: bad settings are refused on the controller, every host's problems at
once, before any host is contacted (exit 2, files unchanged), with the roles' own asserts."""

import pytest

from provision import validate
from provision.errors import UsageError
from tests.conftest import snapshot

COMPONENTS = "rigforge_components: [base, docker, conda, ollama]\n"


@pytest.fixture
def rig(two_rigs):
    return two_rigs


def _host_vars(workspace, host, text):
    (workspace.root / "inventory" / "host_vars" / f"{host}.yml").write_text(COMPONENTS + text)


def _problems(workspace, host):
    from provision import targets

    (target,) = [t for t in targets.resolve(workspace, host, None) if t.host.name == host]
    return validate.host_problems(workspace, target)


def test_the_defaults_pass(rig):
    _host_vars(rig, "rig1", "")
    assert _problems(rig, "rig1") == []


@pytest.mark.parametrize(("text", "needle"), [
    ('docker_daemon_options: "log-level=warn"', "docker_daemon_options must be a mapping"),
    ("ollama_models: tinyllama", "ollama_models must be a list"),
    ("base_min_free_disk_gb: -5", 'base_min_free_disk_gb is "-5"'),
    ("ansible_port: abc", "ansible_port is 'abc': a port number from 1 to 65535"),
    ('ollama_host: "0.0.0.0:11434"', "ollama_host is 0.0.0.0:11434, which is reachable from the network"),
    ('ollama_version: "0.17.0"', "Refusing Ollama 0.17.0: versions below 0.17.1"),
    ('ollama_version: "v0.18.0"', 'ollama_version must be a release number such as 0.17.1'),
    ('rigforge_apt_proxy: "https://cache:3142"', "which is not an http://HOST:PORT URL"),
    ("conda_prefix: opt/conda", "Invalid location: conda_prefix (opt/conda)"),
    ("conda_environments: [{name: ml, file: /nonexistent/environment.yml}]",
     "files that are not absolute paths of existing files on the controller: /nonexistent/environment.yml"),
    ('conda_version: "25.3"', 'conda_version "25.3" is not a Miniforge release'),
])
def test_each_bad_setting_is_named(rig, text, needle):
    _host_vars(rig, "rig1", text + "\n")
    problems = _problems(rig, "rig1")
    assert any(needle in p for p in problems), problems


def test_the_opt_in_lets_ollama_listen_on_the_network(rig):
    _host_vars(rig, "rig1", 'ollama_host: "0.0.0.0:11434"\nollama_allow_network: true\n')
    assert _problems(rig, "rig1") == []


def test_every_host_is_reported_at_once(rig):
    from provision import targets

    _host_vars(rig, "rig1", "base_min_free_disk_gb: -5\n")
    _host_vars(rig, "rig2", "ollama_models: tinyllama\n")
    with pytest.raises(UsageError) as caught:
        validate.check(rig, targets.resolve(rig, None, None))
    text = str(caught.value)
    assert "rig1: base_min_free_disk_gb" in text and "rig2: ollama_models must be a list" in text
    assert "no host was contacted" in caught.value.hint


@pytest.mark.parametrize("verb", [["plan"], ["provision", "--yes"], ["provision", "--yes", "--full"]])
def test_the_commands_refuse_before_contacting_a_host(cli, rig, verb):
    _host_vars(rig, "rig1", 'ollama_host: "0.0.0.0:11434"\n')
    _host_vars(rig, "rig2", "conda_prefix: opt/conda\n")
    before = snapshot(rig.root)
    result = cli(*verb)
    assert result.exit_code == 2, result.output
    assert "rig1: ollama_host is 0.0.0.0:11434" in result.output
    assert "rig2: Invalid location: conda_prefix (opt/conda)" in result.output
    assert snapshot(rig.root) == before


def test_host_add_refuses_a_user_name_that_is_not_one(cli, workspace):
    before = snapshot(workspace.root)
    result = cli("host", "add", "rig1", "--address", "10.0.0.5", "--user", "root;id", "--accept-host-key")
    assert result.exit_code == 2 and "invalid user name 'root;id'" in result.output
    assert snapshot(workspace.root) == before
