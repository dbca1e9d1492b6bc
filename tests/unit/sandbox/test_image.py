"""provision.sandbox.image: the recipe, its hash, the mmdebstrap command line, the image store."""

import json
import time
from pathlib import Path

import pytest

from provision.errors import SandboxError, SandboxSetupError, UsageError
from provision.sandbox import image
from provision.sandbox.host import _is_zombie
from provision.sandbox.image import (
    PACKAGES,
    ImageStore,
    UnknownReleaseError,
    _run_logged,
    build_recipe,
    check_release,
    customize_hooks,
    describe_release,
    ensure_key,
    mmdebstrap_argv,
    recipe_hash,
)
from provision.sandbox.mirrors import Mirrors

MIRRORS = Mirrors("http://mirror.example/debian", "http://mirror.example/debian-security")
PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOr7 rigforge-sandbox"


def test_recipe_hash_is_stable_and_short():
    first = recipe_hash(build_recipe(MIRRORS, PUBKEY))
    assert first == recipe_hash(build_recipe(MIRRORS, PUBKEY))
    assert len(first) == 12 and int(first, 16) >= 0
    shuffled = dict(reversed(list(build_recipe(MIRRORS, PUBKEY).items())))
    assert recipe_hash(shuffled) == first


def test_recipe_hash_changes_with_packages_hooks_key_or_mirror():
    base = build_recipe(MIRRORS, PUBKEY)
    more = dict(base, packages=[*PACKAGES, "curl"])
    newer = dict(base, hook_version=base["hook_version"] + 1)
    other_key = build_recipe(MIRRORS, PUBKEY.replace("Or7", "Xy9"))
    other_mirror = build_recipe(Mirrors("http://other.example/debian"), PUBKEY)
    hashes = {recipe_hash(r) for r in (base, more, newer, other_key, other_mirror)}
    assert len(hashes) == 5


def test_mmdebstrap_command_line():
    argv = mmdebstrap_argv(build_recipe(MIRRORS, PUBKEY), Path("/tmp/rootfs"))
    assert argv[:4] == [
        "mmdebstrap",
        "--variant=apt",
        "--components=main,contrib,non-free,non-free-firmware",
        "--include=systemd,systemd-sysv,dbus,openssh-server,python3,python3-apt,sudo,"
        "iproute2,ca-certificates",
    ]
    assert argv[-4:] == [
        "/tmp/rootfs",
        "deb http://mirror.example/debian bookworm main contrib non-free non-free-firmware",
        "deb http://mirror.example/debian bookworm-updates main contrib non-free non-free-firmware",
        "deb http://mirror.example/debian-security bookworm-security main contrib non-free non-free-firmware",
    ]
    assert all(a.startswith("--customize-hook=") for a in argv[4:-5])


def test_the_default_recipe_is_bookworm_and_unchanged_by_the_release_choice():
    default = build_recipe(MIRRORS, PUBKEY)
    assert default == build_recipe(MIRRORS, PUBKEY, "bookworm")
    # no new fields: bookworm images cached before releases were selectable stay valid
    assert set(default) == {"suite", "variant", "components", "packages", "hook_version",
                            "hooks", "sources"}
    assert default["suite"] == "bookworm"


def test_each_release_has_its_own_recipe_hash_and_suites():
    bookworm = build_recipe(MIRRORS, PUBKEY, "bookworm")
    trixie = build_recipe(MIRRORS, PUBKEY, "trixie")
    assert recipe_hash(bookworm) != recipe_hash(trixie)
    assert trixie["suite"] == "trixie"
    comps = "main contrib non-free non-free-firmware"
    assert trixie["sources"] == [
        f"deb http://mirror.example/debian trixie {comps}",
        f"deb http://mirror.example/debian trixie-updates {comps}",
        f"deb http://mirror.example/debian-security trixie-security {comps}",
    ]
    assert not [line for line in trixie["sources"] if "bookworm" in line]
    # the same packages and hooks: only the suites differ
    assert {k: v for k, v in trixie.items() if k not in ("suite", "sources")} == {
        k: v for k, v in bookworm.items() if k not in ("suite", "sources")
    }
    store = ImageStore(Path("/sb/images"))
    assert store.path_for(trixie).name == f"trixie-{recipe_hash(trixie)}"
    assert store.path_for(bookworm).name == f"bookworm-{recipe_hash(bookworm)}"


def test_mmdebstrap_command_line_for_trixie():
    recipe = build_recipe(MIRRORS, PUBKEY, "trixie")
    argv = mmdebstrap_argv(recipe, Path("/tmp/rootfs"))
    assert argv[-5:] == ["trixie", "/tmp/rootfs", *recipe["sources"]]
    assert argv[:4] == mmdebstrap_argv(build_recipe(MIRRORS, PUBKEY), Path("/x"))[:4]


@pytest.mark.parametrize("release", ["sid", "Trixie", "bullseye", "", None, 13])
def test_an_unknown_release_is_a_usage_error_naming_the_allowed_ones(release):
    with pytest.raises(UnknownReleaseError) as err:
        build_recipe(MIRRORS, PUBKEY, release)
    assert isinstance(err.value, UsageError) and isinstance(err.value, SandboxSetupError)
    assert err.value.exit_code == 2
    assert "bookworm, trixie" in err.value.message
    assert repr(release) in err.value.message


def test_a_known_release_is_returned_and_described_with_its_version():
    assert check_release("trixie") == "trixie"
    assert describe_release("bookworm") == "Debian 12 (bookworm)"
    assert describe_release("trixie") == "Debian 13 (trixie)"
    assert describe_release("forky") == "forky"  # an odd state file is shown as it is
    assert describe_release("") == ""


@pytest.mark.parametrize(("release", "version"), [("bookworm", "12"), ("trixie", "13")])
def test_building_an_image_names_its_release(tmp_path, monkeypatch, release, version):
    def fake_build(self, recipe, final):
        (final / "rootfs").mkdir(parents=True)

    monkeypatch.setattr(ImageStore, "_build", fake_build)
    said: list[str] = []
    store = ImageStore(tmp_path / "images")
    rootfs = store.ensure(build_recipe(MIRRORS, PUBKEY, release), said.append)
    assert rootfs.parent.name.startswith(f"{release}-")
    assert said[0] == f"building Debian {version} image (once, ~30 s)"
    said.clear()
    assert store.ensure(build_recipe(MIRRORS, PUBKEY, release), said.append) == rootfs
    assert said == []  # cached per release


def test_hooks_make_a_sudo_user_and_drop_the_host_keys():
    text = "\n".join(customize_hooks("ssh-ed25519 AAAA it's-a-comment"))
    assert "'ssh-ed25519 AAAA it'\"'\"'s-a-comment'" in text  # shell-quoted, not injected
    assert "useradd --create-home --shell /bin/bash" in text
    assert '"rig ALL=(ALL) NOPASSWD:ALL" > "$1/etc/sudoers.d/rig"' in text
    assert 'chmod 0440 "$1/etc/sudoers.d/rig"' in text
    assert "/home/rig/.ssh/authorized_keys" in text
    assert 'rm -f "$1"/etc/ssh/ssh_host_*' in text
    dropin = "ExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t"
    assert dropin in text


# --- the store's build steps (mmdebstrap stood in for) ------------------------------------


def _fake_mmdebstrap(rc: int):
    def run_logged(argv, log, timeout):
        with open(log, "a") as out:
            out.write("I: resolving dependencies\nE: mirror unreachable\n" if rc else "I: done\n")
        if not rc:
            target = next(a for a in argv if a.endswith("/rootfs"))
            (Path(target) / "var/lib/apt/lists").mkdir(parents=True)
        return rc

    return run_logged


def test_a_finished_build_is_renamed_into_place_with_its_recipe_and_a_stale_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(image, "_run_logged", _fake_mmdebstrap(0))
    store = ImageStore(tmp_path / "images")
    (store.dir / ".build-crashed-1").mkdir(parents=True)  # a crashed builder's leftover
    (store.path_for(build_recipe(MIRRORS, PUBKEY))).mkdir()  # an image dir without rootfs
    recipe = build_recipe(MIRRORS, PUBKEY)
    rootfs = store.ensure(recipe)
    assert rootfs == store.path_for(recipe) / "rootfs"
    assert json.loads((rootfs.parent / "recipe.json").read_text()) == recipe
    assert (rootfs / "var/lib/apt/lists").stat().st_mtime == 0  # apt must not trust it as fresh
    assert sorted(p.name for p in store.dir.iterdir()) == [".build.lock", rootfs.parent.name]


def test_a_failed_build_keeps_its_log_and_quotes_its_end(tmp_path, monkeypatch):
    monkeypatch.setattr(image, "_run_logged", _fake_mmdebstrap(25))
    store = ImageStore(tmp_path / "images")
    recipe = build_recipe(MIRRORS, PUBKEY, "trixie")
    with pytest.raises(SandboxError, match="mmdebstrap exit 25") as err:
        store.ensure(recipe)
    kept = store.dir / f"{store.path_for(recipe).name}.failed.log"
    assert "E: mirror unreachable" in err.value.message
    assert str(kept) in err.value.hint and "E: mirror unreachable" in kept.read_text()
    assert not store.path_for(recipe).exists()
    assert not list(store.dir.glob(".build-*"))


def test_a_logged_run_appends_its_output_and_returns_its_exit_status(tmp_path):
    log = tmp_path / "build.log"
    log.write_text("earlier\n")
    assert _run_logged(["sh", "-c", "echo out; echo err >&2; exit 3"], log, 30) == 3
    assert log.read_text() == "earlier\nout\nerr\n"


def test_a_logged_run_past_its_time_is_killed_with_its_group(tmp_path):
    log = tmp_path / "build.log"
    with pytest.raises(SandboxError, match="did not finish within 1 s"):
        _run_logged(["sh", "-c", "sleep 30 & echo $!; wait"], log, 1)
    grandchild = int(log.read_text().split()[0])
    # dead (a zombie, or reaped) is what counts; test_host tests that reading of /proc
    for _ in range(50):  # SIGKILL is delivered at once, but the state may lag a moment
        if _is_zombie(grandchild):
            break
        time.sleep(0.1)
    assert _is_zombie(grandchild)


# --- the login key ------------------------------------------------------------------------


def test_an_existing_key_pair_is_kept(tmp_path, monkeypatch):
    key = tmp_path / "id_ed25519"
    key.write_text("PRIVATE\n")
    key.with_name("id_ed25519.pub").write_text("ssh-ed25519 AAAA rigforge-sandbox\n")
    monkeypatch.setattr(image, "run", lambda *a, **kw: pytest.fail("ssh-keygen ran"))
    assert ensure_key(key) == "ssh-ed25519 AAAA rigforge-sandbox"
    assert key.read_text() == "PRIVATE\n"


def test_half_a_key_pair_is_replaced(tmp_path, monkeypatch):
    key = tmp_path / "keys" / "id_ed25519"
    key.parent.mkdir()
    key.write_text("ORPHANED PRIVATE KEY\n")

    def keygen(argv, **kw):
        target = Path(argv[argv.index("-f") + 1])
        assert not target.exists()  # ssh-keygen would stop to ask before overwriting
        target.write_text("NEW PRIVATE\n")
        target.with_name(target.name + ".pub").write_text("ssh-ed25519 BBBB rigforge-sandbox\n")

    monkeypatch.setattr(image, "run", keygen)
    assert ensure_key(key) == "ssh-ed25519 BBBB rigforge-sandbox"
    assert key.read_text() == "NEW PRIVATE\n"
