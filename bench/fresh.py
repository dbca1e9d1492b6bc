"""Issue #16: a first `rigforge provision` of brand-new hosts against the raw-SSH floor and stock Ansible.

Every timed run gets a BRAND-NEW Debian 12 sandbox host (`rigforge sandbox up`, untimed),
provisions it (timed) and removes it (`rigforge sandbox down`, untimed). Every package comes
through a warm apt-cacher-ng on one more sandbox host of the run (`playbooks/apt_cache.yml`,
clients pointed at it with `rigforge_apt_proxy`, as in bench/apt_cache.py), so that the
network does not dominate: the untimed warm-up round fills it. Three variants:

  floor     ONE ssh session through the workspace's .rigforge/ssh_config running, as root:
            the same files written (apt's first), `apt-get update`, ONE `apt-get install
            --no-install-recommends` of the same packages, `systemctl enable --now` of the
            same services. What "the same" is comes from the warm-up run of rigforge on its
            own fresh host, not from a hand-written list: the packages are the dpkg
            difference before/after that run (everything it installed, dependencies too),
            the files and services those named in the roles' manifests
            (/var/lib/rigforge/state/*.manifest, and the manifests themselves), with their
            content, mode and owner as rigforge left them.
  rigforge  `rigforge provision --yes --json --limit HOST`.
  stock     the same workspace's `site.yml` under stock Ansible settings (ANSIBLE_CONFIG = an
            empty file: no pipelining, ControlPersist 60 s, no fact cache), host keys still
            checked against the workspace's known_hosts (StrictHostKeyChecking=yes).

Each variant once untimed, then --runs rounds alternated; medians and ratios, no targets.
Where rigforge's time goes: ansible-runner's task events (`runner_on_ok`, `_failed`,
`_skipped`, `_unreachable`; their `duration`) summed by role for every timed rigforge run.
rigforge keeps no event on disk (its event handler returns False, so ansible-runner writes no
job_events/), so the rigforge variant runs rigforge's own CLI in a child Python that wraps
`provision.runner.EventCollector.__call__` to note each task event's host, play, role, task
and duration (a list append per event) and writes them out at exit.

    python bench/fresh.py [--stack base,docker | --stack gpu] [--runs N]   (root: sandbox hosts)

`--stack gpu` is base,nvidia_driver,cuda,docker (the driver and CUDA 11.8 from Debian's
archive: several minutes per host). The last line is
`rigforge_vs_floor=<x> stock_vs_floor=<y> stock_vs_rigforge=<z>`.
"""

import argparse
import base64
import json
import shlex
import subprocess
import sys
import time

from _common import (
    FIRST_CONVERGE_S,
    BenchError,
    Fleet,
    alternate,
    header,
    load,
    median,
    paired,
    point_at_cache,
    ratio,
    row,
    run_main,
    say,
    sudo_script,
)
from apt_cache import ACNG_LOG, acng_totals, mb

from provision.converged import STATE_DIR

STACKS = {
    "base,docker": ("base", "docker"),
    "gpu": ("base", "nvidia_driver", "cuda", "docker"),
}
TASK_EVENTS = ("runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable")

# rigforge's CLI, as the console script runs it, with ansible-runner's task events noted.
# Only names and timings are kept (no results: they can carry module arguments).
EVENT_WRAPPER = r'''
import atexit, json, os, sys
from provision import runner
rows = []
original = runner.EventCollector.__call__
def noting(self, event):
    if event.get("event") in TASK_EVENTS_HERE:
        d = event.get("event_data") or {}
        rows.append({"event": event["event"], "host": d.get("host"), "play": d.get("play"),
                     "role": d.get("role"), "task": d.get("task"), "duration": d.get("duration"),
                     "start": d.get("start"), "end": d.get("end")})
    return original(self, event)
runner.EventCollector.__call__ = noting
def dump():
    with open(os.environ["BENCH_EVENTS_OUT"], "w") as out:
        json.dump(rows, out)
atexit.register(dump)
from provision.cli import main
sys.argv[0] = "rigforge"
sys.exit(main())
'''.replace("TASK_EVENTS_HERE", repr(TASK_EVENTS))

INSTALLED = "dpkg-query -W -f='${db:Status-Abbrev} ${Package}\\n' | awk '$1 == \"ii\" { print $2 }'"


class Fresh:
    """Brand-new hosts, one at a time, in the fleet's workspace (removed with the fleet too)."""

    def __init__(self, fleet: Fleet, timeout: int):
        self.fleet = fleet
        self.timeout = timeout
        self.serial = 0
        self.host: str | None = None
        self.cache = fleet.names[0]
        self.packages: list[str] = []       # what rigforge installed, from the warm-up
        self.files: list[dict] = []         # path, mode, owner, group, content (base64)
        self.services: list[str] = []
        self.role_times: list[dict[str, float]] = []   # one per timed rigforge run
        self.task_times: list[dict[str, float]] = []
        self.run_times: list[float] = []
        self.before: set[str] = set()

    # --- hosts ----------------------------------------------------------------------------

    def up(self) -> None:
        self.serial += 1
        name = f"{self.cache.rsplit('-', 1)[0]}-f{self.serial}"
        self.fleet.adopt(name)  # the fleet's teardown removes it if we do not
        self.fleet.rigforge("sandbox", "up", name, timeout=600)
        self.host = name

    def down(self) -> None:
        name, self.host = self.host, None
        if name is None:
            return
        self.fleet.close_masters()  # this host's Ansible and ssh_config masters
        proc = self.fleet.rigforge("sandbox", "down", name, check=False, timeout=300)
        if proc.returncode != 0:
            raise BenchError(f"sandbox down {name}: {proc.stderr.strip()[-300:]}")
        self.fleet.release(name)

    def installed(self) -> set[str]:
        return set(self.fleet.ssh(self.host, INSTALLED).stdout.split())

    # --- rigforge -------------------------------------------------------------------------

    def rigforge_prepare(self) -> None:
        self.up()
        if not self.packages:
            self.before = self.installed()

    def rigforge_run(self) -> None:
        out = self.fleet.tmp / f"events-{self.host}.json"
        argv = [sys.executable, "-c", EVENT_WRAPPER, "--workspace", str(self.fleet.ws),
                "provision", "--yes", "--json", "--limit", self.host]
        started = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout,
                              stdin=subprocess.DEVNULL, check=False,
                              env={**self.fleet.env(), "BENCH_EVENTS_OUT": str(out)})
        seconds = time.perf_counter() - started
        try:
            report = json.loads(proc.stdout)["run"]
        except (ValueError, KeyError):
            report = None
        hosts = {h["host"]: h["status"] for h in (report or {}).get("hosts", [])}
        if proc.returncode != 0 or hosts.get(self.host) != "changed":
            raise BenchError(f"rigforge provision of {self.host} rc {proc.returncode}, hosts "
                             f"{hosts}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        events = json.loads(out.read_text())
        self.last = (seconds, by_role(events))

    def rigforge_undo(self) -> None:
        if not self.packages:
            self.derive()
        self.down()

    def derive(self) -> None:
        """The floor's packages, files and services, from the host rigforge just provisioned."""
        after = self.installed()
        self.packages = sorted(after - self.before)
        gone = sorted(self.before - after)
        if not self.packages:
            raise BenchError("rigforge installed no package: nothing for the floor to install")
        manifests = self.fleet.ssh(self.host, f"cat {STATE_DIR}/*.manifest").stdout.split("\n")
        files, services = [], []
        for line in manifests:
            words = line.split()
            if len(words) >= 2 and words[0] == "file":
                files.append(words[1])
            elif len(words) >= 2 and words[0] == "service":
                services.append(words[1])
        listing = self.fleet.ssh(self.host, f"ls {STATE_DIR}/*.manifest").stdout.split()
        self.services = sorted(set(services))
        script = "\n".join(
            f"if [ -f {shlex.quote(p)} ]; then echo \"@ {p} $(stat -c '%a %U %G' {shlex.quote(p)}) "
            f"$(base64 -w0 < {shlex.quote(p)})\"; fi"
            for p in dict.fromkeys([*files, *listing]))
        command, stdin = sudo_script([script])
        out = self.fleet.ssh(self.host, command, stdin).stdout
        self.files = []
        for line in out.splitlines():
            parts = line.split(" ")
            if parts[0] == "@" and len(parts) in (5, 6):
                self.files.append({"path": parts[1], "mode": parts[2], "owner": parts[3],
                                   "group": parts[4], "b64": parts[5] if len(parts) == 6 else ""})
        print(f"  floor, from the warm-up rigforge run: {len(self.packages)} packages installed "
              f"({len(gone)} removed: {' '.join(gone) or '-'}), {len(self.files)} files "
              f"({', '.join(f['path'] for f in self.files)}), services {' '.join(self.services) or '-'}")

    # --- floor ----------------------------------------------------------------------------

    def floor_script(self) -> str:
        def write(f: dict) -> list[str]:
            p = shlex.quote(f["path"])
            data = base64.b64decode(f["b64"]).decode("utf-8", "replace")
            return [f"mkdir -p $(dirname {p})",
                    f"base64 -d > {p} <<'EOF_{len(data)}'\n{f['b64']}\nEOF_{len(data)}",
                    f"chown {f['owner']}:{f['group']} {p}", f"chmod {f['mode']} {p}"]

        apt_first = [f for f in self.files if f["path"].startswith("/etc/apt/")]
        later = [f for f in self.files if f not in apt_first]
        lines = ["set -e", "export DEBIAN_FRONTEND=noninteractive LC_ALL=C"]
        for f in apt_first:
            lines += write(f)
        lines += ["apt-get update -q",
                  "apt-get install -y -q --no-install-recommends "
                  "-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "
                  + " ".join(shlex.quote(p) for p in self.packages)]
        for f in later:
            lines += write(f)
        if self.services:
            lines.append("systemctl enable --now " + " ".join(self.services))
            lines.append("systemctl is-active " + " ".join(self.services))
        return "\n".join(lines) + "\n"

    def floor_run(self) -> None:
        command, stdin = "sudo -n sh -s", self.floor_script()
        self.fleet.ssh(self.host, command, stdin, timeout=self.timeout)

    def floor_undo(self) -> None:
        if not self.floor_checked:
            missing = sorted(set(self.packages) - self.installed())
            extra = sorted(self.installed() - self.before - set(self.packages))
            print(f"  floor's warm-up host against rigforge's: packages missing "
                  f"{' '.join(missing) or 'none'}, extra {' '.join(extra) or 'none'}")
            self.floor_checked = True
        self.down()

    floor_checked = False

    # --- stock ----------------------------------------------------------------------------

    def stock_run(self) -> None:
        self.fleet.playbook("site.yml", [self.host], stock=True, expect_converged=False,
                            timeout=self.timeout)


def by_role(events: list[dict]) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds of task results per role, and per task. A play's own tasks (fact gathering)
    count under the play's name; the shared task files of `common` under the play (one per
    component) that imported them."""
    roles: dict[str, float] = {}
    tasks: dict[str, float] = {}
    for e in events:
        role, play = e.get("role"), e.get("play") or "?"
        key = (f"common, in play {play!r}" if role == "common" else role) or f"(play {play!r})"
        seconds = float(e.get("duration") or 0.0)
        roles[key] = roles.get(key, 0.0) + seconds
        task = f"{role or '(play)'}: {e.get('task')}"
        tasks[task] = tasks.get(task, 0.0) + seconds
    return roles, tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", choices=sorted(STACKS), default="base,docker",
                        help="base,docker (default) or gpu (base,nvidia_driver,cuda,docker)")
    parser.add_argument("--runs", type=int, default=2, help="timed rounds per variant (default 2)")
    args = parser.parse_args()
    if not 1 <= args.runs <= 20:
        parser.error("--runs must be 1-20")
    components = STACKS[args.stack]
    header(f"#16  first provision of brand-new hosts ({', '.join(components)}; docker_source: "
           "distro; apt through a warm apt-cacher-ng)")
    with Fleet(1, components, prefix="fr") as fleet:
        results = measure(fleet, args)
    print(f"  end      {load()}")
    print("rigforge_vs_floor={:.2f} stock_vs_floor={:.2f} stock_vs_rigforge={:.2f}".format(*results))


def setup_cache(fleet: Fleet) -> str:
    cache = fleet.names[0]
    proxy = point_at_cache(fleet, cache)
    say(f"apt-cacher-ng on {cache}")
    started = time.perf_counter()
    extra = ("-e", f"apt_cache_hosts={cache}")
    fleet.playbook("playbooks/apt_cache.yml", [cache], extra=extra, expect_converged=False,
                   timeout=1200)
    print(f"  apt cache {cache} at {proxy} (set up in {time.perf_counter() - started:.0f} s, "
          "untimed); the warm-up round fills it")
    return proxy


def measure(fleet: Fleet, args) -> tuple[float, float, float]:
    setup_cache(fleet)
    cache = fleet.names[0]
    fresh = Fresh(fleet, FIRST_CONVERGE_S if args.stack == "gpu" else 1200)
    names = {"floor": "floor: one ssh session (update, install, files, services)",
             "rigforge": "rigforge provision",
             "stock": "ansible-playbook site.yml, stock settings"}
    state = {"round": 0}

    def rigforge_undo():
        warm = not fresh.packages
        fresh.rigforge_undo()
        if not warm:
            fresh.run_times.append(fresh.last[0])
            fresh.role_times.append(fresh.last[1][0])
            fresh.task_times.append(fresh.last[1][1])
        else:
            state["warm_roles"] = fresh.last[1][0]
            state["log_start"] = None

    def floor_undo():
        fresh.floor_undo()
        if state.get("log_start") is None:  # end of the warm-up round: the cache is warm now
            state["log_start"] = int(fleet.ssh(
                cache, f"sudo -n stat -c %s {ACNG_LOG} 2>/dev/null || echo 0").stdout)

    # rigforge first: its warm-up run is where the floor's package list comes from.
    t = alternate({
        names["rigforge"]: (fresh.rigforge_prepare, fresh.rigforge_run, rigforge_undo),
        names["stock"]: (fresh.up, fresh.stock_run, fresh.down),
        names["floor"]: (fresh.up, fresh.floor_run, floor_undo),
    }, args.runs)
    log = fleet.ssh(cache, f"sudo -n tail -c +{state['log_start'] + 1} {ACNG_LOG}").stdout
    by_type, _ = acng_totals(log)

    m = {k: median(t[v]) for k, v in names.items()}
    print(f"\nfirst provision of a brand-new host, {args.stack} "
          f"(medians of {args.runs} alternated runs, a new host for each)")
    for k in ("floor", "rigforge", "stock"):
        print(row(names[k], t[names[k]], 56))
    print(f"  apt-cacher-ng during the timed rounds: fetched upstream {mb(by_type.get('I', 0)).strip()}, "
          f"served {mb(by_type.get('O', 0)).strip()}")
    rf_floor = ratio(m["rigforge"], m["floor"])
    stock_floor = ratio(m["stock"], m["floor"])
    stock_rf = ratio(m["stock"], m["rigforge"])
    print(f"  rigforge/floor {rf_floor:.2f} (per round: {paired(t[names['rigforge']], t[names['floor']])})")
    print(f"  stock/floor    {stock_floor:.2f} (per round: {paired(t[names['stock']], t[names['floor']])})")
    print(f"  stock/rigforge {stock_rf:.2f} (per round: {paired(t[names['stock']], t[names['rigforge']])})")

    print("\nwhere rigforge's time goes, by role (ansible-runner's task events: sum of their "
          "durations, one host)")
    runs = fresh.role_times
    roles = list(dict.fromkeys(r for run in runs for r in run))
    cols = " ".join(f"{'run ' + str(i + 1):>8}" for i in range(len(runs)))
    width = max([44, *(len(r) for r in roles)])
    print(f"  {'role':<{width}} {'median':>8} {cols}")

    def line(label: str, values: list[float]) -> None:
        print(f"  {label:<{width}} {median(values):8.2f} " + " ".join(f"{v:8.2f}" for v in values))

    idle = []
    for r in roles:
        values = [run.get(r, 0.0) for run in runs]
        if median(values) < 0.1:
            idle.append(r)
        else:
            line(r, values)
    if idle:
        line(f"{len(idle)} roles with nothing to do here (skipped)",
             [sum(run.get(r, 0.0) for r in idle) for run in runs])
    tasks = [sum(run.values()) for run in runs]
    line("all tasks", tasks)
    line("outside task results (CLI, checks, Ansible start-up, between tasks)",
         [w - s for w, s in zip(fresh.run_times, tasks, strict=True)])
    line("rigforge provision, wall", fresh.run_times)
    names_t = list(dict.fromkeys(k for run in fresh.task_times for k in run))
    slowest = sorted(names_t, key=lambda k: -median([run.get(k, 0.0) for run in fresh.task_times]))
    print("  slowest tasks (median s): " + "; ".join(
        f"{k} {median([run.get(k, 0.0) for run in fresh.task_times]):.1f}" for k in slowest[:6]))
    warm = state.get("warm_roles", {})
    if warm:
        print("  warm-up run (cold cache, context): "
              + ", ".join(f"{r} {v:.1f} s" for r, v in warm.items() if v >= 0.1))
    return rf_floor, stock_floor, stock_rf


if __name__ == "__main__":
    run_main(main)
