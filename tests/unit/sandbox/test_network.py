"""provision.sandbox.network: addresses, derived names, the firewall's rule text, forwarding."""

import subprocess
from ipaddress import ip_address, ip_network

import pytest

from provision.errors import SandboxError, SandboxSetupError
from provision.sandbox import network
from provision.sandbox.mirrors import Mirrors
from provision.sandbox.network import (
    SandboxNetwork,
    allocate_address,
    forward_policy_drops,
    gateway,
    iptables_forward_rules,
    mirror_firewall_targets,
    netns_name,
    nft_replace_script,
    nft_ruleset,
    parse_subnet,
    resolve_ipv4,
    subnet_from_env,
    veth_name,
)

# --- names and addresses ------------------------------------------------------------------


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


def test_the_subnet_comes_from_the_environment_else_the_default():
    assert subnet_from_env({}) == ip_network("10.213.0.0/24")
    assert subnet_from_env({"RIGFORGE_SANDBOX_SUBNET": ""}) == ip_network("10.213.0.0/24")
    assert subnet_from_env({"RIGFORGE_SANDBOX_SUBNET": " 172.30.0.0/28 "}) == ip_network("172.30.0.0/28")
    with pytest.raises(SandboxSetupError) as err:
        subnet_from_env({"RIGFORGE_SANDBOX_SUBNET": "172.30.0.0/29"})
    assert "RIGFORGE_SANDBOX_SUBNET" in err.value.hint


def test_the_bridge_has_the_first_address_of_the_subnet():
    assert gateway(ip_network("10.213.0.0/24")) == ip_address("10.213.0.1")
    assert gateway(ip_network("172.30.16.0/20")) == ip_address("172.30.16.1")


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


def test_ruleset_without_mirror_addresses_has_no_mirror_rule_and_dedupes_the_rest():
    rules = nft_ruleset(ip_network("10.213.0.0/24"), [], [80], ["192.0.2.53", "192.0.2.53"])
    assert "tcp dport { 80 }" not in rules
    assert "ip daddr { 192.0.2.53 } meta l4proto" in rules


def test_replace_script_swaps_the_table_in_one_transaction():
    script = nft_replace_script("table inet rigforge_sandbox {\n}\n")
    assert script.splitlines()[:2] == [
        "table inet rigforge_sandbox",
        "delete table inet rigforge_sandbox",
    ]


def test_an_address_resolves_to_itself():
    assert resolve_ipv4("192.0.2.7") == ["192.0.2.7"]


def test_explicit_mirror_ports_join_the_web_ports(monkeypatch):
    monkeypatch.setattr(network, "resolve_ipv4", lambda host: ["192.0.2.9", "192.0.2.8"])
    mirrors = Mirrors("http://a.example:3142/debian", "http://a.example:8080/debian-security")
    assert mirror_firewall_targets(mirrors) == (["192.0.2.8", "192.0.2.9"], [80, 443, 3142, 8080])


def test_a_mirror_on_loopback_is_refused_as_out_of_reach(monkeypatch):
    monkeypatch.setattr(network, "resolve_ipv4", lambda host: ["127.0.0.1"])
    with pytest.raises(SandboxSetupError, match="on loopback") as err:
        mirror_firewall_targets(Mirrors("http://localhost:3142/debian"))
    assert "RIGFORGE_SANDBOX_MIRROR" in err.value.hint


# --- IPv4 forwarding ----------------------------------------------------------------------


def _absent(argv, **kw):
    """`ip link show` and `nft list table` as they answer when the bridge and table are gone."""
    return subprocess.CompletedProcess(list(argv), 1, "", "does not exist")


def test_forwarding_is_switched_on_and_restored_to_what_it_was(tmp_path, monkeypatch):
    forward = tmp_path / "ip_forward"
    forward.write_text("0\n")
    monkeypatch.setattr(network, "IP_FORWARD", forward)
    monkeypatch.setattr(network, "run", _absent)
    net = SandboxNetwork(tmp_path / "net", ip_network("10.213.0.0/24"))
    net._enable_forwarding()
    assert forward.read_text() == "1\n"
    net._enable_forwarding()  # a second start must not take "1" for the original
    assert (tmp_path / "net" / "ip_forward.orig").read_text() == "0\n"
    net.down()
    assert forward.read_text() == "0\n"
    assert not (tmp_path / "net" / "ip_forward.orig").exists()


def test_only_a_drop_policy_opens_the_iptables_forward_chain_and_only_for_the_bridge():
    assert forward_policy_drops("-P FORWARD DROP\n-N DOCKER-USER\n-A FORWARD -j DOCKER-USER\n")
    assert not forward_policy_drops("-P FORWARD ACCEPT\n-A FORWARD -j DROP_SOMETHING\n")
    rules = iptables_forward_rules("rigforge0")
    assert rules[0] == ["-i", "rigforge0", "-j", "ACCEPT"]
    assert rules[1][:2] == ["-o", "rigforge0"] and "RELATED,ESTABLISHED" in rules[1]
