"""provision.sandbox.hoststore: host directories, their records, and what a caller sees."""

import pytest

from provision.errors import SandboxError, SandboxSetupError
from provision.sandbox import hoststore
from provision.sandbox.host import HostState
from provision.sandbox.hoststore import HostStore


@pytest.fixture
def store(tmp_path):
    return HostStore(tmp_path / "hosts", tmp_path / "id_ed25519")


def _state(name="rig1", **kw):
    return HostState(name, "10.213.0.11", "rfs11", f"rigforge-{name}", "/img/bookworm-0/rootfs", **kw)


def test_creating_a_host_makes_its_private_directories_and_then_its_record(store):
    state = _state(release="trixie")
    store.create(state)
    hdir = store.host_dir("rig1")
    assert sorted(p.name for p in hdir.iterdir()) == ["docker", "merged", "state.json", "upper", "work"]
    assert hdir.stat().st_mode & 0o777 == 0o700
    assert store.state_path("rig1") == hdir / "state.json"
    assert store.load("rig1") == state
    store.create(state)  # a retry over what a crashed run left is fine


def test_a_missing_host_and_a_lost_record_are_told_apart(store):
    with pytest.raises(SandboxSetupError, match="no sandbox host named rig1") as err:
        store.load("rig1")
    assert err.value.hint == "create it: rigforge sandbox up rig1"
    store.host_dir("rig1").mkdir(parents=True)
    assert store.load_partial("rig1") is None
    with pytest.raises(SandboxError, match="missing or unreadable") as err:
        store.load("rig1")
    assert not isinstance(err.value, SandboxSetupError)
    assert err.value.hint == "remove what is left of it: rigforge sandbox down rig1"


@pytest.mark.parametrize("text", ["{not json", '{"name": "rig1"}', "", "[]", '"rig1"'])
def test_an_unreadable_record_is_a_lost_one(store, text):
    store.host_dir("rig1").mkdir(parents=True)
    store.state_path("rig1").write_text(text)
    assert store.load_partial("rig1") is None


def test_states_are_every_host_directory_by_name(store):
    assert store.states() == {}
    store.create(_state("rig2"))
    store.host_dir("lost").mkdir()
    (store.dir / "stray-file").write_text("")
    states = store.states()
    assert list(states) == ["lost", "rig2"]
    assert states["lost"] is None and states["rig2"].name == "rig2"


def test_a_taken_name_is_refused_with_what_to_do_about_it(store, monkeypatch):
    store.create(_state(nspawn_pid=4242))
    monkeypatch.setattr(hoststore, "nspawn_alive", lambda pid, name: False)
    halted = store.exists_error("rig1")
    assert "already exists but is not running" in halted.message
    assert "rigforge sandbox boot rig1" in halted.hint and "rigforge sandbox down rig1" in halted.hint
    monkeypatch.setattr(hoststore, "nspawn_alive", lambda pid, name: pid == 4242 and name == "rig1")
    running = store.exists_error("rig1")
    assert running.message == "sandbox host rig1 already exists and is running at 10.213.0.11"
    assert running.hint == "remove it first: rigforge sandbox down rig1"


def test_a_halted_host_shows_the_keys_its_first_boot_left_in_the_upper_layer(store):
    state = _state(release="trixie", nspawn_pid=None)
    store.create(state)
    ssh = store.host_dir("rig1") / "upper" / "etc" / "ssh"
    ssh.mkdir(parents=True)
    (ssh / "ssh_host_ed25519_key.pub").write_text("ssh-ed25519 AAAAC3 root@rig1\n")
    host = store.host(state)
    assert (host.name, host.address, host.user, host.release) == ("rig1", "10.213.0.11", "rig", "trixie")
    assert host.host_keys == ("ssh-ed25519 AAAAC3",)
    assert host.key_path == store.key_path
    assert not host.running and host.leader_pid is None


def test_a_host_without_a_record_is_listed_by_name_only(store):
    lost = store.lost_host("lost")
    assert (lost.name, lost.address, lost.release, lost.running) == ("lost", "", "", False)
    assert lost.host_keys == () and lost.key_path == store.key_path


def test_the_root_is_mounted_as_an_overlay_of_the_image_and_the_hosts_own_layers(store, monkeypatch):
    state = _state()
    store.create(state)
    calls = []
    monkeypatch.setattr(hoststore, "is_mounted", lambda path: False)
    monkeypatch.setattr(hoststore, "run", lambda argv, **kw: calls.append(argv))
    merged = store.mount_root(state)
    hdir = store.host_dir("rig1")
    assert merged == hdir / "merged"
    layers = f"lowerdir=/img/bookworm-0/rootfs,upperdir={hdir}/upper,workdir={hdir}/work"
    assert calls == [["mount", "-t", "overlay", "overlay", "-o", layers, str(merged)]]
    monkeypatch.setattr(hoststore, "is_mounted", lambda path: True)
    assert store.mount_root(state) == merged and len(calls) == 1  # mounted already: kept
