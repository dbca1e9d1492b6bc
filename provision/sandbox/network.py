"""The sandbox network: one bridge, one namespace per host, and a firewall that fences them in.

Layout (default subnet 10.213.0.0/24)::

    this machine                                    sandbox host "rig1"
    rigforge0 (bridge) 10.213.0.1  <-- veth -->  host0 10.213.0.11 in netns rigforge-rig1
         |
    nftables table inet rigforge_sandbox:
      forward:  from the bridge only to the Debian mirror (tcp 80/443) and to the DNS
                resolvers (53); everything else from the bridge is dropped
      input:    from the bridge only replies, DNS and the mirror (if they are this machine)
      postrouting: masquerade the subnet when it leaves through another interface

Names are derived, so that leftovers of a crashed run are found again by name:
netns ``rigforge-<name>``, host-side veth ``rfs<offset of the address in the subnet>``
(interface names are limited to 15 characters).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterable, Mapping
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from provision.errors import SandboxError, SandboxSetupError

from .mirrors import Mirrors
from .system import run, which

BRIDGE = "rigforge0"
NFT_TABLE = "rigforge_sandbox"
NETNS_PREFIX = "rigforge-"
VETH_PREFIX = "rfs"
GUEST_IFACE = "host0"
DEFAULT_SUBNET = "10.213.0.0/24"
ENV_SUBNET = "RIGFORGE_SANDBOX_SUBNET"
FIRST_HOST_OFFSET = 11
WEB_PORTS = (80, 443)
# Sandbox hosts may reach these TCP ports on the bridge address: a local mirror, or the
# stand-ins the test suite serves for artifacts this machine cannot download.
SERVE_PORTS = range(8650, 8660)
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


def parse_subnet(text: str) -> IPv4Network:
    """An IPv4 network with room for hosts from offset 11 up, e.g. ``10.213.0.0/24``."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise SandboxSetupError(
            f"invalid sandbox subnet {text!r}: {exc}",
            hint=f"set {ENV_SUBNET} to a private IPv4 network such as {DEFAULT_SUBNET}",
        ) from None
    if not isinstance(net, IPv4Network) or net.prefixlen > 28:
        raise SandboxSetupError(
            f"sandbox subnet {text!r} must be IPv4 and at least a /28",
            hint=f"set {ENV_SUBNET} to a private IPv4 network such as {DEFAULT_SUBNET}",
        )
    return net


def subnet_from_env(env: Mapping[str, str]) -> IPv4Network:
    return parse_subnet(env.get(ENV_SUBNET) or DEFAULT_SUBNET)


def gateway(net: IPv4Network) -> IPv4Address:
    """The bridge's address: the first one in the subnet."""
    return net.network_address + 1


def allocate_address(net: IPv4Network, used: Iterable[str]) -> IPv4Address:
    """The lowest address from offset 11 up that no existing host uses."""
    taken = set(used)
    for offset in range(FIRST_HOST_OFFSET, net.num_addresses - 1):
        addr = net.network_address + offset
        if str(addr) not in taken:
            return addr
    raise SandboxError(
        f"no free address left in the sandbox subnet {net}",
        hint=f"remove hosts (rigforge sandbox down NAME) or set {ENV_SUBNET} to a larger subnet",
    )


def veth_name(net: IPv4Network, addr: IPv4Address) -> str:
    """Host-side veth name, unique per address and short enough for the kernel (<= 15)."""
    return f"{VETH_PREFIX}{int(addr) - int(net.network_address)}"


def netns_name(name: str) -> str:
    return NETNS_PREFIX + name


def _set(items: Iterable[object]) -> str:
    return "{ " + ", ".join(str(i) for i in items) + " }"


def nft_ruleset(
    subnet: IPv4Network,
    mirror_addrs: Iterable[str],
    mirror_ports: Iterable[int],
    dns: Iterable[str],
    bridge: str = BRIDGE,
    table: str = NFT_TABLE,
    serve_ports: range = SERVE_PORTS,
) -> str:
    """The nftables table that limits sandbox hosts to the mirror and DNS.

    Its chains run before the usual filter priority and accept or drop only traffic from the
    bridge, so the rest of this machine's traffic is left to its own rules.
    """
    mirrors, dns = sorted(set(mirror_addrs)), sorted(set(dns))
    ports = sorted(set(mirror_ports))
    allowed = []
    if mirrors:
        allowed.append(f'iifname "{bridge}" ip daddr {_set(mirrors)} tcp dport {_set(ports)} accept')
    if dns:
        allowed.append(
            f'iifname "{bridge}" ip daddr {_set(dns)} meta l4proto {{ tcp, udp }} th dport 53 accept'
        )
    forward = [
        "ct state established,related accept",
        f'iifname "{bridge}" oifname "{bridge}" accept',
        *allowed,
        f'iifname "{bridge}" counter drop',
    ]
    served = f"{serve_ports.start}-{serve_ports.stop - 1}"
    incoming = [
        f'iifname "{bridge}" ct state established,related accept',
        *allowed,
        f'iifname "{bridge}" ip daddr {gateway(subnet)} tcp dport {served} accept',
        f'iifname "{bridge}" counter drop',
    ]
    body = "\n".join(
        [
            f"table inet {table} {{",
            "\tchain forward {",
            "\t\ttype filter hook forward priority -10; policy accept;",
            *(f"\t\t{rule}" for rule in forward),
            "\t}",
            "\tchain input {",
            "\t\ttype filter hook input priority -10; policy accept;",
            *(f"\t\t{rule}" for rule in incoming),
            "\t}",
            "\tchain postrouting {",
            "\t\ttype nat hook postrouting priority srcnat; policy accept;",
            f'\t\tip saddr {subnet} oifname != "{bridge}" masquerade',
            "\t}",
            "}",
        ]
    )
    return body + "\n"


def nft_replace_script(ruleset: str, table: str = NFT_TABLE) -> str:
    """An ``nft -f`` script that swaps the table in one transaction (creating it if missing)."""
    return f"table inet {table}\ndelete table inet {table}\n{ruleset}"


def resolve_ipv4(host: str) -> list[str]:
    """The IPv4 addresses of ``host`` (an address stays itself)."""
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
    except OSError as exc:
        raise SandboxError(
            f"cannot resolve the Debian mirror {host}: {exc}",
            hint="check this machine's DNS, or set RIGFORGE_SANDBOX_MIRROR",
        ) from None
    return sorted({info[4][0] for info in infos})


def mirror_firewall_targets(mirrors: Mirrors) -> tuple[list[str], list[int]]:
    """(addresses, tcp ports) the firewall must let sandbox hosts reach for the mirrors."""
    addrs: set[str] = set()
    ports: set[int] = set(WEB_PORTS)
    for host, port in mirrors.endpoints():
        found = [a for a in resolve_ipv4(host) if not ipaddress.ip_address(a).is_loopback]
        if not found:
            raise SandboxSetupError(
                f"the Debian mirror {host} is on loopback, out of the sandbox hosts' reach",
                hint="set RIGFORGE_SANDBOX_MIRROR to a mirror reachable over the network",
            )
        addrs.update(found)
        if port:
            ports.add(port)
    return sorted(addrs), sorted(ports)


def link_exists(ifname: str, netns: str | None = None) -> bool:
    argv = ["ip"] + (["-n", netns] if netns else []) + ["link", "show", "dev", ifname]
    return run(argv, check=False, timeout=15).returncode == 0


def netns_exists(netns: str) -> bool:
    return Path("/run/netns", netns).exists()


def iptables_forward_rules(bridge: str = BRIDGE) -> list[list[str]]:
    """Rules that let the bridge's traffic through an iptables FORWARD chain whose policy is
    DROP (Docker sets that, as on GitHub's runners): the nftables table above still decides
    what may leave the bridge, since every base chain must accept a packet."""
    return [["-i", bridge, "-j", "ACCEPT"],
            ["-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"]]


def forward_policy_drops(iptables_s: str) -> bool:
    """Whether ``iptables -S FORWARD`` shows a DROP policy."""
    return any(line.split() == ["-P", "FORWARD", "DROP"] for line in iptables_s.splitlines())


def _open_iptables_forward() -> None:
    if not which("iptables"):
        return
    listed = run(["iptables", "-S", "FORWARD"], check=False)
    if listed.returncode != 0 or not forward_policy_drops(listed.stdout):
        return
    for rule in iptables_forward_rules():
        if run(["iptables", "-C", "FORWARD", *rule], check=False).returncode != 0:
            run(["iptables", "-I", "FORWARD", "1", *rule], what="letting the sandbox bridge through iptables")


def _close_iptables_forward() -> None:
    if not which("iptables"):
        return
    for rule in iptables_forward_rules():
        for _ in range(5):  # bounded: each pass deletes one copy
            if run(["iptables", "-C", "FORWARD", *rule], check=False).returncode != 0:
                break
            run(["iptables", "-D", "FORWARD", *rule], check=False)


class SandboxNetwork:
    """The bridge, firewall and per-host namespaces. Every step tolerates existing pieces."""

    def __init__(self, state_dir: Path, subnet: IPv4Network):
        self.state_dir = state_dir
        self.subnet = subnet
        self.gateway = gateway(subnet)

    @property
    def _forward_saved(self) -> Path:
        return self.state_dir / "ip_forward.orig"

    def up(self, mirrors: Mirrors, nameservers: list[str]) -> None:
        """Bridge up with its address, firewall (re)loaded, IPv4 forwarding on."""
        if not link_exists(BRIDGE):
            run(["ip", "link", "add", BRIDGE, "type", "bridge"], what=f"creating bridge {BRIDGE}")
        cidr = f"{self.gateway}/{self.subnet.prefixlen}"
        run(["ip", "addr", "replace", cidr, "dev", BRIDGE], what=f"addressing bridge {BRIDGE}")
        run(["ip", "link", "set", BRIDGE, "up"], what=f"bringing bridge {BRIDGE} up")
        # resolved on every start: CDN mirrors change their addresses
        addrs, ports = mirror_firewall_targets(mirrors)
        script = nft_replace_script(nft_ruleset(self.subnet, addrs, ports, nameservers))
        run(["nft", "-f", "-"], input=script, what="loading the sandbox firewall (nft)")
        _open_iptables_forward()
        self._enable_forwarding()

    def _enable_forwarding(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if not self._forward_saved.exists():
            self._forward_saved.write_text(IP_FORWARD.read_text().strip() + "\n")
        IP_FORWARD.write_text("1\n")

    def attach(self, netns: str, veth: str, address: str) -> None:
        """Give a host its namespace, veth pair, address and default route via the bridge."""
        if not netns_exists(netns):
            run(["ip", "netns", "add", netns], what=f"creating network namespace {netns}")
        if not link_exists(GUEST_IFACE, netns):
            # a host-side veth without its peer in the namespace is a leftover
            if link_exists(veth):
                run(["ip", "link", "del", veth], check=False)
            pair = ["type", "veth", "peer", "name", GUEST_IFACE, "netns", netns]
            run(["ip", "link", "add", veth, *pair], what=f"creating veth {veth}")
        run(["ip", "link", "set", veth, "master", BRIDGE, "up"], what=f"plugging {veth} into {BRIDGE}")
        inside = ["ip", "-n", netns]
        run([*inside, "link", "set", "lo", "up"])
        run([*inside, "addr", "replace", f"{address}/{self.subnet.prefixlen}", "dev", GUEST_IFACE])
        run([*inside, "link", "set", GUEST_IFACE, "up"])
        run([*inside, "route", "replace", "default", "via", str(self.gateway)])
        # a previous host with this address had another MAC; without the flush this machine
        # keeps sending to it until the neighbour entry expires (up to ~45 s)
        run(["ip", "neigh", "flush", "to", address, "dev", BRIDGE], check=False)

    def detach(self, netns: str, veth: str | None) -> None:
        """Remove a host's namespace and veth; missing pieces are fine."""
        if netns_exists(netns):
            run(["ip", "netns", "del", netns], what=f"removing network namespace {netns}")
        # deleting the namespace normally takes the veth pair with it, though the kernel does
        # so in the background (and once did not at all): delete it if it stays, tolerating
        # it vanishing between our look and our delete
        if not veth:
            return
        for _ in range(20):
            if not link_exists(veth):
                return
            run(["ip", "link", "del", veth], check=False)
            time.sleep(0.05)
        raise SandboxError(f"cannot remove veth {veth}", hint=f"remove it by hand: ip link del {veth}")

    def down(self) -> None:
        """Remove the firewall and the bridge, and restore IPv4 forwarding as it was."""
        if run(["nft", "list", "table", "inet", NFT_TABLE], check=False).returncode == 0:
            run(["nft", "delete", "table", "inet", NFT_TABLE], what="removing the sandbox firewall")
        _close_iptables_forward()
        if link_exists(BRIDGE):
            run(["ip", "link", "del", BRIDGE], what=f"removing bridge {BRIDGE}")
        if self._forward_saved.exists():
            IP_FORWARD.write_text(self._forward_saved.read_text().strip() + "\n")
            self._forward_saved.unlink()
