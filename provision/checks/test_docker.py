"""Checks for the ``docker`` component: what the docker role promises, read from the host.

Plain HTTP for a Docker source: apt checks every index against the key in ``Signed-By``, so
the one plain-HTTP source accepted is the one the user chose by setting ``docker_repo_url``
to an ``http://`` mirror; that check is then skipped ("local mirror"), so the choice shows in
every report. Any other plain-HTTP Docker source fails.
"""

import json
import re
import shlex
from urllib.parse import urlsplit

import pytest

from provision.checks.packages import installed

pytestmark = pytest.mark.component("docker")

DAEMON_JSON = "/etc/docker/daemon.json"
SOURCES_DIR = "/etc/apt/sources.list.d"
DOCKER_HOST = "download.docker.com"
SOURCE_FILE = f"{SOURCES_DIR}/docker.sources"


def apt_sources(host) -> dict[str, str]:
    """``{path: text}`` of ``/etc/apt/sources.list`` and every file in ``sources.list.d``."""
    paths = host.run(f"ls -1 {SOURCES_DIR}/*.list {SOURCES_DIR}/*.sources 2>/dev/null").stdout.split()
    files = ["/etc/apt/sources.list", *paths]
    return {p: host.file(p).content_string for p in files if host.file(p).exists}


def deb822_stanzas(text: str) -> list[dict[str, str]]:
    """The stanzas of a ``.sources`` file as ``{field (lower case): value}``."""
    stanzas = []
    for block in re.split(r"\n\s*\n", text):
        fields, key = {}, None
        for line in block.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0].isspace() and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                key = key.strip().lower()
                fields[key] = value.strip()
        if fields:
            stanzas.append(fields)
    return stanzas


def one_line_uris(text: str) -> list[str]:
    """The URIs of the ``deb``/``deb-src`` lines of a one-line ``.list`` file."""
    uris = []
    for line in text.splitlines():
        words = shlex.split(re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]))
        if len(words) >= 2 and words[0] in ("deb", "deb-src"):
            uris.append(words[1])
    return uris


def sources_for(host, wanted) -> list[tuple[str, dict | None, str]]:
    """``(path, stanza or None for one-line, uri)`` for each source URI that ``wanted(uri)`` picks."""
    found = []
    for path, text in apt_sources(host).items():
        if path.endswith(".sources"):
            for stanza in deb822_stanzas(text):
                if stanza.get("enabled", "yes").lower() == "no":
                    continue
                found += [(path, stanza, uri) for uri in stanza.get("uris", "").split() if wanted(uri)]
        else:
            found += [(path, None, uri) for uri in one_line_uris(text) if wanted(uri)]
    return found


def same_url(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def configured_url(rig: dict, name: str) -> str | None:
    """A repository URL from the inventory, unless it is still a template (the role default)."""
    value = rig.get(name)
    return value if isinstance(value, str) and "{{" not in value else None


def check_signed_sources(host, sources) -> None:
    """Each source must be a deb822 stanza whose ``Signed-By`` names an existing keyring."""
    one_line = sorted({path for path, stanza, _ in sources if stanza is None})
    assert not one_line, f"one-line sources instead of deb822 .sources: {', '.join(one_line)}"
    unsigned = sorted({path for path, stanza, _ in sources if not stanza.get("signed-by")})
    assert not unsigned, f"sources without Signed-By: {', '.join(unsigned)}"
    for path, stanza, _ in sources:
        keyring = stanza["signed-by"]
        if keyring.startswith("/"):
            assert host.file(keyring).is_file, f"{path}: Signed-By keyring {keyring} is missing"


def check_no_plain_http(sources, mirror: str | None, mirror_var: str) -> None:
    plain = sorted({uri for _, _, uri in sources if urlsplit(uri).scheme == "http"})
    chosen = [uri for uri in plain if mirror and same_url(uri, mirror)]
    others = [uri for uri in plain if uri not in chosen]
    assert not others, f"plain-HTTP sources: {', '.join(others)} (use https, or set {mirror_var})"
    if chosen:
        pytest.skip(f"local mirror: {mirror_var} is plain HTTP ({chosen[0]}); apt still checks Signed-By")


def _docker_sources(host, rig):
    mirror = configured_url(rig, "docker_repo_url")
    return sources_for(
        host, lambda uri: DOCKER_HOST in uri or bool(mirror and same_url(uri, mirror))
    )


def _contains(actual, wanted) -> bool:
    """``wanted`` is in ``actual``: dicts recursively (the role merges), other values equal."""
    if isinstance(wanted, dict):
        return isinstance(actual, dict) and all(
            k in actual and _contains(actual[k], v) for k, v in wanted.items()
        )
    return actual == wanted


def _group_members(host, group: str) -> set[str]:
    """Members of ``group``: listed in it, or with it as their primary group."""
    entry = host.run(f"getent group {group}")
    if entry.rc != 0:
        return set()
    _, _, gid, listed = entry.stdout.strip().split(":", 3)
    members = {m for m in listed.split(",") if m}
    for line in host.check_output("getent passwd").splitlines():
        fields = line.split(":")
        if len(fields) > 3 and fields[3] == gid:
            members.add(fields[0])
    return members


def test_docker_service_is_running_and_enabled(host):
    from provision.checks.services import assert_running_and_enabled

    assert_running_and_enabled(host, "docker")


def test_docker_daemon_answers(host):
    out = host.run("docker info --format '{{.ServerVersion}}'")
    assert out.rc == 0 and out.stdout.strip(), (
        f"docker info failed (rc {out.rc}): {(out.stderr or out.stdout).strip()[:200]}"
    )


def test_docker_packages_match_the_source(host, rig):
    packages = {
        "docker-ce": ["docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin",
                      "docker-compose-plugin"],
        "distro": ["docker.io"],
    }[rig["docker_source"]]
    present = installed(host, packages)
    missing = [name for name in packages if name not in present]
    assert not missing, f"docker_source is {rig['docker_source']}, but not installed: {', '.join(missing)}"


def test_daemon_options_are_in_daemon_json(host, rig):
    wanted = rig.get("docker_daemon_options") or {}
    if not wanted:
        pytest.skip("docker_daemon_options is empty")
    daemon_json = host.file(DAEMON_JSON)
    assert daemon_json.exists, f"{DAEMON_JSON} is missing"
    try:
        config = json.loads(daemon_json.content_string)
    except ValueError as exc:
        pytest.fail(f"{DAEMON_JSON} is not valid JSON: {exc}")
    wrong = sorted(k for k, v in wanted.items() if not _contains(config.get(k), v))
    assert not wrong, (
        f"{DAEMON_JSON} lacks docker_daemon_options "
        + ", ".join(f"{k}={json.dumps(wanted[k])} (found {json.dumps(config.get(k))})" for k in wrong)
    )


def test_docker_group_holds_only_docker_users(host, rig):
    """The docker group is root-equivalent: its members must be exactly the listed users."""
    listed = set(rig.get("docker_users") or [])
    wanted = {user for user in listed if host.user(user).exists}
    members = _group_members(host, "docker")
    extra, missing = sorted(members - wanted), sorted(wanted - members)
    assert not extra, f"not in docker_users but in the root-equivalent docker group: {', '.join(extra)}"
    assert not missing, f"in docker_users but not in the docker group: {', '.join(missing)}"


def test_docker_sources_are_deb822_and_signed(host, rig):
    sources = _docker_sources(host, rig)
    if rig["docker_source"] == "docker-ce":
        assert host.file(SOURCE_FILE).exists, f"{SOURCE_FILE} is missing (docker_source is docker-ce)"
        assert sources, f"{SOURCE_FILE} names no Docker repository"
    elif not sources:
        pytest.skip("docker_source is distro and no Docker repository is configured")
    check_signed_sources(host, sources)


def test_docker_sources_use_https(host, rig):
    sources = _docker_sources(host, rig)
    if not sources:
        pytest.skip("no Docker repository is configured (docker_source is distro)")
    check_no_plain_http(sources, configured_url(rig, "docker_repo_url"), "docker_repo_url")
