"""provision.sandbox.container_host: images, refusals, and removal of what rigforge made."""

import socket
from pathlib import Path

import pytest

from provision.errors import EXIT_USAGE
from provision.sandbox import container_host as ch
from provision.sandbox.container_host import UnusableImageError
from provision.sandbox.host import HostState


class FakeEngine:
    name = "podman"

    def __init__(self, lacking=(), images=(), containers=None, users=()):
        self.lacking, self.images = lacking, set(images)
        self.containers = containers or {}
        self.users, self.calls = list(users), []

    def base(self):
        return ["podman"]

    def missing_in_image(self, image):
        return None if self.lacking is None else list(self.lacking)

    def image_exists(self, ref):
        return ref in self.images

    def import_rootfs(self, rootfs, ref):
        self.calls.append(("import", str(rootfs), ref))
        self.images.add(ref)

    def exists(self, name):
        return name in self.containers

    def remove(self, name):
        self.calls.append(("rm", name))

    def containers_using(self, ref):
        return self.users

    def remove_image(self, ref):
        self.calls.append(("rmi", ref))


def _state(**kw):
    base = {"name": "rig1", "address": "10.213.0.11", "veth": "v", "netns": "rigforge-rig1", "image": "/i",
            "backend": "podman", "container": "rigforge-rig1"}
    return HostState(**{**base, **kw})


def test_the_default_image_is_imported_once_per_cached_root(tmp_path):
    eng = FakeEngine()
    rootfs = tmp_path / "bookworm-abc" / "rootfs"
    assert ch.ensure_default_image(eng, rootfs, None) == "localhost/rigforge-sandbox:bookworm-abc"
    assert ch.ensure_default_image(eng, rootfs, None) == "localhost/rigforge-sandbox:bookworm-abc"
    assert [c[0] for c in eng.calls] == ["import"]


def test_an_image_without_systemd_and_without_apt_is_refused_naming_what_is_missing(monkeypatch):
    eng = FakeEngine(lacking=["systemd", "sshd", "apt-get"])
    monkeypatch.setattr(ch, "run", lambda *a, **k: pytest.fail("nothing may be built"))
    with pytest.raises(UnusableImageError) as err:
        ch.ensure_custom_image(eng, "alpine:3", "ssh-ed25519 AAAA k", "ns", None)
    assert err.value.exit_code == EXIT_USAGE
    assert "alpine:3 has no systemd, sshd, and no apt-get" in err.value.message


def test_an_image_that_cannot_start_is_refused_with_the_pull_command(monkeypatch):
    monkeypatch.setattr(ch, "run", lambda *a, **k: pytest.fail("nothing may be built"))
    with pytest.raises(UnusableImageError) as err:
        ch.ensure_custom_image(FakeEngine(lacking=None), "ubuntu:24.04", "k", "ns", None)
    assert "podman pull ubuntu:24.04" in err.value.hint


def test_an_image_with_apt_is_built_with_what_it_lacks_in_the_hosts_namespace(monkeypatch):
    built = []

    def fake_run(argv, **kw):
        built.append((argv, Path(argv[argv.index("--file") + 1]).read_text()))

    monkeypatch.setattr(ch, "run", fake_run)
    eng = FakeEngine(lacking=["sshd"])
    ref = ch.ensure_custom_image(eng, "ubuntu:24.04", "ssh-ed25519 AAAA k", "rf-1", None)
    argv, text = built[0]
    assert ref.startswith("localhost/rigforge-sandbox:custom-") and ref in argv
    assert "--network" in argv and "ns:/run/netns/rf-1" in argv
    assert text.startswith("FROM ubuntu:24.04\n") and "apt-get install -y --no-install-recommends" in text
    assert "openssh-server" in text and "'ssh-ed25519 AAAA k'" in text


def test_the_build_makes_each_container_its_own_host_keys_and_a_checked_sudoers_file():
    text = ch.containerfile("debian:12", "ssh-ed25519 AAAA k", [])
    assert "apt-get" not in text  # nothing lacking: nothing installed
    assert "rm -f /etc/ssh/ssh_host_*" in text and "systemctl enable rigforge-hostkeys.service" in text
    assert "visudo -c -q -f /etc/sudoers.d/rig" in text and "NOPASSWD:ALL" in text
    assert "Before=ssh.service ssh.socket" in text


def test_one_custom_image_per_image_and_key():
    assert ch.custom_image_ref("ubuntu:24.04", "k1") == ch.custom_image_ref("ubuntu:24.04", "k1")
    assert ch.custom_image_ref("ubuntu:24.04", "k1") != ch.custom_image_ref("ubuntu:24.04", "k2")
    assert ch.custom_image_ref("ubuntu:24.04", "k1") != ch.custom_image_ref("ubuntu:22.04", "k1")


@pytest.mark.parametrize(("ref", "users", "removed"), [
    ("localhost/rigforge-sandbox:bookworm-abc", [], True),
    ("localhost/rigforge-sandbox:bookworm-abc", ["rigforge-rig2"], False),
    ("ubuntu:24.04", [], False),  # never remove an image rigforge did not make
])
def test_down_removes_the_container_and_its_image_unless_another_host_uses_it(monkeypatch, ref, users,
                                                                             removed):
    eng = FakeEngine(users=users)
    monkeypatch.setattr(ch, "engine", lambda name: eng)
    ch.remove(_state(image_ref=ref))
    assert ("rm", "rigforge-rig1") in eng.calls
    assert (("rmi", ref) in eng.calls) is removed


def test_a_container_host_is_bootable_only_while_its_container_exists(monkeypatch):
    monkeypatch.setattr(ch, "engine", lambda name: FakeEngine(containers={"rigforge-rig1": 1}))
    assert ch.bootable(_state())
    assert not ch.bootable(_state(container="rigforge-gone"))
    monkeypatch.setattr(ch, "engine", lambda name: (_ for _ in ()).throw(ch.SandboxSetupError("no podman")))
    assert not ch.bootable(_state()) and ch.running(_state()) == (False, None)


def test_a_free_port_is_one_nothing_listens_on():
    port = ch.free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


# Ubuntu 24.04's stock deb822 sources, as a public test suite records them (search index file
# 71092826434, "OFFICIAL"), behind the marker lines that image_archives' script prints.
_UBUNTU_SOURCES = """### /etc/apt/sources.list
# Ubuntu sources have moved to /etc/apt/sources.list.d/ubuntu.sources

### /etc/apt/sources.list.d/ubuntu.sources
Types: deb
URIs: http://archive.ubuntu.com/ubuntu/
Suites: noble noble-updates noble-backports
Components: main restricted universe multiverse
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg

Types: deb
URIs: http://security.ubuntu.com/ubuntu/
Suites: noble-security
Components: main restricted universe multiverse
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg

"""


class SourcesEngine(FakeEngine):
    def __init__(self, out, **kw):
        super().__init__(**kw)
        self.out, self.scripts = out, []

    def shell_in_image(self, image, script):
        self.scripts.append((image, script))
        return self.out


def test_an_images_archives_come_from_its_own_deb822_and_one_line_sources():
    eng = SourcesEngine(_UBUNTU_SOURCES)
    assert ch.image_archives(eng, "ubuntu:24.04") == [
        "http://archive.ubuntu.com/ubuntu", "http://security.ubuntu.com/ubuntu"]
    one_line = "### /etc/apt/sources.list\ndeb http://deb.example/debian bookworm main\n" \
               "deb [signed-by=/k.gpg] https://deb.example/debian bookworm-updates main\n"
    assert ch.image_archives(SourcesEngine(one_line), "debian:12") == [
        "http://deb.example/debian", "https://deb.example/debian"]


def test_an_image_without_readable_sources_names_no_archive():
    assert ch.image_archives(SourcesEngine(None), "x") == []
    assert ch.image_archives(SourcesEngine("### /etc/apt/sources.list\n# nothing\n"), "x") == []


def test_check_image_refuses_before_reading_sources_and_returns_them(monkeypatch):
    eng = SourcesEngine(_UBUNTU_SOURCES, lacking=["sshd"])
    monkeypatch.setattr(ch, "engine", lambda name: eng)
    assert ch.check_image("podman", "ubuntu:24.04")[0] == "http://archive.ubuntu.com/ubuntu"
    bad = SourcesEngine(_UBUNTU_SOURCES, lacking=["sshd", "apt-get"])
    monkeypatch.setattr(ch, "engine", lambda name: bad)
    with pytest.raises(UnusableImageError, match="has no sshd, and no apt-get"):
        ch.check_image("podman", "ubuntu:24.04")
    assert bad.scripts == []
