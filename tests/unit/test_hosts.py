"""``.rigforge/ssh_config`` is rendered when its inputs change, and left alone otherwise."""

import pytest

from provision import hosts, render
from provision.inventory import Host, Inventory


@pytest.fixture
def with_host(workspace):
    inventory = Inventory(workspace.inventory)
    inventory.add(Host("rig1", "10.0.0.5", user="alice"))
    inventory.save()
    return workspace


def no_render(monkeypatch):
    monkeypatch.setattr(render, "render", lambda *a, **k: pytest.fail("rendered again"))


def test_an_unchanged_workspace_keeps_the_file_without_rendering(with_host, monkeypatch):
    path = hosts.write_ssh_config(with_host)
    text = path.read_text()
    assert "Host rig1" in text and "User alice" in text
    assert text.startswith("# rigforge-inputs ")
    assert path.stat().st_mode & 0o777 == 0o600
    no_render(monkeypatch)
    assert hosts.write_ssh_config(with_host).read_text() == text


def test_a_changed_host_is_rendered_again(with_host):
    hosts.write_ssh_config(with_host)
    inventory = Inventory(with_host.inventory)
    inventory.add(Host("rig2", "10.0.0.6"))
    inventory.save()
    assert "Host rig2" in hosts.write_ssh_config(with_host).read_text()


def test_a_hand_edited_file_is_rendered_again(with_host):
    path = hosts.write_ssh_config(with_host)
    rendered = path.read_text()
    path.write_text(rendered.replace("StrictHostKeyChecking yes", "StrictHostKeyChecking no"))
    assert hosts.write_ssh_config(with_host).read_text() == rendered


def test_connection_variables_in_host_vars_are_honoured_like_ansible_does(workspace):
    """host_vars override hosts.yml for Ansible; the converged check and verify (through this
    file) and probe (through hosts.connection) must reach the same port, as the same user."""
    from provision.hosts import connection, write_ssh_config
    from provision.inventory import Host, Inventory

    inventory = Inventory(workspace.inventory)
    inventory.add(Host("rig1", "10.0.0.5", user="alice"))
    inventory.add(Host("rig2", "10.0.0.6"))
    inventory.save()
    host_vars = workspace.root / "inventory" / "host_vars"
    (host_vars / "rig1").mkdir(parents=True)
    (host_vars / "rig1" / "connection.yml").write_text(
        "ansible_port: 2222\nansible_user: bob\nansible_become_password: !vault |\n  $ANSIBLE_VAULT;1.1\n")
    (host_vars / "rig2.yml").write_text('ansible_host: "{{ lookup(\'env\', \'RIG2\') }}"\n')
    text = write_ssh_config(workspace).read_text()
    rig1 = text.split("Host rig1", 1)[1].split("Host ", 1)[0]
    assert "Port 2222" in rig1 and "User bob" in rig1 and "HostName 10.0.0.5" in rig1
    rig2 = text.split("Host rig2", 1)[1].split("Host ", 1)[0]
    assert "HostName 10.0.0.6" in rig2  # a templated value is Ansible's to read
    assert connection(workspace, inventory.get("rig1")).port == 2222
