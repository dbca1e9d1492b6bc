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
