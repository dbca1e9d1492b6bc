"""P4: `rigforge verify` of the CI-profile stack (base + docker) against the raw-SSH floor.

The floor is ONE ssh session per host through the workspace's .rigforge/ssh_config, running
the checks' probes as one shell script (the OS, the free space, dpkg-query of the checked
packages, dpkg --audit, the blacklist file, systemctl is-active/is-enabled, docker info, the
docker group and the apt sources). Also 8 hosts against 1 (target: a fleet costs about
what one host does), with the hosts sharing this machine's CPUs, then (unless
--no-separate-hosts) with every host limited to this machine's CPUs / (hosts + 1), a model of
separate machines (`fleet8_vs_1_separate_hosts=<w>`). `rigforge verify` reuses a host's last
results when all its answers are byte-identical (provision/verify/memo.py): the plain variants
measure that, as a re-verify of a converged host is; `--full` variants evaluate every check.
Hosts are made with `rigforge init` + `rigforge sandbox up` (needs root), provisioned once,
and torn down at the end, on Ctrl-C and on SIGTERM. Every variant runs once untimed, then
they are alternated --runs times and the medians compared.

    python bench/verify.py [--hosts N] [--runs R]

The last line is `ratio_to_floor=<x> fleet8_vs_1=<y> fleet8_vs_1_separate_hosts=<w>` (`n/a`
with fewer than 8 hosts; the largest fleet's ratio is printed above it).
"""

import json
import shutil
import subprocess
import time

from _common import (
    BIN,
    ROOT,
    BenchError,
    Fleet,
    alternate,
    fleet_args,
    header,
    host_share,
    load,
    median,
    paired,
    quoted,
    ratio,
    role_default,
    row,
    run_main,
    say,
    sudo_script,
)

from provision.checks import prefetch
from provision.verify.memo import MEMO_DIR
from provision.verify.spec import PREFETCH_DIR

COMPONENTS = ("base", "docker")
BLACKLIST_FILE = "/etc/apt/apt.conf.d/51rigforge-unattended-upgrades"


def floor_script() -> list[str]:
    """What the base and docker checks read from a host, as one shell script (run as root)."""
    packages = [*role_default("base", "base_packages"), "docker.io"]
    return [
        "uname -s; uname -m; uname -r; cat /etc/os-release",
        "df -P -BG /",
        f"dpkg-query -W -f='${{Status}} ${{Package}} ${{Version}}\\n' {quoted(packages)} || true",
        "dpkg --audit; echo audit $?",
        'apt-cache show "linux-headers-$(uname -r)" >/dev/null 2>&1; echo headers $?',
        f"cat {BLACKLIST_FILE}",
        "test -e /var/run/reboot-required; echo reboot $?",
        "echo docker $(systemctl is-active docker) $(systemctl is-enabled docker)",
        "docker info --format '{{.ServerVersion}}'",
        "getent group docker; getent passwd",
        "cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list "
        "/etc/apt/sources.list.d/*.sources 2>/dev/null || true",
    ]


def check_floor_output(out: str) -> None:
    if "docker active enabled" not in out or "Package-Blacklist" not in out or "audit 0" not in out:
        raise BenchError(f"the floor's probes do not see a converged host:\n{out}")


def remote_commands(fleet: Fleet, host: str) -> int:
    """How many commands the checks run on one host (testinfra logs each at DEBUG level)."""
    ini = fleet.tmp / "pytest.ini"
    ini.write_text("[pytest]\n")
    argv = [str(BIN / "python"), "-m", "pytest", str(ROOT / "provision" / "checks"),
            "-c", str(ini), f"--rootdir={fleet.tmp}", "-p", "no:cacheprovider", "-q",
            f"--ssh-config={fleet.ssh_config}", f"--hosts=ssh://{host}?sudo=true",
            f"--rigforge-workspace={fleet.ws}", f"--rigforge-components={','.join(COMPONENTS)}",
            "-o", "log_cli=true", "--log-cli-level=DEBUG"]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=fleet.tmp, timeout=600,
                          env=fleet.env(), check=False)
    return proc.stdout.count("RUN CommandResult")


def main() -> None:
    args = fleet_args(__doc__.splitlines()[0], "largest fleet (default 8)")
    header("P4  rigforge verify of the CI-profile stack (base + docker, docker_source: distro)")
    with Fleet(args.hosts, COMPONENTS, prefix="bv") as fleet:
        to_floor, fleet_ratios, separate = measure(fleet, args)
    print(f"  end      {load()}")
    largest = max(fleet_ratios)
    if largest not in (1, 8):
        print(f"fleet{largest}_vs_1={fleet_ratios[largest]:.2f}")
    fleet8 = f"{fleet_ratios[8]:.2f}" if 8 in fleet_ratios else "n/a"
    separate8 = f"{separate[8]:.2f}" if 8 in separate else "n/a"
    print(f"ratio_to_floor={to_floor:.2f} fleet8_vs_1={fleet8} "
          f"fleet8_vs_1_separate_hosts={separate8}")


def measure(fleet: Fleet, args) -> tuple[float, dict[int, float], dict[int, float]]:
    names = fleet.names
    host = names[0]
    say(f"provisioning {len(names)} host(s) first: installs the packages, takes minutes")
    started = time.perf_counter()
    fleet.provision(names, expect_converged=False, timeout=2400)
    print(f"  first provision of {len(names)} host(s), installing (context, not a figure): "
          f"{time.perf_counter() - started:.0f} s")
    command, script = sudo_script(floor_script())
    check_floor_output(fleet.ssh(host, command, script).stdout)
    sizes = sorted({n for n in (1, 4, 8, len(names)) if n <= len(names)})

    reused: dict[str, int] = {}

    def verify(n: int, *extra: str, label: str = ""):
        def run():
            proc = fleet.rigforge("verify", "--limit", ",".join(names[:n]), "--format", "json", *extra)
            reused[label or f"verify {' '.join(extra)} on {n} host(s)"] = len(
                json.loads(proc.stdout)["reused_results"])
        return run

    state = fleet.ws / ".rigforge"
    record = prefetch.record_path(state / PREFETCH_DIR, host)
    kept = fleet.tmp / "kept"

    def unrecorded():
        # Untimed: this host's record and kept results are set aside (the live run records
        # the commands again and has nothing to reuse), and put back after it.
        kept.mkdir(exist_ok=True)
        for d in (PREFETCH_DIR, MEMO_DIR):
            path = prefetch.record_path(state / d, host)
            if path.exists():
                shutil.copy2(path, kept / d)
            path.unlink(missing_ok=True)

    def put_back():
        for d in (PREFETCH_DIR, MEMO_DIR):
            if (kept / d).exists():
                shutil.copy2(kept / d, prefetch.record_path(state / d, host))

    def floor(n: int, cold: bool = False):
        return lambda: fleet.ssh_all(names[:n], command, script, cold=cold)

    def warm(n: int):
        return lambda: fleet.ssh_all(names[:n], "true")

    variants: dict = {}
    for n in sizes:
        variants[f"rigforge verify, {n} host(s)"] = verify(n)
        variants[f"floor, {n} host(s) in parallel, warm master"] = (warm(n), floor(n))
    variants["rigforge verify --full, 1 host (every check evaluated)"] = verify(1, "--full")
    if 8 in sizes:
        variants["rigforge verify --full, 8 hosts"] = verify(8, "--full")
    variants["rigforge verify, 1 host, no record (a live exec per command)"] = (
        unrecorded, verify(1, label="verify on 1 host, no record"), put_back)
    variants["floor, 1 host, new connection"] = floor(1, cold=True)
    variants["ssh round trip on the warm master (`true`)"] = (warm(1), lambda: fleet.ssh(host, "true"))
    variants["rigforge --help (CLI start-up)"] = lambda: fleet.rigforge("--help")
    t = alternate(variants, args.runs)
    m = {name: median(values) for name, values in t.items()}
    commands = remote_commands(fleet, host)

    print(f"\nP4  rigforge verify against the floor (medians of {args.runs} alternated runs)")
    for name, values in t.items():
        print(row(name, values, 56))
    print("  hosts whose results were reused in the last timed run: "
          + ", ".join(f"{k.replace('  ', ' ')}: {v}" for k, v in reused.items()))
    one = m["rigforge verify, 1 host(s)"]
    floor_one = m["floor, 1 host(s) in parallel, warm master"]
    to_floor = ratio(one, floor_one)
    print("  per round: "
          + paired(t["rigforge verify, 1 host(s)"], t["floor, 1 host(s) in parallel, warm master"]))
    full_one = m["rigforge verify --full, 1 host (every check evaluated)"]
    print(f"  ratio_to_floor={to_floor:.2f} (target <= 2); against a new connection "
          f"{ratio(one, m['floor, 1 host, new connection']):.2f}; every check evaluated "
          f"(--full) {ratio(full_one, floor_one):.2f}")
    per_cmd = m["ssh round trip on the warm master (`true`)"]
    recorded = len(prefetch.load(record.parent, host))
    print(f"  the checks run {commands} commands on one host; verify answers the {recorded} it "
          f"recorded last time from one round trip (without the record: {commands} x "
          f"{per_cmd * 1000:.0f} ms, one warm round trip each, = {commands * per_cmd:.2f} s)")
    print("  prefetch lever: "
          + paired(t["rigforge verify, 1 host, no record (a live exec per command)"],
                   t["rigforge verify --full, 1 host (every check evaluated)"]))
    print("  reuse lever (--full against reuse): "
          + paired(t["rigforge verify --full, 1 host (every check evaluated)"],
                   t["rigforge verify, 1 host(s)"]))
    fleet_ratios: dict[int, float] = {1: 1.0}
    for n in sizes[1:]:
        fleet_ratios[n] = ratio(m[f"rigforge verify, {n} host(s)"], one)
        floor_n = m[f"floor, {n} host(s) in parallel, warm master"]
        print(f"  fleet{n}_vs_1={fleet_ratios[n]:.2f}; the floor's own "
              f"{ratio(floor_n, floor_one):.2f}; per round: "
              + paired(t[f"rigforge verify, {n} host(s)"], t["rigforge verify, 1 host(s)"]))
    if 8 in sizes:
        print(f"  --full: 8 hosts against 1: "
              f"{ratio(m['rigforge verify --full, 8 hosts'], full_one):.2f}")
    separate: dict[int, float] = {}
    if args.separate_hosts and len(sizes) > 1:
        share = host_share(len(names))
        say(f"P4 fleets again, every host limited to {share:.2f} CPU")
        fleet.cpu_quota(share)
        try:
            ts = alternate({**{f"rigforge verify, {n} host(s)": verify(n) for n in sizes},
                            **{f"floor, {n} host(s)": (warm(n), floor(n)) for n in sizes}},
                           args.runs)
        finally:
            fleet.cpu_quota(None)
        print(f"\nP4  fleets with every host limited to {share:.2f} CPU (separate machines; "
              f"medians of {args.runs} alternated runs)")
        for name, values in ts.items():
            print(row(name, values, 56))
        ms = {name: median(values) for name, values in ts.items()}
        base, floor_base = ms["rigforge verify, 1 host(s)"], ms["floor, 1 host(s)"]
        for n in sizes[1:]:
            mine, floor_n = ms[f"rigforge verify, {n} host(s)"], ms[f"floor, {n} host(s)"]
            separate[n] = ratio(mine, base)
            print(f"  fleet{n}_vs_1={separate[n]:.2f}; the floor's own "
                  f"{ratio(floor_n, floor_base):.2f}; rigforge against the floor at {n}: "
                  f"{ratio(mine, floor_n):.2f}")
    return to_floor, fleet_ratios, separate


if __name__ == "__main__":
    run_main(main)
