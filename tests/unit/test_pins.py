"""`rigforge pins update` against a local HTTPS server (loopback, a certificate made for the
test) that serves checksum files and artifacts the way a release mirror does, one of them
tampered; and the roles' lookup of the pins it writes."""

import hashlib
import http.server
import json
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from provision import pins
from provision.errors import UsageError
from tests.conftest import snapshot

ARTIFACTS = {
    "v0.36.0/ollama-linux-amd64.tar.zst": b"ollama amd64 0.36.0",
    "v0.36.0/ollama-linux-arm64.tar.zst": b"ollama arm64 0.36.0",
    "v0.34.0/ollama-linux-amd64.tar.zst": b"ollama amd64 0.34.0",
    "v0.34.0/ollama-linux-arm64.tar.zst": b"ollama arm64 0.34.0",
    "26.9.1-0/Miniforge3-26.9.1-0-Linux-x86_64.sh": b"miniforge x86_64",
    "26.9.1-0/Miniforge3-26.9.1-0-Linux-aarch64.sh": b"miniforge aarch64",
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _make_key(name: str) -> tuple[bytes, str]:
    """A fresh OpenPGP key (armoured public key, fingerprint), made in a throwaway gpg home."""
    import tempfile

    with tempfile.TemporaryDirectory() as home:
        gpg = ["gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
        subprocess.run([*gpg, "--quick-gen-key", f"{name} <{name}@example.invalid>", "ed25519", "sign", "1d"],
                       check=True, capture_output=True)
        armoured = subprocess.run([*gpg, "--armor", "--export"], check=True, capture_output=True).stdout
    return armoured, pins.key_fingerprints(armoured)[0]


# Stand-ins for NVIDIA's key (made here: the real key cannot be fetched from these machines).
TOOLKIT_KEY = _make_key("toolkit-standin")
OTHER_KEY = _make_key("someone-else")


# A mirror serving "0.33.3" whose archives are not the published ones (its own sha256sum.txt
# agrees with them): only the pins shipped with rigforge can tell.
NOT_PUBLISHED = {
    "v0.33.3/ollama-linux-amd64.tar.zst": b"not ollama 0.33.3",
    "v0.33.3/ollama-linux-arm64.tar.zst": b"not ollama 0.33.3 either",
}


def _files() -> dict[str, bytes]:
    files = {**ARTIFACTS, **NOT_PUBLISHED}
    files["v0.33.3/sha256sum.txt"] = "".join(
        f"{sha(body)}  ./{path.split('/')[1]}\n" for path, body in NOT_PUBLISHED.items()).encode()
    files["gpgkey"] = TOOLKIT_KEY[0]
    files["otherkey"] = OTHER_KEY[0]
    for version in ("v0.36.0", "v0.34.0"):
        lines = [f"{sha(body)}  ./{path.split('/')[1]}" for path, body in ARTIFACTS.items()
                 if path.startswith(version)]
        files[f"{version}/sha256sum.txt"] = ("\n".join(lines) + "\n").encode()
    # 0.34.0's amd64 entry is tampered with: it names a hash the archive does not have.
    files["v0.34.0/sha256sum.txt"] = files["v0.34.0/sha256sum.txt"].replace(
        sha(ARTIFACTS["v0.34.0/ollama-linux-amd64.tar.zst"]).encode(), b"0" * 64)
    for path, body in ARTIFACTS.items():
        if "Miniforge" in path:
            files[path + ".sha256"] = f"{sha(body)}  {path.split('/')[1]}\n".encode()
    return files


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """https://127.0.0.1:PORT/ serving _files(), trusted through SSL_CERT_FILE."""
    tmp = tmp_path_factory.mktemp("https")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    files = _files()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = files.get(self.path.lstrip("/"))
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(body or b"not found")

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}", cert
    httpd.shutdown()


@pytest.fixture
def mirrored(workspace, server, monkeypatch):
    base, cert = server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    path = workspace.root / "inventory" / "group_vars" / "all.yml"
    path.write_text(path.read_text() + (
        "# the release mirror\n"
        f'ollama_url: "{base}/v{{{{ ollama_version }}}}/ollama-linux-{{{{ __ollama_arch }}}}.tar.zst"\n'
        f'conda_installer_url: "{base}/{{{{ conda_version }}}}/Miniforge3-{{{{ conda_version }}}}-Linux-'
        '{{ ansible_facts.architecture }}.sh"\n'
        f'nvidia_container_toolkit_repo_key_url: "{base}/gpgkey"\n'))
    return workspace


def test_pins_are_fetched_checked_and_written_with_the_comments_kept(cli, mirrored):
    result = cli("pins", "update", "ollama", "--version", "0.36.0", "--yes")
    assert result.exit_code == 0, result.output
    amd64 = sha(ARTIFACTS["v0.36.0/ollama-linux-amd64.tar.zst"])
    assert f"ollama 0.36.0 amd64: (none) -> {amd64}" in result.output
    assert "/v0.36.0/sha256sum.txt" in result.output
    text = (mirrored.root / "inventory" / "group_vars" / "all.yml").read_text()
    assert "# the release mirror" in text
    import yaml

    written = yaml.safe_load(text)
    assert written["ollama_version"] == "0.36.0"
    assert written["ollama_sha256_pins"]["0.36.0"] == {
        "amd64": sha(ARTIFACTS["v0.36.0/ollama-linux-amd64.tar.zst"]),
        "arm64": sha(ARTIFACTS["v0.36.0/ollama-linux-arm64.tar.zst"])}
    again = cli("pins", "update", "ollama", "--version", "0.36.0", "--yes")
    assert again.exit_code == 0 and "already pinned" in again.output


def test_miniforge_pins_come_from_the_sha256_files(cli, mirrored):
    result = cli("pins", "update", "conda", "--version", "26.9.1-0", "--yes", "--json")
    assert result.exit_code == 0, result.output
    import yaml

    written = yaml.safe_load((mirrored.root / "inventory" / "group_vars" / "all.yml").read_text())
    assert written["conda_installer_sha256_pins"]["26.9.1-0"]["aarch64"] == sha(
        ARTIFACTS["26.9.1-0/Miniforge3-26.9.1-0-Linux-aarch64.sh"])


@pytest.mark.parametrize(("args", "needle"), [
    (["ollama", "--version", "0.34.0"], "the checksums of ollama-linux-amd64.tar.zst disagree"),
    (["ollama", "--version", "0.17.0"], "Ollama 0.17.0 is below 0.17.1"),
    (["ollama", "--version", "0.35.0"], "answered HTTP 404"),
    (["ollama", "--version", "v1"], "is not a ollama release number"),
    (["warp"], "rigforge has no pins for 'warp'"),
])
def test_refusals_write_nothing(cli, mirrored, args, needle):
    before = snapshot(mirrored.root)
    result = cli("pins", "update", *args, "--yes")
    assert result.exit_code == 2, result.output
    assert needle in result.output
    assert snapshot(mirrored.root) == before


def test_without_a_terminal_it_asks_for_yes(cli, mirrored):
    before = snapshot(mirrored.root)
    result = cli("pins", "update", "ollama", "--version", "0.36.0")
    assert result.exit_code == 2 and "pass --yes" in result.output
    assert snapshot(mirrored.root) == before


def test_plain_http_is_refused():
    with pytest.raises(UsageError, match="over HTTPS only"):
        pins.https_get("http://127.0.0.1:1/sha256sum.txt")


def test_a_github_release_is_checked_against_githubs_own_digest():
    url = "https://github.com/ollama/ollama/releases/download/v0.36.0/ollama-linux-amd64.tar.zst"
    good, bad = "a" * 64, "b" * 64
    api = "https://api.github.com/repos/ollama/ollama/releases/tags/v0.36.0"

    def fetch(answers):
        return lambda u: answers[u]

    sums = {url.rsplit("/", 1)[0] + "/sha256sum.txt": f"{good}  ollama-linux-amd64.tar.zst\n".encode()}
    agree = {**sums, api: json.dumps({"assets": [{"name": "ollama-linux-amd64.tar.zst",
                                                   "digest": f"sha256:{good}"}]}).encode()}
    assert pins._checksum("ollama", url, fetch(agree)) == (good, [
        url.rsplit("/", 1)[0] + "/sha256sum.txt", "GitHub's release digest of ollama-linux-amd64.tar.zst"])
    disagree = {**sums, api: json.dumps({"assets": [{"name": "ollama-linux-amd64.tar.zst",
                                                      "digest": f"sha256:{bad}"}]}).encode()}
    with pytest.raises(UsageError, match="disagree"):
        pins._checksum("ollama", url, fetch(disagree))


def _role_value(role: str, expression: str, **variables):
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    from provision import validate

    loader = DataLoader()
    roles = Path(__file__).resolve().parents[2] / "roles"
    merged = {}
    for path in (roles / "pins" / "vars" / "main.yml", roles / role / "defaults" / "main.yml",
                 roles / role / "vars" / "main.yml"):
        merged.update(loader.load_from_file(str(path), trusted_as_template=True) or {})
    merged.update(variables)
    validate._loader()  # the plugin loader, once
    return Templar(loader=loader, variables=merged).template(trust_as_template("{{ " + expression + " }}"))


def test_the_roles_take_their_checksum_from_the_pins():
    pinned = {"0.33.3": {"amd64": "c" * 64, "arm64": "d" * 64}}
    facts = {"architecture": "aarch64"}
    assert _role_value("ollama", "ollama_sha256", ollama_sha256_pins=pinned, ansible_facts=facts) == "d" * 64
    # Without the workspace's pins, the checksum shipped in roles/pins for the default release,
    # for its archive format only.
    assert _role_value("ollama", "ollama_sha256", ansible_facts=facts) == (
        "4425a112af999ae6572c1ce211fbabeaca7bab23ed5860972acdfc0cc2358420")
    assert _role_value("ollama", "ollama_sha256", ansible_facts={"architecture": "x86_64"}) == (
        "c13cea8f3389db4145f8a6cb88d1747242a48639d7c13e3bda7c1ebdc6eebb2f")
    assert _role_value("ollama", "ollama_sha256", ansible_facts=facts,
                       ollama_url="https://mirror.example/ollama-linux-arm64.tgz") == ""
    assert _role_value("ollama", "ollama_sha256", ansible_facts=facts, ollama_version="0.34.4") == ""
    own = {"26.3.2-3": {"x86_64": "e" * 64}}
    x86 = {"architecture": "x86_64"}
    assert _role_value("conda", "conda_installer_sha256", conda_installer_sha256_pins=own,
                       ansible_facts=x86) == "e" * 64
    # Without the workspace's pins, the checksum shipped with the role.
    assert _role_value("conda", "conda_installer_sha256", ansible_facts=x86) == (
        "848194851a98903134187fbb4ab50efe87b003e0c0f808f97644b7524a62bf2c")


def test_a_mirror_that_serves_other_bytes_than_the_published_release_is_refused(cli, mirrored):
    """The mirror's checksum file and its archives agree, but not with the published release:
    the pins shipped with rigforge (roles/pins) are the second source."""
    before = snapshot(mirrored.root)
    result = cli("pins", "update", "ollama", "--version", "0.33.3", "--yes")
    assert result.exit_code == 2, result.output
    assert "the pin shipped with rigforge for ollama 0.33.3 amd64 is c13cea8f" in result.output
    assert snapshot(mirrored.root) == before


def _pin_fingerprint(workspace, fingerprint: str) -> None:
    path = workspace.root / "inventory" / "group_vars" / "all.yml"
    path.write_text(path.read_text() + f"nvidia_container_toolkit_repo_key_fingerprint: {fingerprint}\n")


def test_nvidias_key_must_have_the_pinned_fingerprint(cli, mirrored):
    before = snapshot(mirrored.root)
    result = cli("pins", "update", "nvidia_container_toolkit", "--yes")
    assert result.exit_code == 2, result.output
    assert f"is {TOOLKIT_KEY[1]}, not the pinned C95B321B61E88C1809C4F759DDCAE044F796ECB0" in result.output
    assert "needs a second source" in result.output
    assert snapshot(mirrored.root) == before


def test_a_key_with_the_pinned_fingerprint_gets_its_file_pinned_too(cli, mirrored):
    import yaml

    _pin_fingerprint(mirrored, TOOLKIT_KEY[1])  # the user confirmed their mirror's key
    result = cli("pins", "update", "nvidia_container_toolkit", "--yes", "--json")
    assert result.exit_code == 0, result.output
    written = yaml.safe_load((mirrored.root / "inventory" / "group_vars" / "all.yml").read_text())
    assert written["nvidia_container_toolkit_repo_key_sha256"] == sha(TOOLKIT_KEY[0])
    assert written["nvidia_container_toolkit_repo_key_fingerprint"] == TOOLKIT_KEY[1]
    again = cli("pins", "update", "nvidia_container_toolkit", "--yes")
    assert again.exit_code == 0 and "already pinned" in again.output


def test_a_served_key_that_is_another_key_is_refused(cli, mirrored):
    _pin_fingerprint(mirrored, TOOLKIT_KEY[1])
    path = mirrored.root / "inventory" / "group_vars" / "all.yml"
    path.write_text(path.read_text().replace("/gpgkey", "/otherkey"))
    before = snapshot(mirrored.root)
    result = cli("pins", "update", "nvidia_container_toolkit", "--yes")
    assert result.exit_code == 2 and f"is {OTHER_KEY[1]}, not the pinned {TOOLKIT_KEY[1]}" in result.output
    assert snapshot(mirrored.root) == before


def test_the_pins_file_is_the_one_home_of_every_default_download():
    """Versions equal the roles' defaults, every checksum is 64 hex digits, every item cites a
    source, and the roles read their pins from it rather than a copy."""
    import re

    import yaml

    roles = Path(__file__).resolve().parents[2] / "roles"
    shipped = yaml.safe_load((roles / "pins" / "vars" / "main.yml").read_text())["pins_shipped"]
    defaults = {r: yaml.safe_load((roles / r / "defaults" / "main.yml").read_text())
                for r in ("ollama", "conda")}
    assert shipped["ollama"]["version"] == defaults["ollama"]["ollama_version"]
    assert shipped["miniforge"]["version"] == defaults["conda"]["conda_version"]
    for item in ("ollama", "miniforge"):
        arches = shipped[item]["sha256"][shipped[item]["version"]]
        assert set(arches) == set(pins.ARCHES["ollama" if item == "ollama" else "conda"]), item
    for name, item in shipped.items():
        if name == "checked":
            continue
        assert item.get("source"), name
        for value in _leaves(item.get("sha256", {})):
            assert re.fullmatch(r"[0-9a-f]{64}", value), (name, value)
    for name in ("docker_key", "nvidia_container_toolkit_key"):
        assert re.fullmatch(r"[0-9A-F]{40}", shipped[name]["fingerprint"]), name
    texts = "".join(p.read_text() for p in roles.glob("*/*/main.yml") if "pins" not in p.parts)
    for value in _leaves({k: v.get("sha256") for k, v in shipped.items() if isinstance(v, dict)}):
        assert value not in texts, f"{value} has a second copy outside roles/pins"


def _leaves(tree):
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _leaves(value)
    elif tree:
        yield tree
