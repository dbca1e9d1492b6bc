"""The CLI through click's CliRunner: no hosts, but real files and a real SSH key exchange."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from provision.cli import main
from provision.sandbox import SandboxHost
from provision.sandbox.image import RELEASES
from tests.conftest import snapshot


def test_help_teaches_exit_codes_and_quick_start():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "Exit codes" in result.output and "2  bad input" in result.output
    assert "rigforge sandbox up rig1" in result.output


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and "rigforge, version" in result.output


def test_init_then_refuse_then_force(tmp_path):
    runner = CliRunner()
    target = tmp_path / "demo"
    assert runner.invoke(main, ["init", str(target)]).exit_code == 0
    before = snapshot(target)
    again = runner.invoke(main, ["init", str(target)])
    assert again.exit_code == 2 and "--force" in again.output
    assert snapshot(target) == before
    assert runner.invoke(main, ["init", str(target), "--force"]).exit_code == 0


def test_init_refuses_a_rigforge_source_that_can_move_or_has_no_workflow_with_exit_2(tmp_path):
    runner = CliRunner()
    target = tmp_path / "demo"
    moving = runner.invoke(main, ["init", str(target), "--ci", "github",
                                  "--rigforge-source", "git+https://example.org/rigforge.git@main"])
    assert moving.exit_code == 2 and "not a full commit" in moving.output and "git rev-parse" in moving.output
    alone = runner.invoke(main, ["init", str(target), "--rigforge-source", "wheel"])
    assert alone.exit_code == 2 and "--ci github" in alone.output
    assert not target.exists()


def test_host_add_records_key_and_inventory(cli, workspace, ssh_server):
    result = cli("host", "add", "rig1", "--address", "127.0.0.1", "--port", str(ssh_server.port),
                 "--user", "alice", "--group", "gpu", "--accept-host-key")
    assert result.exit_code == 0, result.output
    assert "SHA256:" in result.output
    assert f"[127.0.0.1]:{ssh_server.port} ssh-ed25519" in workspace.known_hosts.read_text()
    listed = json.loads(cli("host", "list", "--json").output)
    assert listed == [{"name": "rig1", "address": "127.0.0.1", "user": "alice",
                       "port": ssh_server.port, "key": None, "groups": ["gpu"]}]
    config = workspace.ssh_config.read_text()
    assert "Host rig1" in config and "StrictHostKeyChecking yes" in config
    assert cli("host", "remove", "rig1").exit_code == 0
    assert json.loads(cli("host", "list", "--json").output) == []
    assert "127.0.0.1" not in workspace.known_hosts.read_text()


def test_host_add_without_a_terminal_to_confirm_fails_and_writes_nothing(
    cli, workspace, ssh_server
):
    before = snapshot(workspace.root)
    result = cli("host", "add", "rig1", "--address", "127.0.0.1", "--port", str(ssh_server.port))
    assert result.exit_code == 2
    assert "--accept-host-key" in result.output
    assert snapshot(workspace.root) == before


def test_unreachable_host_exits_1_and_writes_nothing(cli, workspace):
    before = snapshot(workspace.root)
    result = cli("host", "add", "rig1", "--address", "127.0.0.1", "--port", "1",
                 "--accept-host-key")
    assert result.exit_code == 1 and "cannot reach" in result.output
    assert snapshot(workspace.root) == before


def _add(cli, server, name="rig1"):
    result = cli("host", "add", name, "--address", "127.0.0.1", "--port", str(server.port),
                 "--accept-host-key")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["host", "add", "1bad", "--address", "10.0.0.5"], "invalid host name"),
        (["host", "add", "rig2", "--address", "10.0.0.999"], "invalid address"),
        (["host", "add", "rig2", "--address", "10.0.0.5", "--port", "70000"], "invalid port"),
        (["host", "add", "rig1", "--address", "10.0.0.5"], "already in"),
        (["host", "add", "rig2", "--address", "10.0.0.5", "--group", "all"], "invalid group"),
        (["host", "add", "rig2", "--address", "10.0.0.5", "--key", "/nope"], "does not exist"),
        (["host", "remove", "ghost"], "no host 'ghost'"),
        (["provision", "--yes", "--components", "base,gpu"], "unknown component 'gpu'"),
        (["plan", "--components", " , "], "--components is empty"),
        (["verify", "--components", "nope"], "unknown component"),
        (["provision", "--yes", "--limit", "ghost"], "matches no host"),
        (["provision"], "needs confirmation"),
        (["verify", "--format", "xml"], "Invalid value"),
    ],
)
def test_bad_input_exits_2_and_changes_nothing(cli, workspace, ssh_server, args, needle):
    _add(cli, ssh_server)
    before = snapshot(workspace.root)
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert needle in result.output
    assert snapshot(workspace.root) == before


def test_bad_component_in_inventory_vars_is_bad_input(cli, workspace, ssh_server):
    _add(cli, ssh_server)
    all_vars = workspace.root / "inventory/group_vars/all.yml"
    all_vars.write_text("rigforge_components: [base, cuda12]\n")
    before = snapshot(workspace.root)
    result = cli("provision", "--yes")
    assert result.exit_code == 2
    assert "unknown component 'cuda12' in rigforge_components of host 'rig1'" in result.output
    assert snapshot(workspace.root) == before


def test_no_workspace_exits_2(tmp_path):
    result = CliRunner().invoke(main, ["--workspace", str(tmp_path), "host", "list"])
    assert result.exit_code == 2
    assert "no rigforge workspace" in result.output and "rigforge init" in result.output


def test_corrupt_hosts_yml_exits_2_and_is_left_alone(cli, workspace):
    workspace.inventory.write_text("all:\n  hosts:\n    rig1: [\n")
    before = snapshot(workspace.root)
    for args in (["host", "list"], ["host", "add", "rig2", "--address", "10.0.0.5"],
                 ["provision", "--yes"], ["verify"]):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "not valid YAML at line 4" in result.output
    assert snapshot(workspace.root) == before


def test_empty_inventory_tells_how_to_add_hosts(cli):
    result = cli("provision", "--yes")
    assert result.exit_code == 2 and "sandbox up" in result.output


def test_workspace_older_than_a_component_says_to_refresh(cli, workspace, ssh_server):
    _add(cli, ssh_server)
    (workspace.root / "playbooks" / "base.yml").unlink()
    before = snapshot(workspace.root)
    result = cli("plan")
    assert result.exit_code == 2
    assert "no playbook for base" in result.output and "init --force" in result.output
    assert snapshot(workspace.root) == before


def test_resolver_refusal_uses_recorded_facts_and_changes_nothing(cli, workspace, ssh_server):
    """The host cannot be probed (nothing listens on its port), so the facts that
    `rigforge probe` recorded are used: a GTX 1080 cannot run open kernel modules."""
    from provision.inventory import Inventory

    _add(cli, ssh_server)
    inventory = Inventory(workspace.inventory)
    inventory.set_host_var("rig1", "rigforge_facts", {
        "os": {"id": "ubuntu", "version": "24.04"}, "arch": "x86_64",
        "gpus": [{"slot": "01:00.0", "device_id": "1b80", "class": "0300",
                  "name": "GeForce GTX 1080", "architecture": "Pascal"}],
        "secure_boot": {"state": "disabled"},
    })
    inventory.set_host_var("rig1", "rigforge_components", ["base", "nvidia_driver"])
    inventory.set_host_var("rig1", "nvidia_driver_flavor", "open")
    inventory.set_host_var("rig1", "ansible_port", 1)
    inventory.save()
    before = snapshot(workspace.root)
    for command in (["plan"], ["provision", "--yes"]):
        result = cli(*command)
        assert result.exit_code == 2, result.output
        assert "rig1:" in result.output and "open" in result.output and "Pascal" in result.output
    assert snapshot(workspace.root) == before


# --- sandbox commands (the backend is a stand-in) -----------------------------------------


class _FakeBackend:
    def __init__(self, hosts=()):
        self.calls: list[tuple] = []
        self.hosts = list(hosts)

    def preflight(self):
        self.calls.append(("preflight",))

    def up(self, name, progress=None, release="bookworm"):
        self.calls.append(("up", name, release))
        return SandboxHost(name, "10.213.0.11", 22, "rig", Path("/k"), (), True, 9, release)

    def list(self):
        return self.hosts


def test_cli_refuses_an_unknown_release_with_exit_2_and_creates_nothing(
    cli, workspace, monkeypatch, tmp_path
):
    monkeypatch.setenv("RIGFORGE_SANDBOX_DIR", str(tmp_path / "sandbox"))
    backend = _FakeBackend()
    monkeypatch.setattr("provision.sandbox.get_backend", lambda name=None, image=None: backend)
    before = snapshot(workspace.root)
    result = cli("sandbox", "up", "rig1", "--release", "sid")
    assert result.exit_code == 2, result.output
    assert "'sid' is not one of 'bookworm', 'trixie'" in result.output
    assert backend.calls == []
    assert snapshot(workspace.root) == before
    assert not (tmp_path / "sandbox").exists()


def test_cli_release_choices_are_the_library_ones():
    from provision.cli import sandbox_up

    (option,) = [p for p in sandbox_up.params if p.name == "release"]
    assert list(option.type.choices) == list(RELEASES)
    assert option.default == "bookworm"
    result = CliRunner().invoke(sandbox_up, ["--help"])
    assert "--release [bookworm|trixie]" in result.output


@pytest.mark.parametrize(("args", "release"), [((), "bookworm"), (("--release", "trixie"), "trixie")])
def test_cli_up_passes_the_release_to_the_backend(cli, monkeypatch, args, release):
    backend = _FakeBackend()
    monkeypatch.setattr("provision.sandbox.get_backend", lambda name=None, image=None: backend)
    result = cli("sandbox", "up", "rig1", *args)
    assert result.exit_code == 0, result.output
    assert backend.calls == [("preflight",), ("up", "rig1", release)]
    assert f"({release})" in result.output


def test_cli_list_shows_the_release(monkeypatch):
    hosts = [
        SandboxHost("rig1", "10.213.0.11", 22, "rig", Path("/k"), (), True, 9),
        SandboxHost("rig2", "10.213.0.12", 22, "rig", Path("/k"), (), False, None, "trixie"),
    ]
    monkeypatch.setattr("provision.sandbox.get_backend", lambda name=None: _FakeBackend(hosts))

    listed = json.loads(CliRunner().invoke(main, ["sandbox", "list", "--json"]).output)
    assert [(h["name"], h["release"]) for h in listed] == [("rig1", "bookworm"), ("rig2", "trixie")]
    text = CliRunner().invoke(main, ["sandbox", "list"]).output.splitlines()
    assert text[1].split() == ["rig2", "10.213.0.12", "trixie", "stopped"]
