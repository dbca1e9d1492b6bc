"""Shared helpers for the converged-run benchmarks (P1-P4, P6).

A :class:`Fleet` is a throwaway workspace (``rigforge init``) with N sandbox hosts
(``rigforge sandbox up``), made and destroyed through the real CLI in child processes, as a
user would. It is torn down on the way out of its ``with`` block, also on Ctrl-C and SIGTERM.
Timings are taken side by side in one process run: every variant is run once to warm up,
then the variants are alternated round by round, and the medians are compared.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RIGFORGE = BIN / "rigforge"
ANSIBLE_PLAYBOOK = BIN / "ansible-playbook"
# Upper bounds for one child process, so that no step of a benchmark can hang forever.
FIRST_CONVERGE_S = 2400
RUN_S = 900
SSH_S = 300
DOWN_S = 180
# Stock Ansible's own ssh_args default (ansible-core 2.19), plus the workspace's known_hosts:
# the stock baseline keeps host-key checking on, exactly as rigforge does.
STOCK_SSH_ARGS = "-C -o ControlMaster=auto -o ControlPersist=60s"
HOST_KEY_ARGS = "-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes"
RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)",
    re.MULTILINE,
)


class BenchError(RuntimeError):
    pass


def say(message: str) -> None:
    """Progress on stderr; the figures go to stdout."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def machine() -> str:
    """One line for the README's table: CPU count, memory, OS, kernel."""
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    name = "unknown OS"
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("PRETTY_NAME="):
            name = line.split("=", 1)[1].strip('"')
    return f"{os.cpu_count()} CPUs, {mem_kb / 1024 / 1024:.0f} GiB, {name}, kernel {os.uname().release}"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def compile_bytecode() -> None:
    """Compile rigforge's modules, as pip does when it installs a package. A checkout installed
    in editable mode and run with PYTHONDONTWRITEBYTECODE=1 (as the benches run their children,
    to leave the tree alone) would otherwise compile every module on every start, which no
    installed rigforge does; Ansible's modules, installed by pip, are compiled already."""
    import compileall

    compileall.compile_dir(str(ROOT / "provision"), quiet=1)


def header(title: str) -> None:
    compile_bytecode()
    print(title)
    print(f"  date     {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"  machine  {machine()}")
    print(f"  start    {load()}")


def role_default(role: str, name: str):
    """A variable from a shipped role's ``defaults/main.yml``."""
    data = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())
    return data[name]


Variant = (Callable[[], object] | tuple[Callable[[], object], Callable[[], object]]
           | tuple[Callable[[], object], Callable[[], object], Callable[[], object]])


def alternate(variants: dict[str, Variant], runs: int) -> dict[str, list[float]]:
    """Each variant once to warm up (untimed), then ``runs`` rounds of all of them in turn.

    A variant is a callable, or ``(prepare, callable)`` where ``prepare`` runs untimed just
    before each timed call, or ``(prepare, callable, undo)`` where ``undo`` runs untimed just
    after it. A variant returns nothing or raises; it is timed from the outside, so its own
    checks (converged? succeeded?) are part of its time, as for a user.
    """
    steps = {}
    for name, v in variants.items():
        v = v if isinstance(v, tuple) else (None, v)
        steps[name] = (v[0], v[1], v[2] if len(v) > 2 else None)
    for name, (prepare, fn, undo) in steps.items():
        say(f"warm-up: {name}")
        if prepare:
            prepare()
        fn()
        if undo:
            undo()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for round_no in range(1, runs + 1):
        for name, (prepare, fn, undo) in steps.items():
            if prepare:
                prepare()
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
            if undo:
                undo()
        say(f"round {round_no}/{runs}: "
            + ", ".join(f"{n} {t[-1]:.2f} s" for n, t in times.items()))
    return times


def paired(a: list[float], b: list[float]) -> str:
    """The ratio a/b of each round (taken minutes apart at most): how steady the ratio was."""
    return ", ".join(f"{x / y:.2f}" for x, y in zip(a, b, strict=True) if y)


def row(label: str, values: list[float], width: int = 48) -> str:
    spread = f"(min {min(values):.2f}, max {max(values):.2f})" if len(values) > 1 else ""
    return f"  {label:<{width}} median {median(values):8.3f} s over {len(values)} runs {spread}"


class Fleet:
    """A fresh workspace with ``size`` sandbox hosts; ``with Fleet(4) as fleet: ...``.

    ``components`` go into ``inventory/group_vars/all.yml`` as ``rigforge_components``.
    The sandbox profile (``group_vars/sandbox.yml``) already sets ``docker_source: distro``.
    Everything this creates is removed on exit: the hosts (``rigforge sandbox down``), the
    SSH control masters of Ansible and of the workspace's ssh_config, and the temp directory.
    """

    def __init__(self, size: int, components: tuple[str, ...] = ("base", "docker"),
                 prefix: str = "bn", group_vars: dict | None = None):
        if not 1 <= size <= 16:
            raise BenchError("a fleet has 1 to 16 hosts")
        self.size = size
        self.components = components
        self.group_vars = group_vars or {}
        tag = f"{prefix}{os.getpid() % 100000}"
        self.names = [f"{tag}-{i}" for i in range(1, size + 1)]
        self.tmp = Path(tempfile.mkdtemp(prefix="rigforge-bench-"))
        self.ws = self.tmp / "ws"
        # Ansible's control sockets live here, so that teardown can close exactly ours.
        self.control_dir = self.tmp / "cp"
        self.empty_cfg = self.tmp / "stock-ansible.cfg"
        self.addresses: dict[str, str] = {}
        self._started: list[str] = []
        self._old_handlers: dict[int, object] = {}

    # --- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> Fleet:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            self._old_handlers[sig] = signal.signal(sig, _interrupt)
        try:
            self._setup()
        except BaseException:
            self._teardown()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._teardown()

    def _setup(self) -> None:
        self.control_dir.mkdir(mode=0o700)
        self.empty_cfg.write_text("")
        self.rigforge("init", str(self.ws))
        self.set_vars({"rigforge_components": list(self.components), **self.group_vars})
        for name in self.names:
            say(f"sandbox up {name}")
            self._started.append(name)
            self.rigforge("sandbox", "up", name, timeout=600)
        listed = json.loads(self.rigforge("sandbox", "list", "--json").stdout)
        self.addresses = {h["name"]: h["address"] for h in listed if h["name"] in self.names}
        others = [h["name"] for h in listed if h["name"] not in self.names and h["running"]]
        print(f"  fleet    {self.size} sandbox host(s) of this run; "
              f"{len(others)} other sandbox host(s) running on this machine")

    def _teardown(self) -> None:
        # A second Ctrl-C must not leave hosts behind: ignore it while cleaning up (children
        # started now inherit the ignored SIGINT as well).
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self._close_masters()
            for name in reversed(self._started):
                self._remove(name)
            self._started.clear()
            shutil.rmtree(self.tmp, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, previous)
            for sig, handler in self._old_handlers.items():
                signal.signal(sig, handler)

    def _remove(self, name: str) -> subprocess.CompletedProcess:
        say(f"sandbox down {name}")
        proc = self.rigforge("sandbox", "down", name, check=False, timeout=DOWN_S)
        if proc.returncode != 0:
            say(f"could not remove {name}: {proc.stderr.strip()[-300:]}")
        return proc

    def adopt(self, name: str) -> None:
        """Count host ``name``, made by the caller, as this fleet's: its teardown removes it."""
        self._started.append(name)

    def release(self, name: str) -> None:
        """The caller removed host ``name`` itself."""
        self._started.remove(name)

    def close_masters(self) -> None:
        """Close the Ansible and ssh_config connection masters to the fleet's hosts."""
        self._close_masters()

    def _close_masters(self) -> None:
        sockets = list(self.control_dir.glob("*")) if self.control_dir.is_dir() else []
        for sock in sockets:
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "bench"],
                           capture_output=True, timeout=30, check=False)
        if self.ssh_config.is_file():
            for name in self._started:
                subprocess.run(["ssh", "-F", str(self.ssh_config), "-O", "exit", name],
                               capture_output=True, timeout=30, check=False)

    def cpu_quota(self, cpus: float | None) -> None:
        """Let each host use at most ``cpus`` CPUs (None: no limit), through the CFS quota of
        its own cpu cgroup, which covers everything in the container.

        The sandbox hosts share this machine's CPUs, so 8 of them cost their own work 8 times
        over on the same cores, where a real fleet's hosts each bring their own. The same
        quota on every host, small enough that all hosts together leave the controller a
        share, models a fleet of equal, separate machines: one host then runs no faster alone
        than beside the others.
        """
        from provision.sandbox.manager import DEFAULT_STATE_DIR

        for name in self.names:
            state = json.loads((DEFAULT_STATE_DIR / "hosts" / name / "state.json").read_text())
            dirs = [Path(d) for d in state.get("cgroups", [])
                    if (Path(d) / "cpu.cfs_quota_us").is_file()]
            if not dirs:
                raise BenchError(f"{name} has no cpu cgroup of its own to limit")
            for d in dirs:
                period = int((d / "cpu.cfs_period_us").read_text())
                quota = -1 if cpus is None else max(1000, int(cpus * period))
                (d / "cpu.cfs_quota_us").write_text(f"{quota}\n")

    def set_vars(self, values: dict) -> None:
        """Set variables for every host in ``inventory/group_vars/all.yml``."""
        all_yml = self.ws / "inventory" / "group_vars" / "all.yml"
        data = yaml.safe_load(all_yml.read_text()) or {}
        data.update(values)
        all_yml.write_text("---\n" + yaml.safe_dump(data, sort_keys=False))

    # --- commands -------------------------------------------------------------------------

    @property
    def ssh_config(self) -> Path:
        return self.ws / ".rigforge" / "ssh_config"

    def env(self) -> dict[str, str]:
        return {**os.environ, "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.control_dir),
                "PYTHONDONTWRITEBYTECODE": "1"}

    def rigforge(self, *args: str, check: bool = True, timeout: int = RUN_S
                 ) -> subprocess.CompletedProcess:
        """``rigforge --workspace WS ARGS`` in a child process."""
        argv = [str(RIGFORGE), "--workspace", str(self.ws), *args]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, env=self.env(), check=False)
        if check and proc.returncode != 0:
            raise BenchError(f"{' '.join(argv[1:])} exited {proc.returncode}\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc

    def provision(self, hosts: list[str], *extra: str, expect_converged: bool = True,
                  timeout: int = RUN_S) -> dict:
        """``rigforge provision --yes --json`` on ``hosts``; the run's report."""
        proc = self.rigforge("provision", "--yes", "--json", "--limit", ",".join(hosts), *extra,
                             timeout=timeout)
        report = json.loads(proc.stdout)["run"]
        if expect_converged:
            changed = [(h["host"], h["changed"]) for h in report["hosts"] if h["changed"]]
            if changed:
                raise BenchError(f"not a converged run: changed tasks on {changed}: "
                                 f"{report['changed_tasks']}")
        return report

    def playbook(self, playbook: str, hosts: list[str], *, stock: bool = False,
                 extra: tuple[str, ...] = (), expect_converged: bool = True,
                 env_extra: dict[str, str] | None = None, require_recap: bool = True,
                 timeout: int = RUN_S) -> dict[str, dict[str, int]]:
        """Plain ``ansible-playbook`` from the workspace; returns the recap per host.

        ``stock``: Ansible's defaults (``ANSIBLE_CONFIG`` is an empty file). Only what is
        needed to run the same playbook the same safe way is passed: the inventory, the roles
        directory, and the workspace's known_hosts with strict checking (stock ssh_args plus
        the two host-key options). Otherwise the workspace's ``ansible.cfg`` is used.
        """
        env = {**self.env(), **(env_extra or {})}
        argv = [str(ANSIBLE_PLAYBOOK), playbook, "--limit", ",".join(hosts), *extra]
        if stock:
            keys = HOST_KEY_ARGS.format(known_hosts=self.ws / "known_hosts")
            env.update({
                "ANSIBLE_CONFIG": str(self.empty_cfg),
                "ANSIBLE_SSH_ARGS": f"{STOCK_SSH_ARGS} {keys}",
                "ANSIBLE_ROLES_PATH": str(self.ws / "roles"),
                "ANSIBLE_HOST_KEY_CHECKING": "True",
            })
            argv += ["-i", str(self.ws / "inventory" / "hosts.yml")]
        else:
            env["ANSIBLE_CONFIG"] = str(self.ws / "ansible.cfg")
        proc = subprocess.run(argv, cwd=self.ws, capture_output=True, text=True, env=env,
                              timeout=timeout, stdin=subprocess.DEVNULL, check=False)
        recap = {m["host"]: {k: int(v) for k, v in m.groupdict().items() if k != "host"}
                 for m in RECAP.finditer(proc.stdout)}
        bad = proc.returncode != 0 or any(r["failed"] or r["unreachable"] for r in recap.values())
        if expect_converged:
            bad = bad or any(r["changed"] for r in recap.values())
        if bad or (require_recap and set(recap) != set(hosts)):
            raise BenchError(f"ansible-playbook {playbook} ({'stock' if stock else 'rigforge'} "
                             f"settings) rc {proc.returncode}, recap {recap}\n{proc.stdout[-3000:]}"
                             f"\n{proc.stderr[-2000:]}")
        return recap

    def ssh(self, host: str, command: str, script: str | None = None, *, cold: bool = False,
            check: bool = True, timeout: int = SSH_S) -> subprocess.CompletedProcess:
        """One SSH session through the workspace's ssh_config (strict host keys).

        ``cold``: a new connection, not the ssh_config's ControlMaster.
        """
        argv = ["ssh", "-F", str(self.ssh_config)]
        if cold:
            argv += ["-o", "ControlMaster=no", "-o", "ControlPath=none"]
        argv += [host, command]
        proc = subprocess.run(argv, input=script, capture_output=True, text=True,
                              timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise BenchError(f"ssh {host} {command!r} exited {proc.returncode}: {proc.stderr[-500:]}")
        return proc

    def ssh_all(self, hosts: list[str], command: str, script: str | None = None, *,
                cold: bool = False, timeout: int = SSH_S) -> dict[str, str]:
        """The same session on every host at once (one ssh process each); stdout per host."""
        argv = ["ssh", "-F", str(self.ssh_config)]
        if cold:
            argv += ["-o", "ControlMaster=no", "-o", "ControlPath=none"]
        from concurrent.futures import ThreadPoolExecutor

        procs = {h: subprocess.Popen([*argv, h, command], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for h in hosts}
        # One thread per session: the script reaches each host's stdin at once. Feeding them in
        # turn (communicate() host after host) would run a `sh -s` floor one host at a time.
        with ThreadPoolExecutor(max_workers=len(procs) or 1) as pool:
            done = dict(zip(procs, pool.map(lambda p: p.communicate(script, timeout=timeout),
                                            procs.values()), strict=True))
        out = {}
        for host, (stdout, stderr) in done.items():
            if procs[host].returncode != 0:
                raise BenchError(f"ssh {host} {command!r} exited {procs[host].returncode}: "
                                 f"{stderr[-500:]}")
            out[host] = stdout
        return out


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def sudo_script(lines: list[str]) -> tuple[str, str]:
    """``(command, stdin)`` for one ssh session that runs ``lines`` as root."""
    return "sudo -n sh -s", "\n".join(lines) + "\n"


def quoted(words) -> str:
    return " ".join(shlex.quote(w) for w in words)


# --- where the time of one ansible-playbook run goes ----------------------------------------

# A callback plugin written into the bench's temp dir for the profiled runs only (the timed
# runs do not load it): task start and per-host result times, and the action of each task.
TIMER_CALLBACK = '''
import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.loaded = time.time()
        self.rows = []
        self.start = None
        self.plays = []

    def v2_playbook_on_play_start(self, play):
        self.plays.append(time.time())

    def v2_playbook_on_task_start(self, task, is_conditional):
        self.start = time.time()

    v2_playbook_on_handler_task_start = v2_playbook_on_task_start

    def _done(self, result, status):
        task = result._task
        self.rows.append({"task": task.get_name(), "action": task.action, "status": status,
                          "start": self.start, "end": time.time(),
                          "changed": bool(result._result.get("changed"))})

    def v2_runner_on_ok(self, result, **kwargs):
        self._done(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._done(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._done(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._done(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        with open(os.environ["BENCH_TIMER_OUT"], "w") as out:
            json.dump({"loaded": self.loaded, "plays": self.plays, "tasks": self.rows,
                       "stats": time.time()}, out)
'''
# Actions that run on the controller only (no round trip to the host).
CONTROLLER_ACTIONS = {
    "assert", "debug", "fail", "set_fact", "include_vars", "meta", "validate_argument_spec",
    "import_tasks", "include_tasks", "include_role", "import_role", "add_host", "group_by",
}
GATHER_ACTIONS = {"gather_facts", "setup"}


def kind_of(row: dict) -> str:
    action = row["action"].rsplit(".", 1)[-1]
    if row["status"] == "skipped":
        return "skipped (condition false)"
    if action in GATHER_ACTIONS:
        return "fact gathering"
    if action in CONTROLLER_ACTIONS:
        return "controller-only task"
    return "module on the host"


def profile(fleet: Fleet, playbook: str, hosts: list[str], *, stock: bool) -> dict:
    """One untimed ``ansible-playbook`` run with the timer callback; where its time went."""
    plugins = fleet.tmp / "callback_plugins"
    plugins.mkdir(exist_ok=True)
    (plugins / "bench_timer.py").write_text(TIMER_CALLBACK)
    out = fleet.tmp / f"profile-{'stock' if stock else 'rigforge'}.json"
    env = {"ANSIBLE_CALLBACK_PLUGINS": str(plugins), "ANSIBLE_CALLBACKS_ENABLED": "bench_timer",
           "BENCH_TIMER_OUT": str(out)}
    started = time.time()
    fleet.playbook(playbook, hosts, stock=stock, env_extra=env)
    ended = time.time()
    data = json.loads(out.read_text())
    rows = data["tasks"]
    kinds: dict[str, list[float]] = {}
    for r in rows:
        kinds.setdefault(kind_of(r), []).append(r["end"] - r["start"])
    in_tasks = sum(r["end"] - r["start"] for r in rows)
    first = min((r["start"] for r in rows), default=ended)
    last = max((r["end"] for r in rows), default=ended)
    return {
        "total": ended - started,
        "before_first_task": first - started,  # start-up, inventory, playbook and roles load
        "after_last_task": ended - last,
        "between_tasks": (last - first) - in_tasks,  # strategy, templating, play starts
        "kinds": kinds,
        "plays": len(data["plays"]),
        "tasks": len(rows),
    }


def print_profile(label: str, prof: dict) -> None:
    print(f"  {label}: {prof['total']:.2f} s in all, {prof['plays']} plays, "
          f"{prof['tasks']} task results")
    print(f"    {'start-up, inventory, playbook and role loading':<46} "
          f"{prof['before_first_task']:7.2f} s")
    for kind, values in sorted(prof["kinds"].items(), key=lambda kv: -sum(kv[1])):
        print(f"    {kind:<46} {sum(values):7.2f} s  {len(values):3d} x, "
              f"median {median(values) * 1000:6.0f} ms")
    print(f"    {'between tasks (strategy, play start, templating)':<46} "
          f"{prof['between_tasks']:7.2f} s")
    print(f"    {'after the last task (stats, exit)':<46} {prof['after_last_task']:7.2f} s")


def run_main(main: Callable[[], None], cleaned: str = "the sandbox hosts were removed") -> None:
    """A bench's entry point: a BenchError is one line and exit 1; Ctrl-C says what was cleaned."""
    try:
        main()
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"interrupted; {cleaned}", file=sys.stderr)
        sys.exit(130)


def fleet_args(description: str, hosts_help: str):
    """``--hosts N --runs R`` of the fleet benches, range-checked."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--hosts", type=int, default=8, help=hosts_help)
    parser.add_argument("--runs", type=int, default=3, help="timed rounds per variant (default 3)")
    parser.add_argument(
        "--separate-hosts", action=argparse.BooleanOptionalAction, default=True,
        help="also measure the fleet ratios with every host limited to an equal CPU share "
        "(this machine's CPUs / (hosts + 1)), as a model of separate machines (default: on)")
    args = parser.parse_args()
    if not 1 <= args.hosts <= 16 or not 1 <= args.runs <= 20:
        parser.error("--hosts must be 1-16 and --runs 1-20")
    return args


def host_share(hosts: int) -> float:
    """Each modelled machine's CPUs: this machine's, split among the hosts and the controller."""
    return (os.cpu_count() or 1) / (hosts + 1)


def point_at_cache(fleet: Fleet, cache: str) -> str:
    """Every host of ``fleet`` fetches through apt-cacher-ng on ``cache``, but ``cache`` itself:
    through itself, its apt would depend on the service it is installing. Returns the proxy URL."""
    proxy = f"http://{fleet.addresses[cache]}:{role_default('apt_cache', 'apt_cache_port')}"
    fleet.set_vars({"rigforge_apt_proxy": proxy})
    host_vars = fleet.ws / "inventory" / "host_vars"
    host_vars.mkdir(exist_ok=True)
    (host_vars / f"{cache}.yml").write_text(yaml.safe_dump({"rigforge_apt_proxy": ""}))
    return proxy
