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
    "v0.33.3/ollama-linux-amd64.tar.zst": b"ollama amd64 0.33.3",
    "v0.33.3/ollama-linux-arm64.tar.zst": b"ollama arm64 0.33.3",
    "v0.34.0/ollama-linux-amd64.tar.zst": b"ollama amd64 0.34.0",
    "v0.34.0/ollama-linux-arm64.tar.zst": b"ollama arm64 0.34.0",
    "26.3.2-3/Miniforge3-26.3.2-3-Linux-x86_64.sh": b"miniforge x86_64",
    "26.3.2-3/Miniforge3-26.3.2-3-Linux-aarch64.sh": b"miniforge aarch64",
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files() -> dict[str, bytes]:
    files = dict(ARTIFACTS)
    for version in ("v0.33.3", "v0.34.0"):
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
        '{{ ansible_facts.architecture }}.sh"\n'))
    return workspace


def test_pins_are_fetched_checked_and_written_with_the_comments_kept(cli, mirrored):
    result = cli("pins", "update", "ollama", "--version", "0.33.3", "--yes")
    assert result.exit_code == 0, result.output
    amd64 = sha(ARTIFACTS["v0.33.3/ollama-linux-amd64.tar.zst"])
    assert f"ollama 0.33.3 amd64: (none) -> {amd64}" in result.output
    assert "/v0.33.3/sha256sum.txt" in result.output
    text = (mirrored.root / "inventory" / "group_vars" / "all.yml").read_text()
    assert "# the release mirror" in text
    import yaml

    written = yaml.safe_load(text)
    assert written["ollama_version"] == "0.33.3"
    assert written["ollama_sha256_pins"]["0.33.3"] == {
        "amd64": sha(ARTIFACTS["v0.33.3/ollama-linux-amd64.tar.zst"]),
        "arm64": sha(ARTIFACTS["v0.33.3/ollama-linux-arm64.tar.zst"])}
    again = cli("pins", "update", "ollama", "--version", "0.33.3", "--yes")
    assert again.exit_code == 0 and "already pinned" in again.output


def test_miniforge_pins_come_from_the_sha256_files(cli, mirrored):
    result = cli("pins", "update", "conda", "--yes", "--json")
    assert result.exit_code == 0, result.output
    import yaml

    written = yaml.safe_load((mirrored.root / "inventory" / "group_vars" / "all.yml").read_text())
    assert written["conda_installer_sha256_pins"]["26.3.2-3"]["aarch64"] == sha(
        ARTIFACTS["26.3.2-3/Miniforge3-26.3.2-3-Linux-aarch64.sh"])


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
    result = cli("pins", "update", "ollama", "--version", "0.33.3")
    assert result.exit_code == 2 and "pass --yes" in result.output
    assert snapshot(mirrored.root) == before


def test_plain_http_is_refused():
    with pytest.raises(UsageError, match="over HTTPS only"):
        pins.https_get("http://127.0.0.1:1/sha256sum.txt")


def test_a_github_release_is_checked_against_githubs_own_digest():
    url = "https://github.com/ollama/ollama/releases/download/v0.33.3/ollama-linux-amd64.tar.zst"
    good, bad = "a" * 64, "b" * 64
    api = "https://api.github.com/repos/ollama/ollama/releases/tags/v0.33.3"

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
    for path in (roles / role / "defaults" / "main.yml", roles / role / "vars" / "main.yml"):
        merged.update(loader.load_from_file(str(path), trusted_as_template=True) or {})
    merged.update(variables)
    validate._loader()  # the plugin loader, once
    return Templar(loader=loader, variables=merged).template(trust_as_template("{{ " + expression + " }}"))


def test_the_roles_take_their_checksum_from_the_pins():
    pinned = {"0.33.3": {"amd64": "c" * 64, "arm64": "d" * 64}}
    facts = {"architecture": "aarch64"}
    assert _role_value("ollama", "ollama_sha256", ollama_sha256_pins=pinned, ansible_facts=facts) == "d" * 64
    assert _role_value("ollama", "ollama_sha256", ansible_facts=facts) == ""
    own = {"26.3.2-3": {"x86_64": "e" * 64}}
    x86 = {"architecture": "x86_64"}
    assert _role_value("conda", "conda_installer_sha256", conda_installer_sha256_pins=own,
                       ansible_facts=x86) == "e" * 64
    # Without the workspace's pins, the checksum shipped with the role.
    assert _role_value("conda", "conda_installer_sha256", ansible_facts=x86) == (
        "848194851a98903134187fbb4ab50efe87b003e0c0f808f97644b7524a62bf2c")
