"""P6: upstream bytes for 4 hosts provisioning `base`, with and without the fleet apt cache.

Three scenarios on fresh sandbox hosts, side by side in one run:

  one host        1 host runs `rigforge provision` (base) straight from the mirror: the baseline
  without cache   4 hosts provision base at once, straight from the mirror
  with cache      1 more host runs apt-cacher-ng (`playbooks/apt_cache.yml`), then 4 hosts with
                  `rigforge_apt_proxy` pointing at it provision base at once

Upstream bytes are counted by nftables on this machine, in a table of the bench's own
(counters only, no verdicts): per sandbox host of the bench, the bytes routed into the
sandbox bridge from outside it (the mirror's answers, DNS). What the cache host sends the
clients stays on the bridge, and rigforge's SSH sessions start on this machine, so neither is
counted. apt-cacher-ng's own log (fetched from upstream / served to clients) is printed as a
cross-check, and the cache host's setup (apt-cacher-ng's install) separately.

    python bench/apt_cache.py [--clients N]     (root: sandbox hosts and nft)

The last line is `with_cache_vs_one_host=<x> without_cache_vs_one_host=<y>
with_cache_incl_setup_vs_one_host=<z>`, each against the one-host baseline of the same run.
"""

import argparse
import json
import os
import subprocess
import time

from _common import BenchError, Fleet, header, load, point_at_cache, ratio, run_main, say

from provision.sandbox.network import BRIDGE

PROXY_FILE = "/etc/apt/apt.conf.d/01rigforge-proxy"
ACNG_LOG = "/var/log/apt-cacher-ng/apt-cacher.log"
PROVISION_S = 2400


class UpstreamCounter:
    """nftables counters of the bytes routed into the sandbox bridge, per bench host.

    A table of its own at the forward hook, policy accept and no verdicts: it sees what the
    sandbox firewall lets through and decides nothing. Removed on the way out.
    """

    def __init__(self, addresses: dict[str, str]):
        self.addresses = addresses
        self.table = f"rigforge_bench_{os.getpid()}"

    def __enter__(self) -> "UpstreamCounter":
        rules = "\n".join(
            f'\t\tiifname != "{BRIDGE}" oifname "{BRIDGE}" ip daddr {addr} counter comment "{name}"'
            for name, addr in self.addresses.items())
        # "table; delete table; table {...}" replaces a leftover of a killed run of this pid.
        script = (f"table inet {self.table}\ndelete table inet {self.table}\n"
                  f"table inet {self.table} {{\n\tchain forward {{\n"
                  f"\t\ttype filter hook forward priority 0; policy accept;\n{rules}\n\t}}\n}}\n")
        self._nft(["-f", "-"], script)
        return self

    def __exit__(self, *exc) -> None:
        self._nft(["delete", "table", "inet", self.table], check=False)

    def read(self) -> dict[str, int]:
        listing = json.loads(self._nft(["-j", "list", "table", "inet", self.table]).stdout)
        counts = {}
        for item in listing["nftables"]:
            rule = item.get("rule")
            if rule and rule.get("comment") in self.addresses:
                counts[rule["comment"]] = next(e["counter"]["bytes"] for e in rule["expr"] if "counter" in e)
        if set(counts) != set(self.addresses):
            raise BenchError(f"nft counters missing for {set(self.addresses) - set(counts)}")
        return counts

    @staticmethod
    def _nft(args: list[str], stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(["nft", *args], input=stdin, capture_output=True, text=True,
                              timeout=30, check=False)
        if check and proc.returncode != 0:
            raise BenchError(f"nft {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
        return proc


def upstream(counter: UpstreamCounter, hosts: list[str], step) -> tuple[dict[str, int], float]:
    """Run ``step()``; the upstream bytes each of ``hosts`` received meanwhile, and seconds."""
    before = counter.read()
    started = time.perf_counter()
    step()
    seconds = time.perf_counter() - started
    after = counter.read()
    return {h: after[h] - before[h] for h in hosts}, seconds


def provision_base(fleet: Fleet, hosts: list[str]) -> None:
    """The first `rigforge provision` of base on ``hosts`` at once; every host must install."""
    report = fleet.provision(hosts, expect_converged=False, timeout=PROVISION_S)
    statuses = {h["host"]: h["status"] for h in report["hosts"]}
    if set(statuses) != set(hosts) or any(s != "changed" for s in statuses.values()):
        raise BenchError(f"the first provision did not install everywhere: {statuses}")


def acng_totals(log: str) -> tuple[dict[str, int], dict[str, int]]:
    """From apt-cacher-ng's log (``time|type|bytes|client|path``): bytes per type
    (I: fetched from upstream, O: sent to clients) and bytes sent per client address."""
    by_type: dict[str, int] = {}
    by_client: dict[str, int] = {}
    for line in log.splitlines():
        fields = line.split("|")
        if len(fields) >= 4 and fields[2].isdigit():
            by_type[fields[1]] = by_type.get(fields[1], 0) + int(fields[2])
            if fields[1] == "O":
                by_client[fields[3]] = by_client.get(fields[3], 0) + int(fields[2])
    return by_type, by_client


def mb(n: float) -> str:
    return f"{n / 1e6:8.1f} MB"


def per_host(counts: dict[str, int]) -> str:
    return ", ".join(f"{n / 1e6:.1f}" for n in counts.values()) + " MB"


def direct(n: int) -> tuple[int, int]:
    """One host alone, then ``n`` hosts at once, straight from the mirror."""
    with Fleet(n + 1, ("base",), prefix="pd") as fleet, UpstreamCounter(fleet.addresses) as counter:
        one, rest = fleet.names[0], fleet.names[1:]
        say(f"one host: rigforge provision (base) on {one}")
        single, single_s = upstream(counter, [one], lambda: provision_base(fleet, [one]))
        say(f"without the cache: rigforge provision (base) on {n} hosts at once")
        many, many_s = upstream(counter, rest, lambda: provision_base(fleet, rest))
    print(f"\none host, straight from the mirror ({single_s:.0f} s)")
    print(f"  upstream                                  {mb(single[one])}")
    print(f"\nwithout the cache: {n} hosts at once, straight from the mirror ({many_s:.0f} s)")
    print(f"  upstream                                  {mb(sum(many.values()))}  "
          f"(per host: {per_host(many)})")
    return single[one], sum(many.values())


def cached(n: int) -> tuple[int, int]:
    """apt-cacher-ng on one host, then ``n`` hosts through it at once."""
    with Fleet(n + 1, ("base",), prefix="pc") as fleet, UpstreamCounter(fleet.addresses) as counter:
        cache, clients = fleet.names[0], fleet.names[1:]
        proxy = point_at_cache(fleet, cache)

        say(f"with the cache: apt_cache on {cache}")
        extra = ("-e", f"apt_cache_hosts={cache}")
        setup, setup_s = upstream(counter, [cache], lambda: fleet.playbook(
            "playbooks/apt_cache.yml", [cache], extra=extra, expect_converged=False, timeout=1200))
        fleet.playbook("playbooks/apt_cache.yml", [cache], extra=extra)  # raises unless converged
        log_start = int(fleet.ssh(cache, f"sudo stat -c %s {ACNG_LOG} 2>/dev/null || echo 0").stdout)

        say(f"with the cache: rigforge provision (base) on {n} hosts at once through {cache}")
        through, through_s = upstream(counter, [cache, *clients],
                                      lambda: provision_base(fleet, clients))
        # The figure is only about the cache if every client really used it.
        files = fleet.ssh_all(clients, f"cat {PROXY_FILE}")
        wrong = [h for h, text in files.items() if f'Acquire::http::Proxy "{proxy}";' not in text]
        by_type, by_client = acng_totals(
            fleet.ssh(cache, f"sudo tail -c +{log_start + 1} {ACNG_LOG}").stdout)
        unserved = [h for h in clients if not by_client.get(fleet.addresses[h])]
        if wrong or unserved:
            raise BenchError(f"clients not using the cache: proxy file wrong on {wrong}, "
                             f"nothing served to {unserved}")

    total = sum(through.values())
    print(f"\nwith the cache: {n} hosts at once through apt-cacher-ng on a {n + 1}th host "
          f"({through_s:.0f} s)")
    print(f"  upstream                                  {mb(total)}  (cache host "
          f"{mb(through[cache]).strip()}, clients {per_host({h: through[h] for h in clients})})")
    print(f"  apt-cacher-ng's log: fetched upstream     {mb(by_type.get('I', 0))}, "
          f"sent to the clients {mb(by_type.get('O', 0)).strip()}")
    print(f"  setting up the cache host (apt_cache, {setup_s:.0f} s): upstream {mb(setup[cache]).strip()}")
    return total, setup[cache]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4, help="hosts provisioning (default 4)")
    args = parser.parse_args()
    if not 1 <= args.clients <= 8:
        parser.error("--clients must be 1-8")
    n = args.clients
    header(f"P6  upstream bytes for {n} hosts provisioning base, with and without the fleet apt cache")

    one_host, without = direct(n)
    with_cache, setup = cached(n)

    print(f"\n  end      {load()}")
    print(f"  one host {mb(one_host).strip()}; {n} hosts without the cache {mb(without).strip()}, "
          f"with it {mb(with_cache).strip()} (+ {mb(setup).strip()} to set up the cache host)")
    print(f"with_cache_vs_one_host={ratio(with_cache, one_host):.2f} "
          f"without_cache_vs_one_host={ratio(without, one_host):.2f} "
          f"with_cache_incl_setup_vs_one_host={ratio(with_cache + setup, one_host):.2f}")


if __name__ == "__main__":
    run_main(main, "the sandbox hosts and the nft table were removed")
