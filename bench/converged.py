"""P1-P3: a converged re-run of the CI-profile stack (base + docker from the distro), in one run.

P1  `rigforge provision` against the same playbook under stock Ansible settings
    (ANSIBLE_CONFIG = an empty file; host keys still checked against the workspace's
    known_hosts with StrictHostKeyChecking=yes). Target: rigforge >= 3x faster.
P2  the same run against the raw-SSH floor: ONE ssh session through the workspace's
    .rigforge/ssh_config running the same state probes as one shell script: the probes of
    provision/converged.py (dpkg-query status and version of the roles' packages,
    systemctl is-active/is-enabled, stat and sha256sum of the managed files, getent group,
    dpkg --audit), piped to `sh -s` without rigforge around it. Target: <= 5x the floor.
P3  converged `rigforge provision` on 1 host against 4 and 8 hosts. Target: 8 <= 1.5x 1.
    The sandbox hosts share this machine's CPUs; a second pass (--no-separate-hosts skips it)
    limits every host to this machine's CPUs / (hosts + 1), a model of separate machines,
    and reports `fleet8_vs_1_separate_hosts=<w>` as well.

Sandbox hosts are made with `rigforge init` + `rigforge sandbox up` (needs root), provisioned
once (that first run installs the packages and is not a figure), then every variant is run
once untimed and then alternated --runs times; the medians are compared. The hosts are torn
down at the end, on Ctrl-C and on SIGTERM.

    python bench/converged.py [--hosts N] [--runs R]

The last line is `speedup_vs_stock=<x> ratio_to_floor=<y> fleet8_vs_1=<z>
fleet8_vs_1_separate_hosts=<w>` (`n/a` where fewer than 8 hosts were asked for; the largest
fleet's ratio is printed above it).
"""

import time

from _common import (
    BenchError,
    Fleet,
    alternate,
    fleet_args,
    header,
    host_share,
    load,
    median,
    paired,
    print_profile,
    profile,
    ratio,
    row,
    run_main,
    say,
)

from provision.converged import STATE_SCRIPT

COMPONENTS = ("base", "docker")


FULL = "rigforge provision --full (Ansible, rigforge's settings)"


def floor_output_ok(out: str) -> None:
    """The floor must read real, converged state, or it would measure nothing."""
    if ("@manifest base.manifest" not in out or "@manifest docker.manifest" not in out
            or "@service docker active enabled" not in out or "@audit 0" not in out):
        raise BenchError(f"the floor's probes do not see a converged host:\n{out}")


def main() -> None:
    args = fleet_args(__doc__.splitlines()[0], "largest fleet for P3 (default 8)")
    header("P1-P3  converged re-run of the CI-profile stack (base + docker, docker_source: distro)")
    with Fleet(args.hosts, COMPONENTS) as fleet:
        results = measure(fleet, args)
    print(f"  end      {load()}")
    speedup, to_floor, fleet_ratios, separate = results
    largest = max(fleet_ratios)
    if largest != 8 and largest > 1:
        print(f"fleet{largest}_vs_1={fleet_ratios[largest]:.2f}")
    fleet8 = f"{fleet_ratios[8]:.2f}" if 8 in fleet_ratios else "n/a"
    separate8 = f"{separate[8]:.2f}" if 8 in separate else "n/a"
    print(f"speedup_vs_stock={speedup:.2f} ratio_to_floor={to_floor:.2f} fleet8_vs_1={fleet8} "
          f"fleet8_vs_1_separate_hosts={separate8}")


def measure(fleet: Fleet, args) -> tuple[float, float, dict[int, float], dict[int, float]]:
    names, one = fleet.names, fleet.names[:1]
    host = one[0]
    say(f"first provision of {len(names)} host(s): installs the packages, takes minutes")
    started = time.perf_counter()
    fleet.provision(names, expect_converged=False, timeout=2400)
    print(f"  first provision of {len(names)} host(s), installing (context, not a figure): "
          f"{time.perf_counter() - started:.0f} s")
    command, script = "sh -s", STATE_SCRIPT
    floor_output_ok(fleet.ssh(host, command, script).stdout)

    def warm_master():
        fleet.ssh(host, "true")

    def playbook(name: str, stock: bool):
        return lambda: fleet.playbook(name, one, stock=stock)

    say("P1/P2: 1 host, alternating")
    t = alternate({
        "rigforge provision": lambda: fleet.provision(one),
        FULL: lambda: fleet.provision(one, "--full"),
        "ansible-playbook site.yml, rigforge's ansible.cfg": playbook("site.yml", False),
        "ansible-playbook site.yml, stock settings": playbook("site.yml", True),
        "floor: one ssh session, warm master": (warm_master, lambda: fleet.ssh(host, command, script)),
        "floor: one ssh session, new connection": lambda: fleet.ssh(host, command, script, cold=True),
        "rigforge --help (CLI start-up)": lambda: fleet.rigforge("--help"),
    }, args.runs)
    m = {name: median(values) for name, values in t.items()}
    say("profiling one run under each setting (untimed by the rounds)")
    prof_rf = profile(fleet, "site.yml", one, stock=False)
    prof_stock = profile(fleet, "site.yml", one, stock=True)
    started = time.perf_counter()
    probe = fleet.rigforge("probe", host, "--no-record", "--json", check=False)
    probe_s = time.perf_counter() - started

    print(f"\nP1  converged re-run on 1 host, rigforge against stock Ansible "
          f"(medians of {args.runs} alternated runs)")
    for name in ("rigforge provision", FULL,
                 "ansible-playbook site.yml, rigforge's ansible.cfg",
                 "ansible-playbook site.yml, stock settings"):
        print(row(name, t[name], 52))
    speedup = ratio(m["ansible-playbook site.yml, stock settings"], m["rigforge provision"])
    print(f"  speedup_vs_stock={speedup:.2f} (target >= 3); per round: "
          + paired(t["ansible-playbook site.yml, stock settings"], t["rigforge provision"]))

    print("\nP2  the same run against the raw-SSH floor (one ssh session, one shell script)")
    for name in ("floor: one ssh session, warm master", "floor: one ssh session, new connection"):
        print(row(name, t[name], 52))
    floor = m["floor: one ssh session, warm master"]
    to_floor = ratio(m["rigforge provision"], floor)
    print("  per round: " + paired(t["rigforge provision"], t["floor: one ssh session, warm master"]))
    print(f"  ratio_to_floor={to_floor:.2f} (target <= 5); against a new connection "
          f"{ratio(m['rigforge provision'], m['floor: one ssh session, new connection']):.2f}; "
          f"stock Ansible against the floor "
          f"{ratio(m['ansible-playbook site.yml, stock settings'], floor):.2f}")

    print("\nWhere the time goes (1 host)")
    print(row("rigforge --help (CLI start-up)", t["rigforge --help (CLI start-up)"], 52))
    print(f"  converged check beyond the floor and CLI start-up: "
          f"{m['rigforge provision'] - floor - m['rigforge --help (CLI start-up)']:6.2f} s")
    print(f"  rigforge provision --full against stock ansible-playbook: "
          f"{ratio(m['ansible-playbook site.yml, stock settings'], m[FULL]):.2f}x faster "
          "(tuning alone: pipelining, ControlPersist, fact cache, fewer plays)")
    print(f"  rigforge probe (one Fabric session; runs before plan/provision only for GPU "
          f"components): {probe_s:.2f} s, rc {probe.returncode}")
    print_profile("profile of one run, rigforge's ansible.cfg", prof_rf)
    print_profile("profile of one run, stock settings", prof_stock)

    sizes = sorted({n for n in (1, 4, 8, len(names)) if n <= len(names)})
    fleet_ratios: dict[int, float] = {}
    separate: dict[int, float] = {}
    if len(sizes) > 1:
        say(f"P3: fleets of {sizes}, alternating")
        fleet_ratios = fleet_pass(fleet, sizes, command, script, args.runs,
                                  "the hosts sharing this machine's CPUs")
        if args.separate_hosts:
            share = host_share(len(names))
            say(f"P3 again, every host limited to {share:.2f} CPU")
            fleet.cpu_quota(share)
            try:
                separate = fleet_pass(fleet, sizes, command, script, args.runs,
                                      f"every host limited to {share:.2f} CPU (separate machines)")
            finally:
                fleet.cpu_quota(None)
    else:
        print("\nP3  skipped: --hosts 1")
    fleet_ratios.setdefault(1, 1.0)
    return speedup, to_floor, fleet_ratios, separate


def fleet_pass(fleet, sizes: list[int], command: str, script: str, runs: int,
               label: str) -> dict[int, float]:
    """Converged runs on 1, 4 and 8 hosts beside the floor for as many; the fleet ratios."""
    names = fleet.names
    variants: dict = {f"{n} host(s)": (lambda n=n: fleet.provision(names[:n])) for n in sizes}
    for n in sizes:
        variants[f"floor, {n} host(s) in parallel"] = (
            lambda n=n: fleet.ssh_all(names[:n], "true"),
            lambda n=n: fleet.ssh_all(names[:n], command, script),
        )
    tf = alternate(variants, runs)
    print(f"\nP3  converged rigforge provision by fleet size, {label} "
          f"(medians of {runs} alternated runs)")
    for name, values in tf.items():
        print(row(name, values, 52))
    base, floor_base = median(tf["1 host(s)"]), median(tf["floor, 1 host(s) in parallel"])
    ratios: dict[int, float] = {}
    for n in sizes[1:]:
        ratios[n] = ratio(median(tf[f"{n} host(s)"]), base)
        floor_n = median(tf[f"floor, {n} host(s) in parallel"])
        print(f"  fleet{n}_vs_1={ratios[n]:.2f}" + (" (target <= 1.5)" if n == 8 else "")
              + f"; the floor's own {ratio(floor_n, floor_base):.2f}; rigforge against the "
              f"{n}-host floor {ratio(median(tf[f'{n} host(s)']), floor_n):.2f}; per round: "
              + paired(tf[f"{n} host(s)"], tf["1 host(s)"]))
    return ratios


if __name__ == "__main__":
    run_main(main)
