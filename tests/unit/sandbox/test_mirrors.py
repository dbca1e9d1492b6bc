"""provision.sandbox.mirrors: the Debian archives and DNS resolvers read from this machine."""

from pathlib import Path

import pytest

from provision.errors import SandboxSetupError
from provision.sandbox.image import RELEASES
from provision.sandbox.mirrors import (
    Mirrors,
    apt_source_uris,
    archives,
    fence,
    find_mirrors,
    host_nameservers,
    nameservers_v4,
    pick_archive,
    uris_from_deb822,
    uris_from_one_line,
    uris_of_files,
)
from provision.sandbox.network import mirror_firewall_targets

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


def test_deb822_field_names_are_case_blind_and_other_types_are_skipped():
    text = (
        "types: deb\nuris: http://a.example/debian\nENABLED: Yes\n\n"
        "Types: udeb\nURIs: http://udeb.example/debian\n\n"
        "Types: deb-src\nURIs: http://src.example/debian\nEnabled: NO\n"
    )
    assert uris_from_deb822(text) == ["http://a.example/debian"]


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


def test_apt_source_uris_read_the_main_list_first_then_the_d_files_by_name(tmp_path):
    apt = _apt_dir(
        tmp_path,
        {
            "sources.list": "deb http://main.example/debian bookworm main\n",
            "sources.list.d/b.list": "deb http://b.example/debian bookworm main\n",
            "sources.list.d/a.sources": "Types: deb\nURIs: http://a.example/debian\n",
            "sources.list.d/c.list.save": "deb http://saved.example/debian bookworm main\n",
        },
    )
    assert apt_source_uris(apt) == [
        "http://main.example/debian",
        "http://a.example/debian",
        "http://b.example/debian",
    ]
    assert apt_source_uris(tmp_path / "missing") == []


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


def test_a_security_mirror_override_must_be_a_url_too(tmp_path):
    env = {"RIGFORGE_SANDBOX_MIRROR": "http://a.example/debian",
           "RIGFORGE_SANDBOX_SECURITY_MIRROR": "ftp://b.example/debian-security"}
    with pytest.raises(SandboxSetupError, match="RIGFORGE_SANDBOX_SECURITY_MIRROR") as err:
        find_mirrors(tmp_path, env=env)
    assert "http://MIRROR/debian" in err.value.hint


def test_mirrors_give_sources_lines_and_firewall_endpoints():
    m = Mirrors("http://a.example/debian", "https://b.example:8443/debian-security")
    assert m.sources_lines("bookworm", ["main", "contrib"]) == [
        "deb http://a.example/debian bookworm main contrib",
        "deb http://a.example/debian bookworm-updates main contrib",
        "deb https://b.example:8443/debian-security bookworm-security main contrib",
    ]
    assert m.endpoints() == [("a.example", None), ("b.example", 8443)]
    assert len(Mirrors("http://a.example/debian").sources_lines("bookworm", ["main"])) == 2


def test_endpoints_name_a_shared_host_once():
    m = Mirrors("http://a.example/debian", "http://a.example/debian-security")
    assert m.uris() == ("http://a.example/debian", "http://a.example/debian-security")
    assert m.endpoints() == [("a.example", None)]
    assert Mirrors("http://a.example/debian").uris() == ("http://a.example/debian",)


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


def test_a_nameserver_line_that_is_no_address_is_skipped():
    assert nameservers_v4("nameserver\nnameserver dns.example\nnameserver 192.0.2.9\n") == ["192.0.2.9"]


def test_resolved_stub_falls_back_to_its_upstream_list(tmp_path):
    stub, upstream = tmp_path / "stub", tmp_path / "upstream"
    stub.write_text("nameserver 127.0.0.53\n")
    upstream.write_text("nameserver 192.0.2.1\n")
    assert host_nameservers([stub, upstream]) == ["192.0.2.1"]
    assert host_nameservers([stub, tmp_path / "missing"]) == []


def test_the_fence_adds_every_image_hosts_archives_once():
    base = Mirrors("http://a.example/debian")
    got = fence(lambda: base, [["http://u.example/ubuntu"], [], ["http://u.example/ubuntu", "http://s.example/x"]])
    assert got.uris() == ("http://a.example/debian", "http://u.example/ubuntu", "http://s.example/x")
    assert fence(lambda: base, []) == base


def test_the_fence_needs_no_debian_archive_when_only_image_hosts_need_one():
    def nothing():
        raise SandboxSetupError("no Debian archive found")

    assert fence(nothing, [["http://u.example/ubuntu"]]).uris() == ("http://u.example/ubuntu",)
    with pytest.raises(SandboxSetupError, match="no Debian archive"):
        fence(nothing, [[]])


def test_uris_of_files_reads_each_file_by_its_format_and_archives_keeps_http_only():
    files = [("sources.list", "deb http://a.example/debian bookworm main\n"),
             ("x.sources", "Types: deb\nURIs: https://b.example/ubuntu/\nSuites: noble\n"),
             ("notes.txt", "deb http://c.example/debian bookworm main\n")]
    uris = uris_of_files(files)
    assert uris == ["http://a.example/debian", "https://b.example/ubuntu/"]
    assert archives([*uris, "file:/srv/repo", "cdrom:[x]/", "http://a.example/debian/"]) == [
        "http://a.example/debian", "https://b.example/ubuntu"]
