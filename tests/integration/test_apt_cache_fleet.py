"""The fleet apt cache on real sandbox hosts, with plain ansible-playbook from the workspace.

Two hosts of their own in one workspace: the cache host gets role apt_cache
(playbooks/apt_cache.yml), the client gets role base with rigforge_apt_proxy pointing at it.
Everything is real: apt-cacher-ng and the packages come from Debian's archive through the
sandbox firewall, and the client reaches the cache over the sandbox bridge.

The tests share the hosts and run in file order.
"""

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import Rig, rigforge
from tests.workspaces import select_base_only

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PORT = 3142
PROXY_FILE = "/etc/apt/apt.conf.d/01rigforge-proxy"
CACHE_DIR = "/var/cache/apt-cacher-ng"
ACNG_LOG = "/var/log/apt-cacher-ng/apt-cacher.log"
# In base_packages; the cache host never installs it, so its .deb in the cache can only have
# been fetched for the client.
PROBE_PACKAGE = "jq"


@dataclass
class Pair:
    workspace: Path
    cache: Rig
    client: Rig
    cache_address: str
    client_address: str

    @property
    def proxy(self) -> str:
        return f"http://{self.cache_address}:{PORT}"


@dataclass
class Play:
    rc: int
    out: str
    changed: int


def play(workspace: Path, *args: str, extra: dict | None = None) -> Play:
    """Plain ``ansible-playbook ARGS`` from the workspace, as a user without rigforge runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "RIGFORGE_"))}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    argv = ["ansible-playbook", *args] + (["-e", json.dumps(extra)] if extra else [])
    proc = subprocess.run(argv, cwd=workspace, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=1500, check=False)
    changed = re.findall(r"^\S+\s+: ok=\d+\s+changed=(\d+)", proc.stdout, re.MULTILINE)
    return Play(proc.returncode, proc.stdout + proc.stderr, sum(int(c) for c in changed))


def applied(result: Play) -> Play:
    assert result.rc == 0, result.out[-5000:]
    return result


def sudo(host: Rig, command: str, check: bool = True) -> str:
    return host.ssh(f"sudo -n sh -c {shlex.quote(command)}", check=check).stdout


def set_proxy(pair: Pair, value: str) -> None:
    host_vars = pair.workspace / "inventory" / "host_vars"
    host_vars.mkdir(parents=True, exist_ok=True)
    (host_vars / f"{pair.client.name}.yml").write_text(yaml.safe_dump({"rigforge_apt_proxy": value}))


def provision_client(pair: Pair) -> Play:
    return play(pair.workspace, "site.yml", "--limit", pair.client.name)


def apt_state(host: Rig) -> str:
    """What a refused run must leave alone: the apt configuration and the package set."""
    return sudo(host, "ls -l --time-style=+%s /etc/apt/apt.conf.d; "
                      "dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}\\n'")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A cache host and a client in one fresh workspace; both destroyed afterwards."""
    workspace = tmp_path_factory.mktemp("integration-apt-cache") / "ws"
    rigforge(workspace, "init", str(workspace))
    select_base_only(workspace)
    tag = f"it{os.getpid() % 100000}"
    names = [f"{tag}ac", f"{tag}cl"]
    started = []
    try:
        for name in names:
            started.append(name)
            rigforge(workspace, "sandbox", "up", name, timeout=600)
        listed = json.loads(rigforge(workspace, "sandbox", "list", "--json").stdout)
        address = {h["name"]: h["address"] for h in listed}
        yield Pair(workspace, Rig(workspace, names[0]), Rig(workspace, names[1]),
                   address[names[0]], address[names[1]])
    finally:
        for name in reversed(started):
            rigforge(workspace, "sandbox", "down", name, check=False)


def test_playbook_refuses_to_run_on_no_host(pair):
    # No group apt_cache in the inventory and no -e apt_cache_hosts: Ansible alone would
    # skip the play, exit 0 and look as if the cache had been set up.
    result = play(pair.workspace, "playbooks/apt_cache.yml")
    assert result.rc != 0, result.out[-3000:]
    assert 'No host of this run is in "apt_cache"' in result.out
    assert "apt_cache_hosts=NAME" in result.out
    for host in (pair.cache, pair.client):
        assert host.ssh("dpkg -s apt-cacher-ng", check=False).returncode != 0, host.name


def test_check_mode_on_a_fresh_cache_host_plans_and_changes_nothing(pair):
    # The fresh host's apt lists are empty: without the index refresh, check mode fails
    # with "No package matching 'apt-cacher-ng'".
    result = applied(play(pair.workspace, "playbooks/apt_cache.yml", "--check",
                          extra={"apt_cache_hosts": pair.cache.name}))
    assert result.changed > 0
    assert pair.cache.ssh("dpkg -s apt-cacher-ng", check=False).returncode != 0


def test_cache_host_converges_and_serves_the_other_host(pair):
    extra = {"apt_cache_hosts": pair.cache.name}
    first = applied(play(pair.workspace, "playbooks/apt_cache.yml", extra=extra))
    assert first.changed > 0
    again = applied(play(pair.workspace, "playbooks/apt_cache.yml", extra=extra))
    assert again.changed == 0, again.out[-5000:]

    cache = pair.cache
    assert cache.ssh("systemctl is-enabled apt-cacher-ng").stdout.strip() == "enabled"
    assert cache.ssh("systemctl is-active apt-cacher-ng").stdout.strip() == "active"
    conf = sudo(cache, "cat /etc/apt-cacher-ng/acng.conf")
    assert f"Port: {PORT}" in conf.splitlines()
    assert f"CacheDir: {CACHE_DIR}" in conf.splitlines()
    # The package's own file remaps the archives to backends out of reach from here.
    remaps = sudo(cache, r"grep -l '^\s*Remap-' /etc/apt-cacher-ng/*.conf", check=False)
    assert remaps == ""
    # The client reaches the cache across the sandbox bridge.
    fetch = ("python3 -c 'import sys, urllib.request; "
             "print(urllib.request.urlopen(sys.argv[1], timeout=20).status)' "
             f"{pair.proxy}/acng-report.html")
    assert pair.client.ssh(fetch).stdout.strip() == "200"


def test_an_invalid_proxy_url_is_refused_before_any_change(pair):
    before = apt_state(pair.client)
    # The scheme is missing: apt would take "10.213.0.x" as the scheme and every apt call
    # on the host would fail.
    set_proxy(pair, f"{pair.cache_address}:{PORT}")
    result = provision_client(pair)
    assert result.rc != 0, result.out[-3000:]
    assert f'rigforge_apt_proxy of {pair.client.name} is "{pair.cache_address}:{PORT}"' in result.out
    assert "not an http://HOST:PORT URL" in result.out
    assert apt_state(pair.client) == before


def test_client_installs_its_packages_through_the_cache(pair):
    set_proxy(pair, pair.proxy)
    first = applied(provision_client(pair))
    assert first.changed > 0
    again = applied(provision_client(pair))
    assert again.changed == 0, again.out[-5000:]

    client, cache = pair.client, pair.cache
    assert sudo(client, f"cat {PROXY_FILE}").splitlines()[1:] == [
        f'Acquire::http::Proxy "{pair.proxy}";',
        'Acquire::https::Proxy "DIRECT";',
    ]
    config = client.ssh("apt-config dump").stdout
    assert f'Acquire::http::Proxy "{pair.proxy}";' in config
    assert client.ssh(f"dpkg -s {PROBE_PACKAGE}", check=False).returncode == 0

    # The cache fetched the package for the client and keeps it ...
    cached = sudo(cache, f"find {CACHE_DIR} -name '{PROBE_PACKAGE}_*.deb'")
    assert f"/{PROBE_PACKAGE}_" in cached, sudo(cache, f"find {CACHE_DIR} -name '*.deb' | head")
    # ... and its log shows it sent it to the client ("time|O|bytes|client|path").
    log = sudo(cache, f"cat {ACNG_LOG}")
    sent = [fields for fields in (line.split("|") for line in log.splitlines())
            if len(fields) >= 5 and fields[1] == "O" and fields[3] == pair.client_address
            and re.search(rf"/{PROBE_PACKAGE}_[^/]*\.deb$", fields[4])]
    assert sent, log[-3000:]
    assert cache.ssh(f"dpkg -s {PROBE_PACKAGE}", check=False).returncode != 0


def test_https_sources_bypass_the_cache(pair):
    # apt sends https:// URLs to Acquire::http::Proxy unless told otherwise, as CONNECT
    # requests that apt-cacher-ng refuses ("403 CONNECT denied"): the proxy file says DIRECT.
    client = pair.client
    uri = client.ssh("grep -rhoE 'http://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/ "
                     "2>/dev/null | head -n1").stdout.strip()
    assert uri.startswith("http://"), uri
    script = (
        "d=$(mktemp -d) && mkdir -p $d/lists/partial $d/cache/archives/partial && "
        f"echo 'deb https://{uri.removeprefix('http://')} bookworm main' > $d/https.list && "
        "apt-get update -o Acquire::Retries=0 -o Dir::Etc::SourceList=$d/https.list "
        "-o Dir::Etc::SourceParts=- -o Dir::State::Lists=$d/lists -o Dir::Cache=$d/cache 2>&1; "
        "rm -rf $d"
    )
    out = client.ssh(script, check=False).stdout
    assert "https://" in out, out
    assert "CONNECT denied" not in out, out
    assert f"{pair.cache_address} {PORT}" not in out, out


def test_removing_the_setting_removes_the_file(pair):
    set_proxy(pair, "")
    first = applied(provision_client(pair))
    assert first.changed > 0
    assert pair.client.ssh(f"test -e {PROXY_FILE}", check=False).returncode == 1
    assert pair.proxy not in pair.client.ssh("apt-config dump").stdout
    again = applied(provision_client(pair))
    assert again.changed == 0, again.out[-5000:]
