"""The fleet apt cache without hosts: role apt_cache, rigforge_apt_proxy in role base,
playbooks/apt_cache.yml and the helpers of bench/apt_cache.py.

Role expressions are templated by Ansible's own Templar, as in test_nvidia_driver_vars.py;
the proxy file is parsed by the real apt-config where this machine has it. The integration
test (tests/integration/test_apt_cache.py) runs it all on sandbox hosts.
"""

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from provision import registry, workspace

REPO = Path(__file__).resolve().parents[2]
ROLES = REPO / "roles"
LOADER = DataLoader()
PROXY = "http://10.213.0.11:3142"


def _load(path: Path):
    return LOADER.load_from_file(str(path), trusted_as_template=True)


def _render(variables: dict, text: str):
    return Templar(loader=LOADER, variables=variables).template(trust_as_template(text))


def _template(variables: dict, expression: str):
    return _render(variables, f"{{{{ {expression} }}}}")


def _proxy_block() -> dict:
    (block,) = _load(ROLES / "base" / "tasks" / "apt_proxy.yml")
    return block


def _proxy_task(name: str) -> dict:
    return next(t for t in _proxy_block()["block"] if t["name"] == name)


def _proxy_vars(value: str) -> dict:
    return {**_load(ROLES / "base" / "defaults" / "main.yml"), **_proxy_block()["vars"],
            "rigforge_apt_proxy": value, "inventory_hostname": "rig2"}


def accepted(value: str) -> bool:
    """Whether the assert of tasks/apt_proxy.yml lets ``value`` through (all its conditions)."""
    assert_task = _proxy_task("Assert that rigforge_apt_proxy is empty or an http://HOST:PORT URL.")
    variables = _proxy_vars(value)
    conditions = assert_task["ansible.builtin.assert"]["that"]
    return all(_template(variables, f"({condition})") for condition in conditions)


# --- rigforge_apt_proxy in role base ------------------------------------------------------------

@pytest.mark.parametrize("role", ["base", "apt_cache"])
def test_argument_specs_document_every_default(role):
    defaults = yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text())
    options = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())[
        "argument_specs"]["main"]["options"]
    assert set(options) == set(defaults)
    for name, spec in options.items():
        assert spec["default"] == defaults[name], name


def test_proxy_is_off_by_default():
    assert yaml.safe_load((ROLES / "base" / "defaults" / "main.yml").read_text())["rigforge_apt_proxy"] == ""


def test_proxy_file_is_written_before_any_apt_operation_of_base():
    imports = [t["ansible.builtin.import_tasks"] for t in _load(ROLES / "base" / "tasks" / "main.yml")]
    position = imports.index("apt_proxy.yml")
    # Preflight only reads; everything after it may run apt (dpkg repair, index, installs).
    assert imports[:position] == ["preflight.yml"]
    assert "ansible.builtin.apt" not in (ROLES / "base" / "tasks" / "preflight.yml").read_text()
    for later in ("dpkg.yml", "packages.yml"):
        assert imports.index(later) > position


@pytest.mark.parametrize("value", [
    PROXY,
    "http://10.213.0.11:3142/",
    "http://apt-cache.lan:3142",
    "http://apt-cache",           # port 80
    "http://[fd00::11]:3142",
    "http://10.0.0.1:65535",
])
def test_proxy_urls_that_are_accepted(value):
    assert accepted(value)


@pytest.mark.parametrize("value", [
    "10.213.0.11:3142",                  # no scheme: apt would read "10.213.0.11" as one
    "https://10.213.0.11:3142",          # apt-cacher-ng speaks plain HTTP
    "http://10.213.0.11:0",
    "http://10.213.0.11:65536",
    "http://10.213.0.11:3142/acng",      # a path: apt-cacher-ng is a proxy, not a mirror
    "http://user:secret@10.213.0.11:3142",  # the file is world-readable
    'http://10.213.0.11:3142"; Acquire::https::Proxy "http://evil',
    "http://10.213.0.11 :3142",
    " http://10.213.0.11:3142",
    "http://-cache:3142",
    "http://",
])
def test_proxy_urls_that_are_refused(value):
    assert not accepted(value)


def test_refusal_names_the_host_the_value_and_an_example():
    assert_task = _proxy_task("Assert that rigforge_apt_proxy is empty or an http://HOST:PORT URL.")
    message = _render(_proxy_vars("10.213.0.11:3142"), assert_task["ansible.builtin.assert"]["fail_msg"])
    assert 'rigforge_apt_proxy of rig2 is "10.213.0.11:3142"' in message
    assert '"http://10.213.0.11:3142"' in message and '""' in message


def test_file_is_written_only_when_set_and_removed_when_empty():
    write = _proxy_task("Write the apt proxy setting.")
    remove = _proxy_task("Remove the apt proxy setting.")
    assert write["when"] == "rigforge_apt_proxy | length > 0"
    assert remove["when"] == "rigforge_apt_proxy | length == 0"
    for value, writes in ((PROXY, True), ("", False)):
        variables = _proxy_vars(value)
        assert _template(variables, write["when"]) is writes
        assert _template(variables, remove["when"]) is not writes
    dest = _render(_proxy_vars(PROXY), write["ansible.builtin.copy"]["dest"])
    assert dest == _render(_proxy_vars(""), remove["ansible.builtin.file"]["path"])
    assert dest == "/etc/apt/apt.conf.d/01rigforge-proxy"
    assert write["ansible.builtin.copy"]["validate"] == "apt-config --config-file %s dump"


def _proxy_file(value: str) -> str:
    write = _proxy_task("Write the apt proxy setting.")
    return _render(_proxy_vars(value), write["ansible.builtin.copy"]["content"])


def test_proxy_file_sends_http_to_the_cache_and_keeps_https_direct():
    lines = _proxy_file(PROXY).splitlines()
    assert lines[0].startswith("//")
    assert lines[1:] == [f'Acquire::http::Proxy "{PROXY}";', 'Acquire::https::Proxy "DIRECT";']


@pytest.mark.skipif(not shutil.which("apt-config"), reason="apt-config is not on this machine")
def test_apt_reads_the_proxy_file(tmp_path):
    conf = tmp_path / "01rigforge-proxy"
    conf.write_text(_proxy_file(PROXY))
    # As the role's validate step runs it; the file is read last, so it decides.
    dump = subprocess.run(["apt-config", "--config-file", str(conf), "dump"], capture_output=True,
                          text=True, timeout=30, check=True).stdout.splitlines()
    assert f'Acquire::http::Proxy "{PROXY}";' in dump
    assert 'Acquire::https::Proxy "DIRECT";' in dump


# --- role apt_cache ---------------------------------------------------------------------------

def _cache_vars(**overrides) -> dict:
    role = ROLES / "apt_cache"
    return {**_load(role / "defaults" / "main.yml"), **overrides,
            **_load(role / "vars" / "main.yml")}


def _acng_conf(**overrides) -> str:
    source = (ROLES / "apt_cache" / "templates" / "acng.conf.j2").read_text()
    return Templar(loader=LOADER, variables=_cache_vars(**overrides)).template(trust_as_template(source))


def test_acng_conf_has_no_remaps_and_takes_the_variables():
    conf = _acng_conf().splitlines()
    assert not [line for line in conf if line.lstrip().startswith("Remap-")]
    assert "Port: 3142" in conf
    assert "BindAddress: 0.0.0.0" in conf
    assert "CacheDir: /var/cache/apt-cacher-ng" in conf
    custom = _acng_conf(apt_cache_port=9999, apt_cache_bind_addresses=["10.0.0.5", "::1"],
                        apt_cache_dir="/srv/acng").splitlines()
    assert {"Port: 9999", "BindAddress: 10.0.0.5 ::1", "CacheDir: /srv/acng"} <= set(custom)


@pytest.mark.parametrize(("addresses", "url"), [
    (["0.0.0.0"], "http://127.0.0.1:3142/acng-report.html"),
    (["::"], "http://[::1]:3142/acng-report.html"),
    (["10.0.0.5", "::1"], "http://10.0.0.5:3142/acng-report.html"),
])
def test_verify_asks_an_address_the_cache_listens_on(addresses, url):
    variables = _cache_vars(apt_cache_bind_addresses=addresses)
    assert _template(variables, "__apt_cache_report_url").strip() == url


def test_install_refreshes_the_index_in_check_mode_too():
    refresh, install = _load(ROLES / "apt_cache" / "tasks" / "install.yml")
    assert refresh["ansible.builtin.apt"]["update_cache"] is True
    assert refresh["check_mode"] is False and refresh["changed_when"] is False
    assert install["ansible.builtin.apt"]["name"] == "{{ __apt_cache_package }}"


# --- playbooks/apt_cache.yml ------------------------------------------------------------------

def _ansible_env(ws) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "RIGFORGE_"))}
    env["ANSIBLE_CONFIG"] = str(ws.ansible_cfg)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def test_init_ships_the_playbook_and_role_but_site_does_not_run_them(tmp_path):
    ws, _ = workspace.init(tmp_path / "ws")
    assert (ws.root / "playbooks" / "apt_cache.yml").is_file()
    assert (ws.root / "roles" / "apt_cache" / "tasks" / "main.yml").is_file()
    assert "apt_cache" not in registry.names()
    assert "apt_cache" not in (ws.root / "site.yml").read_text()
    proc = subprocess.run(["ansible-playbook", "--syntax-check", "playbooks/apt_cache.yml"],
                          cwd=ws.root, env=_ansible_env(ws), capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_playbook_fails_when_no_host_is_named(tmp_path):
    ws, _ = workspace.init(tmp_path / "ws")
    # A host that cannot be reached: the check must fail without contacting it.
    ws.inventory.write_text(yaml.safe_dump({"all": {"hosts": {"rig1": {"ansible_host": "192.0.2.1"}}}}))
    for extra in ([], ["-e", "apt_cache_hosts=nosuch"]):
        proc = subprocess.run(["ansible-playbook", "playbooks/apt_cache.yml", *extra],
                              cwd=ws.root, env=_ansible_env(ws), capture_output=True, text=True,
                              timeout=120, check=False)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 2, out
        assert "No host of this run is in" in out
        assert "UNREACHABLE" not in out


# --- bench/apt_cache.py -----------------------------------------------------------------------

@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "bench"))
    return importlib.import_module("apt_cache")


def test_bench_sums_apt_cacher_ng_log_per_type_and_client(bench):
    log = "\n".join([
        "1795322067|I|1000|10.213.0.12|deb.debian.org/debian/pool/main/j/jq/jq_1.6_amd64.deb",
        "1795322067|O|1000|10.213.0.12|deb.debian.org/debian/pool/main/j/jq/jq_1.6_amd64.deb",
        "1795322068|O|1000|10.213.0.13|deb.debian.org/debian/pool/main/j/jq/jq_1.6_amd64.deb",
        "1795322069|O|250|10.213.0.13|deb.debian.org/debian/dists/bookworm/InRelease",
        "Sun Nov 22 04:30:00 2026|startup",
    ])
    by_type, by_client = bench.acng_totals(log)
    assert by_type == {"I": 1000, "O": 2250}
    assert by_client == {"10.213.0.12": 1000, "10.213.0.13": 1250}


def test_bench_counts_only_traffic_routed_into_the_bridge_per_host(bench, monkeypatch):
    calls = []

    def fake_nft(args, stdin=None, check=True):
        calls.append((args, stdin))
        listing = {"nftables": [
            {"metainfo": {}},
            {"chain": {"name": "forward"}},
            {"rule": {"comment": "h1",
                      "expr": [{"match": {}}, {"counter": {"packets": 3, "bytes": 4500}}]}},
            {"rule": {"comment": "h2", "expr": [{"counter": {"packets": 1, "bytes": 60}}]}},
        ]}
        return subprocess.CompletedProcess(args, 0, stdout=json.dumps(listing), stderr="")

    monkeypatch.setattr(bench.UpstreamCounter, "_nft", staticmethod(fake_nft))
    with bench.UpstreamCounter({"h1": "10.213.0.11", "h2": "10.213.0.12"}) as counter:
        assert counter.read() == {"h1": 4500, "h2": 60}
    ruleset = calls[0][1]
    bridge = bench.BRIDGE
    for name, addr in (("h1", "10.213.0.11"), ("h2", "10.213.0.12")):
        rule = f'iifname != "{bridge}" oifname "{bridge}" ip daddr {addr} counter comment "{name}"'
        assert rule in ruleset
    assert "policy accept" in ruleset and "drop" not in ruleset and "accept;" in ruleset
    assert calls[-1][0] == ["delete", "table", "inet", counter.table]


def test_bench_refuses_a_missing_counter(bench, monkeypatch):
    listing = '{"nftables": [{"rule": {"comment": "h1", "expr": [{"counter": {"bytes": 1}}]}}]}'
    def fake_nft(args, stdin=None, check=True):
        return subprocess.CompletedProcess(args, 0, stdout=listing, stderr="")

    monkeypatch.setattr(bench.UpstreamCounter, "_nft", staticmethod(fake_nft))
    counter = bench.UpstreamCounter({"h1": "10.213.0.11", "h2": "10.213.0.12"})
    with pytest.raises(bench.BenchError, match="h2"):
        counter.read()
