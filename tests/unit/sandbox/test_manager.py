"""provision.sandbox.manager: names, the state directory, preflight and the lifecycle's
refusals, all before anything is created (monkeypatched where root would be needed)."""

from pathlib import Path

import pytest

from provision.errors import SandboxError, SandboxSetupError
from provision.sandbox import SandboxManager, validate_name
from provision.sandbox import manager as manager_mod
from provision.sandbox.cgroups import GROUP
from provision.sandbox.host import HostState
from provision.sandbox.image import UnknownReleaseError
from provision.sandbox.mirrors import Mirrors, find_mirrors


@pytest.mark.parametrize("name", ["a", "rig1", "gpu-box-2", "a" + "b" * 19])
def test_valid_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "1rig", "Rig", "rig_1", "rig.1", "a" * 21, "rig\n", "-a"])
def test_invalid_names_are_usage_errors(name):
    with pytest.raises(SandboxSetupError, match="invalid sandbox host name"):
        validate_name(name)


def test_state_dir_comes_from_argument_then_environment_then_default(monkeypatch, tmp_path):
    monkeypatch.delenv("RIGFORGE_SANDBOX_DIR", raising=False)
    assert SandboxManager().state_dir == Path("/var/lib/rigforge/sandbox")
    monkeypatch.setenv("RIGFORGE_SANDBOX_DIR", str(tmp_path / "env"))
    assert SandboxManager().state_dir == tmp_path / "env"
    assert SandboxManager(tmp_path / "arg").key_path == tmp_path / "arg" / "id_ed25519"


def _halted_host(manager: SandboxManager, name: str, release: str) -> HostState:
    image = manager.state_dir / "images" / f"{release}-0123456789ab" / "rootfs"
    image.mkdir(parents=True)
    state = HostState(name, "10.213.0.12", "rfs12", f"rigforge-{name}", str(image), release=release)
    hdir = manager.state_dir / "hosts" / name
    hdir.mkdir(parents=True)
    state.save(hdir / "state.json")
    return state


def test_list_and_boot_use_the_recorded_release(tmp_path, monkeypatch):
    manager = SandboxManager(tmp_path)
    state = _halted_host(manager, "rig13", "trixie")
    (manager.state_dir / "hosts" / "lost").mkdir()  # a crash before its state was written
    listed = {h.name: h for h in manager.list()}
    assert listed["rig13"].release == "trixie" and not listed["rig13"].running
    assert listed["lost"].release == ""
    started = []
    monkeypatch.setattr(SandboxManager, "preflight", lambda self: None)
    monkeypatch.setattr(SandboxManager, "_stop", lambda self, st: None)
    monkeypatch.setattr(
        SandboxManager, "_start_or_stop", lambda self, st, progress, fresh: started.append(st)
    )
    manager.boot("rig13")
    assert [(s.release, s.image, s.address) for s in started] == [("trixie", state.image, state.address)]


# --- preflight (monkeypatched: nothing is run or changed) --------------------------------


def _root_with_tools(monkeypatch, tmp_path):
    monkeypatch.setattr("provision.sandbox.manager.os.geteuid", lambda: 0)
    monkeypatch.setattr("provision.sandbox.manager.which", lambda t: t)
    monkeypatch.setattr("provision.sandbox.manager.find_mirrors", lambda: Mirrors("http://a.example/debian"))
    monkeypatch.setattr("provision.sandbox.manager.host_nameservers", lambda: ["192.0.2.53"])
    monkeypatch.delenv("RIGFORGE_SANDBOX_SUBNET", raising=False)


def test_preflight_refuses_non_root(monkeypatch, tmp_path):
    monkeypatch.setattr("provision.sandbox.manager.os.geteuid", lambda: 1000)
    with pytest.raises(SandboxSetupError, match="need root") as err:
        SandboxManager(tmp_path).preflight()
    assert "sudo" in err.value.hint


def test_preflight_names_the_packages_of_missing_tools(monkeypatch, tmp_path):
    monkeypatch.setattr("provision.sandbox.manager.os.geteuid", lambda: 0)
    monkeypatch.setattr(
        "provision.sandbox.manager.which", lambda t: None if t in ("mmdebstrap", "nft") else t
    )
    with pytest.raises(SandboxSetupError, match="mmdebstrap, nft") as err:
        SandboxManager(tmp_path).preflight()
    for package in ("mmdebstrap", "systemd-container", "nftables", "iproute2", "openssh-client"):
        assert package in err.value.hint


def test_preflight_without_a_mirror_asks_for_the_variable(monkeypatch, tmp_path):
    monkeypatch.setattr("provision.sandbox.manager.os.geteuid", lambda: 0)
    monkeypatch.setattr("provision.sandbox.manager.which", lambda t: t)
    monkeypatch.setattr("provision.sandbox.manager.find_mirrors", lambda: find_mirrors(tmp_path, env={}))
    with pytest.raises(SandboxSetupError, match="no Debian archive") as err:
        SandboxManager(tmp_path).preflight()
    assert "RIGFORGE_SANDBOX_MIRROR" in err.value.hint


def test_preflight_of_an_image_host_needs_neither_a_debian_archive_nor_mmdebstrap(monkeypatch, tmp_path):
    """A GitHub runner has Ubuntu's apt sources and no mmdebstrap: ``--image ubuntu:24.04``
    brings its own archives (the firewall reads them from the image)."""
    monkeypatch.setattr("provision.sandbox.manager.os.geteuid", lambda: 0)
    monkeypatch.setattr("provision.sandbox.manager.which", lambda t: None if t == "mmdebstrap" else t)
    monkeypatch.setattr("provision.sandbox.manager.find_mirrors", lambda: find_mirrors(tmp_path, env={}))
    monkeypatch.setattr("provision.sandbox.manager.host_nameservers", lambda: ["192.0.2.53"])
    monkeypatch.setattr("provision.sandbox.container_host.engine", lambda name: None)
    SandboxManager(tmp_path, backend="podman", image="ubuntu:24.04").preflight()
    with pytest.raises(SandboxSetupError, match="mmdebstrap"):
        SandboxManager(tmp_path, backend="podman").preflight()


def test_preflight_passes_on_a_ready_machine_and_reads_the_mirrors_once(monkeypatch, tmp_path):
    _root_with_tools(monkeypatch, tmp_path)
    manager = SandboxManager(tmp_path)
    manager.preflight()
    monkeypatch.setattr("provision.sandbox.manager.find_mirrors", lambda: pytest.fail("read again"))
    assert manager.mirrors() == Mirrors("http://a.example/debian")


def test_preflight_without_a_reachable_resolver_says_where_to_add_one(monkeypatch, tmp_path):
    _root_with_tools(monkeypatch, tmp_path)
    monkeypatch.setattr("provision.sandbox.manager.host_nameservers", lambda: [])
    with pytest.raises(SandboxSetupError, match="no IPv4 DNS resolver") as err:
        SandboxManager(tmp_path).preflight()
    assert "/etc/resolv.conf" in err.value.hint


def test_preflight_checks_the_subnet(monkeypatch, tmp_path):
    _root_with_tools(monkeypatch, tmp_path)
    monkeypatch.setenv("RIGFORGE_SANDBOX_SUBNET", "10.0.0.0/30")
    with pytest.raises(SandboxSetupError, match="at least a /28"):
        SandboxManager(tmp_path).preflight()


@pytest.mark.parametrize("part", ["a,b", "a:b", "a b"])
def test_preflight_refuses_a_state_dir_overlayfs_cannot_name(monkeypatch, tmp_path, part):
    _root_with_tools(monkeypatch, tmp_path)
    with pytest.raises(SandboxSetupError, match="contains ',', ':' or whitespace") as err:
        SandboxManager(tmp_path / part).preflight()
    assert "RIGFORGE_SANDBOX_DIR" in err.value.hint


# --- refusals before anything is created --------------------------------------------------


def test_a_bad_name_is_refused_before_anything_else(monkeypatch, tmp_path):
    monkeypatch.setattr("provision.sandbox.manager.os.geteuid", lambda: 1000)
    manager = SandboxManager(tmp_path)
    for call in (manager.up, manager.down, manager.halt, manager.boot):
        with pytest.raises(SandboxSetupError, match="invalid sandbox host name"):
            call("../etc")
    assert manager.list() == []
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_release_is_refused_before_anything_else(monkeypatch, tmp_path):
    monkeypatch.setattr("provision.sandbox.manager.os.geteuid", lambda: 1000)  # not root
    manager = SandboxManager(tmp_path)
    with pytest.raises(UnknownReleaseError, match="allowed: bookworm, trixie"):
        manager.up("rig1", release="sid")
    with pytest.raises(UnknownReleaseError):
        manager.ensure_image(release="sid")
    with pytest.raises(SandboxSetupError, match="need root"):  # a known one gets further
        manager.up("rig1", release="trixie")
    assert list(tmp_path.iterdir()) == []


def test_a_taken_name_is_refused_before_the_image_is_built(monkeypatch, tmp_path):
    manager = SandboxManager(tmp_path)
    _halted_host(manager, "rig1", "bookworm")
    monkeypatch.setattr(SandboxManager, "preflight", lambda self: None)
    monkeypatch.setattr(SandboxManager, "ensure_image", lambda *a, **kw: pytest.fail("built"))
    with pytest.raises(SandboxError, match="already exists but is not running"):
        manager.up("rig1")


def test_unknown_hosts_are_refused_with_a_hint_for_each_command(monkeypatch, tmp_path):
    monkeypatch.setattr("provision.sandbox.manager.os.geteuid", lambda: 0)
    manager = SandboxManager(tmp_path)
    with pytest.raises(SandboxSetupError, match="no sandbox host named rig9") as err:
        manager.down("rig9")
    assert "rigforge sandbox list" in err.value.hint
    for call in (manager.halt, manager.get):
        with pytest.raises(SandboxSetupError, match="no sandbox host named rig9") as err:
            call("rig9")
        assert err.value.hint == "create it: rigforge sandbox up rig9"


def test_a_host_whose_image_is_gone_is_told_how_to_recreate_it(monkeypatch, tmp_path):
    manager = SandboxManager(tmp_path)
    state = _halted_host(manager, "rig1", "trixie")
    Path(state.image).rmdir()
    monkeypatch.setattr(SandboxManager, "preflight", lambda self: None)
    with pytest.raises(SandboxError, match=r"the image of rig1 \(.*\) is gone") as err:
        manager.boot("rig1")
    assert err.value.hint.endswith("rigforge sandbox up rig1 --release trixie")


def test_exec_in_a_halted_host_says_to_boot_it(tmp_path):
    manager = SandboxManager(tmp_path)
    _halted_host(manager, "rig1", "bookworm")
    with pytest.raises(SandboxError, match="rig1 is not running") as err:
        manager.exec("rig1", ["true"])
    assert err.value.hint == "boot it: rigforge sandbox boot rig1"


def test_listing_an_unreadable_state_dir_asks_for_root(monkeypatch, tmp_path):
    manager = SandboxManager(tmp_path)

    def denied(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(type(manager.store), "states", denied)
    with pytest.raises(SandboxSetupError, match=f"cannot read {tmp_path / 'hosts'}"):
        manager.list()


# --- what a start or stop leaves behind ---------------------------------------------------


def test_a_failed_start_leaves_the_host_halted_and_says_how_to_remove_it(monkeypatch, tmp_path):
    manager = SandboxManager(tmp_path)
    state = _halted_host(manager, "rig1", "bookworm")
    stopped = []

    def fail(self, st, progress, fresh):
        raise SandboxError("rig1 stopped while booting", hint="see the console log")

    monkeypatch.setattr(SandboxManager, "_start", fail)
    monkeypatch.setattr(SandboxManager, "_stop", lambda self, st: stopped.append(st.name))
    with pytest.raises(SandboxError) as err:
        manager._start_or_stop(state, None, fresh=True)
    assert err.value.message == "rig1 stopped while booting"
    assert err.value.hint == "see the console log; remove it with `rigforge sandbox down rig1`"
    assert stopped == ["rig1"]

    def crash(self, st, progress, fresh):
        raise KeyboardInterrupt

    monkeypatch.setattr(SandboxManager, "_start", crash)
    with pytest.raises(KeyboardInterrupt):  # not a SandboxError: passed on as it is
        manager._start_or_stop(state, None, fresh=False)
    assert stopped == ["rig1", "rig1"]


def test_stopping_removes_only_the_hosts_own_cgroups_and_records_that(monkeypatch, tmp_path):
    monkeypatch.setattr(manager_mod, "PROPAGATE_DIR", tmp_path / "propagate")
    manager = SandboxManager(tmp_path / "sb")
    state = _halted_host(manager, "rig1", "bookworm")
    own = tmp_path / "cg" / "memory" / GROUP / "rig1"
    other = tmp_path / "cg" / "cpu" / GROUP / "rig2"
    corrupt = tmp_path / "cg" / "etc"
    for d in (own / "payload", other, corrupt):
        d.mkdir(parents=True)
    (tmp_path / "propagate" / "rig1").mkdir(parents=True)
    state.cgroups = [str(own), str(other), str(corrupt)]
    manager._stop(state)
    assert not own.parent.exists()  # its tree and the then empty shared parent
    assert other.is_dir() and corrupt.is_dir()
    assert not (tmp_path / "propagate" / "rig1").exists()
    assert state.cgroups == [] and state.nspawn_pid is None
    assert manager.store.load("rig1").cgroups == []


def test_a_new_guest_is_named_and_given_this_machines_first_resolver(monkeypatch, tmp_path):
    monkeypatch.setattr(manager_mod, "host_nameservers", lambda: ["192.0.2.53", "192.0.2.54"])
    root = tmp_path / "merged"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "resolv.conf").symlink_to("/run/systemd/resolve/stub-resolv.conf")
    SandboxManager(tmp_path)._write_guest_identity(root, "rig1")
    assert (root / "etc/hostname").read_text() == "rig1\n"
    assert "127.0.1.1\trig1\n" in (root / "etc/hosts").read_text()
    assert (root / "etc/hosts").read_text().startswith("127.0.0.1\tlocalhost\n")
    assert (root / "etc/resolv.conf").read_text() == "nameserver 192.0.2.53\n"
    assert not (root / "etc/resolv.conf").is_symlink()
