"""Checks for the ``ollama`` component: the service the ollama role promises, read from the host."""

import json
import re

import pytest

pytestmark = pytest.mark.component("ollama")

# CVE-2026-7482 is fixed in 0.17.1 (CVE-2024-37032 in 0.1.34).
MIN_VERSION = (0, 17, 1)
DEFAULT_PORT = 11434
WILDCARDS = {"0.0.0.0", "::", "*"}


def bind_address(ollama_host: str) -> tuple[str, int]:
    """``OLLAMA_HOST`` -> (address, port).

    >>> bind_address("[::1]:8080")
    ('::1', 8080)
    """
    value = re.sub(r"^https?://", "", ollama_host.strip())
    match = re.fullmatch(r"\[(?P<v6>[^\]]+)\](?::(?P<p6>\d+))?|(?P<addr>[^:]*)(?::(?P<port>\d+))?", value)
    if not match:
        raise ValueError(f"cannot parse ollama_host {ollama_host!r}")
    address = match["v6"] or match["addr"] or "127.0.0.1"
    return address, int(match["p6"] or match["port"] or DEFAULT_PORT)


def api_url(ollama_host: str) -> str:
    """Where the API answers from the host itself (a wildcard bind through loopback)."""
    address, port = bind_address(ollama_host)
    address = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(address, address)
    return f"http://{f'[{address}]' if ':' in address else address}:{port}"


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.match(r"\d+(?:\.\d+)*", text).group().split("."))


def listeners(ss_output: str, port: int) -> set[str]:
    """Local addresses listening on ``port`` in ``ss -ltnH`` output (brackets and %iface dropped)."""
    found = set()
    for line in ss_output.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        address, _, local_port = fields[3].rpartition(":")
        if local_port == str(port):
            found.add(address.strip("[]").split("%")[0])
    return found


def model_name(name: str) -> str:
    """``llama3.2`` -> ``llama3.2:latest``: how ``ollama list`` and /api/tags name a model."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def api_get(host, rig, path: str) -> dict:
    url = api_url(rig["ollama_host"]) + path
    result = host.run(
        "python3 -c 'import sys, urllib.request; "
        "print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' %s", url
    )
    assert result.rc == 0, f"GET {url} failed on the host: {result.stderr.strip().splitlines()[-1:]}"
    return json.loads(result.stdout)


def test_service_is_running_and_enabled(host):
    from provision.checks.services import assert_running_and_enabled

    assert_running_and_enabled(host, "ollama", look="journalctl -u ollama")


def test_service_runs_as_the_ollama_user(host):
    pid = host.check_output("systemctl show --property=MainPID --value ollama")
    user = host.check_output(f"ps -o user= -p {pid}") if pid not in ("", "0") else ""
    assert user == "ollama", f"ollama serve runs as {user or 'nobody (not running)'}, not as ollama"


def test_listens_only_on_the_configured_address(host, rig):
    address, port = bind_address(rig["ollama_host"])
    found = listeners(host.check_output("ss -ltnH"), port)
    assert found, f"nothing listens on port {port}"
    if address in WILDCARDS:
        return
    exposed = found & WILDCARDS
    assert not exposed, f"port {port} listens on {', '.join(sorted(exposed))}, not only {address}"
    others = found - ({"127.0.0.1", "::1"} if address == "localhost" else {address})
    assert not others, f"port {port} also listens on {', '.join(sorted(others))}, not only {address}"


def test_api_reports_the_pinned_version(host, rig):
    version, pinned = api_get(host, rig, "/api/version").get("version"), rig["ollama_version"]
    assert version == pinned, f"Ollama serves {version}, ollama_version is {pinned}"


def test_installed_version_is_not_vulnerable(host):
    # "client version is" appears when the binary differs from the server, or no server answers.
    out = host.check_output("ollama --version")
    match = re.search(r"client version is (\S+)", out) or re.search(r"ollama version is (\S+)", out)
    assert match, f"unexpected `ollama --version` output: {out!r}"
    assert version_tuple(match.group(1)) >= MIN_VERSION, (
        f"the installed Ollama {match.group(1)} is below 0.17.1 (CVE-2026-7482, CVE-2024-37032)"
    )


def test_models_are_present(host, rig):
    wanted = [model_name(m) for m in rig.get("ollama_models") or []]
    if not wanted:
        pytest.skip("ollama_models is empty")
    have = {m["name"] for m in api_get(host, rig, "/api/tags")["models"]}
    missing = [m for m in wanted if m not in have]
    assert not missing, f"models missing from Ollama: {', '.join(missing)}"


def test_ollama_reports_the_gpu(host):
    from provision.checks.gpu import nvidia_gpus

    if not nvidia_gpus(host):
        pytest.skip("no NVIDIA GPU on this host (lspci)")
    # Only what the running server logged: its GPU discovery happens once, at start.
    invocation = host.check_output("systemctl show --property=InvocationID --value ollama")
    journal = host.check_output(f"journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID={invocation}")
    compute = [line for line in journal.splitlines() if "inference compute" in line]
    assert any(re.search(r"library=cuda", line, re.IGNORECASE) for line in compute), (
        "Ollama does not use the NVIDIA GPU: "
        + (compute[-1].strip() if compute else "no 'inference compute' line in its journal since it started")
    )
