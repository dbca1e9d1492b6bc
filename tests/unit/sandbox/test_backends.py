"""provision.sandbox.backends: which backend makes sandbox hosts, and what one must provide."""

import inspect

import pytest

from provision.errors import SandboxSetupError
from provision.sandbox import Backend, SandboxManager, backends, get_backend


def test_unknown_sandbox_backend_is_bad_input(monkeypatch):
    monkeypatch.setenv("RIGFORGE_SANDBOX_BACKEND", "vmware")
    with pytest.raises(SandboxSetupError, match="unknown sandbox backend 'vmware'") as err:
        get_backend()
    assert "nspawn" in err.value.hint


def test_the_default_backend_is_nspawn(monkeypatch, tmp_path):
    monkeypatch.delenv("RIGFORGE_SANDBOX_BACKEND", raising=False)
    monkeypatch.setenv("RIGFORGE_SANDBOX_DIR", str(tmp_path))
    backend = get_backend()
    assert isinstance(backend, SandboxManager) and backend.state_dir == tmp_path
    monkeypatch.setenv("RIGFORGE_SANDBOX_BACKEND", "")
    assert isinstance(get_backend(), SandboxManager)


def test_a_named_backend_wins_over_the_environment(monkeypatch):
    made = []
    monkeypatch.setitem(backends.BACKENDS, "podman", lambda: made.append("podman") or "a podman backend")
    monkeypatch.setenv("RIGFORGE_SANDBOX_BACKEND", "vmware")
    assert get_backend("podman") == "a podman backend" and made == ["podman"]
    monkeypatch.setenv("RIGFORGE_SANDBOX_BACKEND", "podman")
    assert get_backend() == "a podman backend"
    with pytest.raises(SandboxSetupError) as err:
        get_backend("vmware")
    assert err.value.hint == "available: docker, nspawn, podman (set RIGFORGE_SANDBOX_BACKEND)"


@pytest.mark.parametrize("method", ["preflight", "up", "down", "halt", "boot", "list"])
def test_the_nspawn_backend_provides_the_protocol_with_its_signatures(method):
    wanted = inspect.signature(getattr(Backend, method))
    have = inspect.signature(getattr(SandboxManager, method))
    assert list(have.parameters) == list(wanted.parameters)
    assert [p.default for p in have.parameters.values()] == [p.default for p in wanted.parameters.values()]


@pytest.mark.parametrize(("installed", "chosen"), [
    ({"systemd-nspawn", "mmdebstrap", "podman", "docker"}, "nspawn"),
    ({"podman", "docker"}, "podman"),
    ({"systemd-nspawn", "docker"}, "docker"),  # nspawn without mmdebstrap cannot make a host
    (set(), "nspawn"),  # its preflight then says what to install
])
def test_the_default_is_the_first_installed_of_nspawn_podman_docker(monkeypatch, installed, chosen):
    monkeypatch.delenv("RIGFORGE_SANDBOX_BACKEND", raising=False)
    monkeypatch.setattr(backends, "which", lambda tool: f"/usr/bin/{tool}" if tool in installed else None)
    name, why = backends.choose()
    assert name == chosen
    assert ("first available" in why) is bool(installed)
    assert backends.choose("docker") == ("docker", "chosen with --backend")


def test_container_backends_make_hosts_with_their_engine_and_image(monkeypatch, tmp_path):
    monkeypatch.setenv("RIGFORGE_SANDBOX_DIR", str(tmp_path))
    made = get_backend("podman", "ubuntu:24.04")
    assert isinstance(made, SandboxManager) and (made.backend, made.image) == ("podman", "ubuntu:24.04")
    assert get_backend("docker").backend == "docker" and get_backend("docker").image is None


def test_an_image_for_nspawn_is_refused_as_bad_input():
    with pytest.raises(backends.UsageError, match="--image needs a container backend") as err:
        get_backend("nspawn", "ubuntu:24.04")
    assert "--backend podman" in err.value.hint
