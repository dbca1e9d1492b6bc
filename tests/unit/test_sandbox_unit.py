"""The pure parts of provision.sandbox: parsing, naming, addressing, hashing, rule text.

Nothing here needs root, the network, or a running host.
"""

import json
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest
from click.testing import CliRunner

from provision.errors import SandboxError, SandboxSetupError, UsageError
from provision.sandbox import SandboxHost, SandboxManager, validate_name
from provision.sandbox.cgroups import current_cgroup_dirs, parse_proc_cgroup
from provision.sandbox.host import HostState, nspawn_argv, read_host_keys
from provision.sandbox.image import (
    PACKAGES,
    RELEASES,
    ImageStore,
    UnknownReleaseError,
    build_recipe,
    customize_hooks,
    mmdebstrap_argv,
    recipe_hash,
)
from provision.sandbox.mirrors import (
    Mirrors,
    find_mirrors,
    host_nameservers,
    nameservers_v4,
    pick_archive,
    uris_from_deb822,
    uris_from_one_line,
)
from provision.sandbox.network import (
    allocate_address,
    mirror_firewall_targets,
    netns_name,
    nft_replace_script,
    nft_ruleset,
    parse_subnet,
    veth_name,
)
from provision.sandbox.system import mounts_below
from tests.conftest import snapshot

ONE_LINE = """\
# the main archive
deb http://mirror.example/debian bookworm main contrib
deb [arch=amd64 signed-by=/etc/a b.gpg] http://mirror.example/debian bookworm-updates main
deb-src http://mirror.example/debian bookworm main
#deb http://commented.example/debian bookworm main
deb https://security.example/debian-security/ bookworm-security main # trailing comment
deb cdrom:[Debian GNU/Linux 12]/ bookworm main
"""

DEB822 = """\
Types: deb
# a comment inside the stanza
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb
URIs:
 http://security.example/debian-security
 http://other.example/ubuntu
Suites: bookworm-security
Components: main
"""


# --- mirrors ------------------------------------------------------------------------------


def test_one_line_sources_give_uris_in_order_without_options_or_comments():
    assert uris_from_one_line(ONE_LINE) == [
        "http://mirror.example/debian",
        "http://mirror.example/debian",
        "http://mirror.example/debian",
        "https://security.example/debian-security/",
        "cdrom:",
    ]


def test_deb822_skips_disabled_stanzas_and_joins_continuation_lines():
    assert uris_from_deb822(DEB822) == [
        "http://mirror.example/debian",
        "http://security.example/debian-security",
        "http://other.example/ubuntu",
    ]


def test_pick_archive_matches_the_last_path_part_over_http_only():
    uris = ["cdrom:/debian", "ftp://x.example/debian", "https://a.example/pub/debian/"]
    assert pick_archive(uris, "debian") == "https://a.example/pub/debian"
    assert pick_archive(uris, "debian-security") is None
    assert pick_archive(["http://s.example/debian-security"], "debian") is None


def _apt_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_find_mirrors_reads_list_and_sources_files_and_ignores_others(tmp_path):
    apt = _apt_dir(
        tmp_path,
        {
            "sources.list.d/debian.sources": DEB822,
            "sources.list.d/old.list.disabled": "deb http://wrong.example/debian bookworm main\n",
        },
    )
    assert find_mirrors(apt, env={}) == Mirrors(
        "http://mirror.example/debian", "http://security.example/debian-security"
    )


def test_find_mirrors_prefers_sources_list_then_the_d_directory(tmp_path):
    apt = _apt_dir(
        tmp_path,
        {
            "sources.list": ONE_LINE,
            "sources.list.d/z.sources": "Types: deb\nURIs: http://later.example/debian\n",
        },
    )
    mirrors = find_mirrors(apt, env={})
    assert mirrors.debian == "http://mirror.example/debian"
    assert mirrors.security == "https://security.example/debian-security"


def test_environment_overrides_the_apt_configuration(tmp_path):
    apt = _apt_dir(tmp_path, {"sources.list": ONE_LINE})
    env = {"RIGFORGE_SANDBOX_MIRROR": "http://env.example:3142/debian/"}
    mirrors = find_mirrors(apt, env=env)
    assert mirrors.debian == "http://env.example:3142/debian"
    assert mirrors.security == "https://security.example/debian-security"
    env["RIGFORGE_SANDBOX_SECURITY_MIRROR"] = "http://env.example/debian-security"
    assert find_mirrors(apt, env=env).security == "http://env.example/debian-security"


def test_no_mirror_is_a_setup_error_that_names_the_variable(tmp_path):
    with pytest.raises(SandboxSetupError) as err:
        find_mirrors(tmp_path, env={})
    assert "RIGFORGE_SANDBOX_MIRROR" in err.value.hint


def test_a_mirror_override_must_be_a_url(tmp_path):
    with pytest.raises(SandboxSetupError, match="RIGFORGE_SANDBOX_MIRROR"):
        find_mirrors(tmp_path, env={"RIGFORGE_SANDBOX_MIRROR": "mirror.example/debian"})


def test_mirrors_give_sources_lines_and_firewall_endpoints():
    m = Mirrors("http://a.example/debian", "https://b.example:8443/debian-security")
    assert m.sources_lines("bookworm", ["main", "contrib"]) == [
        "deb http://a.example/debian bookworm main contrib",
        "deb http://a.example/debian bookworm-updates main contrib",
        "deb https://b.example:8443/debian-security bookworm-security main contrib",
    ]
    assert m.endpoints() == [("a.example", None), ("b.example", 8443)]
    assert len(Mirrors("http://a.example/debian").sources_lines("bookworm", ["main"])) == 2


@pytest.mark.parametrize("release", sorted(RELEASES))
def test_every_release_uses_only_hosts_the_firewall_lets_through(release, monkeypatch):
    """The security archive may be another host than the main mirror: each release's
    -security suite comes from it, and the firewall's targets include it."""
    m = Mirrors("http://a.example/debian", "http://sec.example/debian-security")
    lines = m.sources_lines(release, ["main"])
    assert [line.split()[2] for line in lines] == [release, f"{release}-updates", f"{release}-security"]
    hosts = {line.split()[1].split("/")[2] for line in lines}
    assert hosts == {"a.example", "sec.example"}
    assert hosts == {host for host, _ in m.endpoints()}
    addrs = {"a.example": ["192.0.2.1"], "sec.example": ["198.51.100.2"]}
    monkeypatch.setattr("provision.sandbox.network.resolve_ipv4", lambda host: addrs[host])
    assert mirror_firewall_targets(m) == (["192.0.2.1", "198.51.100.2"], [80, 443])


def test_nameservers_are_ipv4_and_not_loopback():
    text = (
        "# generated\nnameserver 127.0.0.53\nnameserver fd00::1\nnameserver 192.0.2.53\n"
        "search example\nnameserver 198.51.100.7\nnameserver 192.0.2.53\n"
    )
    assert nameservers_v4(text) == ["192.0.2.53", "198.51.100.7"]


def test_resolved_stub_falls_back_to_its_upstream_list(tmp_path):
    stub, upstream = tmp_path / "stub", tmp_path / "upstream"
    stub.write_text("nameserver 127.0.0.53\n")
    upstream.write_text("nameserver 192.0.2.1\n")
    assert host_nameservers([stub, upstream]) == ["192.0.2.1"]
    assert host_nameservers([stub, tmp_path / "missing"]) == []


# --- names and addresses ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "rig1", "gpu-box-2", "a" + "b" * 19])
def test_valid_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "1rig", "Rig", "rig_1", "rig.1", "a" * 21, "rig\n", "-a"])
def test_invalid_names_are_usage_errors(name):
    with pytest.raises(SandboxSetupError, match="invalid sandbox host name"):
        validate_name(name)


def test_addresses_start_at_11_and_fill_gaps_first():
    net = ip_network("10.213.0.0/24")
    assert allocate_address(net, []) == ip_address("10.213.0.11")
    assert allocate_address(net, ["10.213.0.11", "10.213.0.13"]) == ip_address("10.213.0.12")


def test_a_full_subnet_raises():
    net = ip_network("10.9.0.0/28")  # offsets 11..14 usable
    used = [f"10.9.0.{i}" for i in range(11, 15)]
    with pytest.raises(SandboxError, match="no free address"):
        allocate_address(net, used)


def test_interface_names_fit_the_kernel_limit():
    net = ip_network("10.0.0.0/8")
    assert veth_name(net, ip_address("10.255.255.254")) == "rfs16777214"
    assert len(veth_name(net, ip_address("10.255.255.254"))) <= 15
    assert veth_name(ip_network("10.213.0.0/24"), ip_address("10.213.0.11")) == "rfs11"
    assert netns_name("rig1") == "rigforge-rig1"


@pytest.mark.parametrize("text", ["10.213.0.1/24", "fd00::/64", "10.0.0.0/30", "nonsense"])
def test_bad_subnets_are_setup_errors(text):
    with pytest.raises(SandboxSetupError, match="subnet"):
        parse_subnet(text)


# --- image recipe -------------------------------------------------------------------------

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


# --- firewall -----------------------------------------------------------------------------


def test_ruleset_allows_only_mirror_and_dns_from_the_bridge():
    rules = nft_ruleset(
        ip_network("10.213.0.0/24"), ["192.0.2.80", "192.0.2.81"], [443, 80], ["198.51.100.53"]
    )
    assert rules.startswith("table inet rigforge_sandbox {")
    assert "type filter hook forward priority -10; policy accept;" in rules
    assert 'iifname "rigforge0" ip daddr { 192.0.2.80, 192.0.2.81 } tcp dport { 80, 443 } accept' in rules
    assert 'iifname "rigforge0" ip daddr { 198.51.100.53 } meta l4proto { tcp, udp } th dport 53' in rules
    assert rules.count('iifname "rigforge0" counter drop') == 2  # forward and input
    assert 'ip saddr 10.213.0.0/24 oifname != "rigforge0" masquerade' in rules
    forward = rules.split("chain forward")[1].split("}\n")[0]
    assert forward.index("established,related") < forward.index("drop")


def test_ruleset_opens_only_the_serve_ports_on_the_bridge_address_and_only_for_input():
    rules = nft_ruleset(ip_network("10.213.0.0/24"), ["192.0.2.80"], [80], [])
    incoming = rules.split("chain input")[1].split("}\n")[0]
    forward = rules.split("chain forward")[1].split("}\n")[0]
    assert 'iifname "rigforge0" ip daddr 10.213.0.1 tcp dport 8650-8659 accept' in incoming
    assert "8650" not in forward
    assert incoming.index("8650") < incoming.index("drop")


def test_ruleset_without_resolvers_has_no_dns_rule():
    rules = nft_ruleset(ip_network("10.213.0.0/24"), ["192.0.2.80"], [80], [])
    assert "dport 53" not in rules


def test_replace_script_swaps_the_table_in_one_transaction():
    script = nft_replace_script("table inet rigforge_sandbox {\n}\n")
    assert script.splitlines()[:2] == [
        "table inet rigforge_sandbox",
        "delete table inet rigforge_sandbox",
    ]


# --- cgroups, mounts ----------------------------------------------------------------------

HYBRID_CGROUP = """\
9:name=systemd:/
4:memory:/jobs/42
3:cpu,cpuacct:/
0::/
"""
HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
"""


def test_cgroup_dirs_of_a_hybrid_layout():
    assert parse_proc_cgroup("3:cpu,cpuacct:/a\n") == [(frozenset({"cpu", "cpuacct"}), "/a")]
    assert current_cgroup_dirs(HYBRID_CGROUP, HYBRID_MOUNTINFO) == [
        Path("/sys/fs/cgroup/systemd"),
        Path("/sys/fs/cgroup/memory/jobs/42"),
        Path("/sys/fs/cgroup/cpu,cpuacct"),
        Path("/sys/fs/cgroup/unified"),
    ]


def test_cgroup_dirs_of_v2_and_of_a_container_view():
    v2 = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n"
    assert current_cgroup_dirs("0::/user.slice/x.scope\n", v2) == [Path("/sys/fs/cgroup/user.slice/x.scope")]
    boxed = "30 23 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    assert current_cgroup_dirs("0::/docker/abc/ci\n", boxed) == [Path("/sys/fs/cgroup/ci")]


def test_mounts_below_are_deepest_first_and_unescaped():
    info = (
        "1 0 8:1 / / rw - ext4 /dev/vda rw\n"
        "2 1 0:9 / /srv/sb/hosts/a/merged rw - overlay overlay rw\n"
        "3 2 0:5 / /srv/sb/hosts/a/merged/dev rw - devtmpfs udev rw\n"
        "4 1 0:9 / /srv/sb/hosts/ab rw - overlay overlay rw\n"
        "5 1 0:9 / /srv/sb/hosts/a\\040b rw - overlay overlay rw\n"
    )
    assert mounts_below(Path("/srv/sb/hosts/a"), info) == [
        "/srv/sb/hosts/a/merged/dev",
        "/srv/sb/hosts/a/merged",
    ]
    assert mounts_below(Path("/srv/sb/hosts/a b"), info) == ["/srv/sb/hosts/a b"]


# --- host records -------------------------------------------------------------------------


def test_host_state_round_trips_and_ignores_unknown_fields(tmp_path):
    state = HostState("rig1", "10.213.0.11", "rfs11", "rigforge-rig1", "/img", nspawn_pid=7)
    path = tmp_path / "state.json"
    state.save(path)
    assert HostState.load(path) == state
    assert path.stat().st_mode & 0o777 == 0o600
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "future_field": 1}))
    assert HostState.load(path) == state


def test_host_state_records_its_release_and_old_records_are_bookworm(tmp_path):
    path = tmp_path / "state.json"
    state = HostState("rig1", "10.213.0.11", "rfs11", "rigforge-rig1", "/img/trixie-0", release="trixie")
    state.save(path)
    assert json.loads(path.read_text())["release"] == "trixie"
    assert HostState.load(path) == state and HostState.load(path).release == "trixie"
    data = json.loads(path.read_text())
    del data["release"]  # written before releases were selectable
    path.write_text(json.dumps(data))
    assert HostState.load(path).release == "bookworm"


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


def test_host_keys_are_read_from_disk_without_comments(tmp_path):
    ssh = tmp_path / "etc/ssh"
    ssh.mkdir(parents=True)
    (ssh / "ssh_host_ecdsa_key.pub").write_text("ecdsa-sha2-nistp256 AAAAE2 root@rig1\n")
    (ssh / "ssh_host_ed25519_key.pub").write_text("ssh-ed25519 AAAAC3 root@rig1\n")
    keys = read_host_keys(tmp_path)
    assert keys == ("ssh-ed25519 AAAAC3", "ecdsa-sha2-nistp256 AAAAE2")
    host = SandboxHost("rig1", "10.213.0.11", 22, "rig", Path("/k"), keys, True, 5)
    assert host.known_hosts() == ("10.213.0.11 ssh-ed25519 AAAAC3\n10.213.0.11 ecdsa-sha2-nistp256 AAAAE2\n")
    other_port = SandboxHost("rig1", "10.213.0.11", 2222, "rig", Path("/k"), keys[:1], True, 5)
    assert other_port.known_hosts() == "[10.213.0.11]:2222 ssh-ed25519 AAAAC3\n"


def test_nspawn_command_line():
    argv = nspawn_argv("rig1", Path("/sb/merged"), "rigforge-rig1", Path("/sb/docker"))
    assert argv[:4] == ["systemd-nspawn", "--boot", "--register=no", "--keep-unit"]
    assert "--machine=rig1" in argv and "--directory=/sb/merged" in argv
    assert "--network-namespace-path=/run/netns/rigforge-rig1" in argv
    assert "--bind=/sb/docker:/var/lib/docker" in argv
    assert argv[-1] == "--console=read-only"


def test_state_dir_comes_from_argument_then_environment_then_default(monkeypatch, tmp_path):
    monkeypatch.delenv("RIGFORGE_SANDBOX_DIR", raising=False)
    assert SandboxManager().state_dir == Path("/var/lib/rigforge/sandbox")
    monkeypatch.setenv("RIGFORGE_SANDBOX_DIR", str(tmp_path / "env"))
    assert SandboxManager().state_dir == tmp_path / "env"
    assert SandboxManager(tmp_path / "arg").key_path == tmp_path / "arg" / "id_ed25519"


# --- preflight (monkeypatched: nothing is run or changed) --------------------------------


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


# --- the CLI (CliRunner; the backend is a stand-in) ----------------------------------------


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
    monkeypatch.setattr("provision.sandbox.get_backend", lambda name=None: backend)
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
    monkeypatch.setattr("provision.sandbox.get_backend", lambda name=None: backend)
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
    from provision.cli import main

    listed = json.loads(CliRunner().invoke(main, ["sandbox", "list", "--json"]).output)
    assert [(h["name"], h["release"]) for h in listed] == [("rig1", "bookworm"), ("rig2", "trixie")]
    text = CliRunner().invoke(main, ["sandbox", "list"]).output.splitlines()
    assert text[1].split() == ["rig2", "10.213.0.12", "trixie", "stopped"]
