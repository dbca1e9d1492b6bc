"""Issue #14: the podman sandbox backend against nspawn (the baseline), side by side in one run.

up  `rigforge sandbox up NAME --backend B`, timed until the command returns, which is when the
    host answers SSH: `up` returns only once `rig` has logged in over SSH with the host keys
    read from the host (provision/sandbox/host.py: wait_for_ssh, ssh_login_works). Untimed
    after each: one more login through the workspace's .rigforge/ssh_config (a new
    connection), then `rigforge sandbox down NAME`.
ci  one `rigforge ci --backend B --components base` round (sandbox up, provision, idempotence,
    verify, sandbox down), in a fresh `rigforge init` workspace made untimed before each run.
Target: podman <= 1.5x nspawn, for both. Nothing is asserted: the table says met / not met.

The one-off import is not timed. A podman host boots an image that rigforge imports from the
cached Debian root into podman's store the first time it is needed. `sandbox down` of the last
podman host removes that image again (container_host.remove), so the import is a one-off only
while some podman host exists: before the warm-up round, the bench makes one podman host of its
own (untimed; its `up` time, import included, is printed as context), halts it at once (it
uses no CPU) and keeps it until the end, so no timed podman `up` or `ci` imports. For context,
the row "sandbox up, podman, importing the image" is what a podman `up` costs with no podman
host around (as for every `rigforge ci --backend podman` on a machine without one): before
each of its runs the kept host is removed, untimed, and the new host is kept (halted) in its
place. It is left out when a podman container not of this run holds the image.

Every variant runs once untimed (the warm-up round), then the variants are alternated --runs
times and the medians compared. Needs root, like `rigforge sandbox up`; every host, workspace
and podman image the bench made is removed at the end, on Ctrl-C and on SIGTERM.

    python bench/backends.py [--runs R] [--no-ci]

The last line is `up_podman_vs_nspawn=<x> ci_podman_vs_nspawn=<y>
up_podman_importing_vs_nspawn=<z>` (`n/a`: ci with --no-ci; the importing row when a podman
container not of this run holds the image, so that no `up` would import it).
"""

import argparse
import json
import shutil
import signal
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from _common import (
    DOWN_S,
    FIRST_CONVERGE_S,
    RIGFORGE,
    BenchError,
    Fleet,
    alternate,
    header,
    load,
    median,
    paired,
    ratio,
    row,
    run_main,
    say,
)

BASELINE = "nspawn"
TARGET = 1.5
UP_S = 600
IMPORTING = "importing "  # the progress line of container_host.ensure_default_image
STEPS = ("provision", "idempotence", "verify")


class Sandboxes(Fleet):
    """A fresh workspace, the kept podman host, and the hosts the variants make and remove.

    Hosts are torn down by ``Fleet``'s exit (also on Ctrl-C and SIGTERM); the hosts of `ci`
    runs that a signal cut short are found by their name (``ci<pid % 100000>`` of the child
    that made them) and torn down as well.
    """

    def __init__(self):
        super().__init__(1, ("base",), prefix="bb")
        self.tag = self.names[0].rsplit("-", 1)[0]
        self.names = []
        self.hold = f"{self.tag}-hold"
        self.ci_hosts: list[str] = []

    def _setup(self) -> None:
        self.control_dir.mkdir(mode=0o700)
        self.empty_cfg.write_text("")
        self.rigforge("init", str(self.ws))

    def _teardown(self) -> None:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            if self.ci_hosts:
                listed = self.rigforge("sandbox", "list", "--json", check=False)
                try:
                    present = {h["name"] for h in json.loads(listed.stdout)}
                except ValueError:
                    present = set(self.ci_hosts)
                self._started.extend(n for n in self.ci_hosts if n in present)
            super()._teardown()
        finally:
            signal.signal(signal.SIGINT, previous)

    def _remove(self, name: str) -> subprocess.CompletedProcess:
        proc = super()._remove(name)
        if proc.returncode != 0:
            # `rigforge` itself may fail to start (a checkout edited under the run): the same
            # removal through the library, in this process
            say(f"removing {name} in-process")
            try:
                from provision.sandbox import get_backend

                if name in {h.name for h in get_backend(BASELINE).list()}:
                    get_backend(BASELINE).down(name)
            except Exception as exc:
                say(f"could not remove {name}: {exc}")
        return proc

    def init(self, ws: Path) -> None:
        """``rigforge --workspace WS init WS``: a fresh workspace for one `ci` run."""
        proc = subprocess.run([str(RIGFORGE), "--workspace", str(ws), "init", str(ws)], check=False,
                              capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL, env=self.env())
        if proc.returncode != 0:
            raise BenchError(f"rigforge init {ws} exited {proc.returncode}: {proc.stderr[-1000:]}")

    def up(self, name: str, backend: str) -> str:
        """``rigforge sandbox up NAME --backend B``; its progress output (stderr)."""
        self._started.append(name)
        proc = self.rigforge("sandbox", "up", name, "--backend", backend, timeout=UP_S, check=False)
        if proc.returncode != 0:
            from provision.sandbox.manager import DEFAULT_STATE_DIR

            console = DEFAULT_STATE_DIR / "hosts" / name / "console.log"  # gone after the down
            tail = console.read_text(errors="replace")[-2500:] if console.is_file() else ""
            raise BenchError(f"sandbox up {name} --backend {backend} exited {proc.returncode}\n"
                             f"{proc.stderr[-2000:]}\nits console log ends:\n{tail}")
        if f"backend: {backend}" not in proc.stderr:
            raise BenchError(f"sandbox up {name} did not use {backend}:\n{proc.stderr[-2000:]}")
        return proc.stderr

    def down(self, name: str) -> None:
        self.rigforge("sandbox", "down", name, timeout=DOWN_S)
        self._started.remove(name)

    def halt(self, name: str) -> None:
        self.rigforge("sandbox", "halt", name, timeout=DOWN_S)

    def others(self) -> int:
        listed = json.loads(self.rigforge("sandbox", "list", "--json").stdout)
        return sum(1 for h in listed if h["running"] and not h["name"].startswith(self.tag))

    def ci(self, ws: Path, backend: str, junit: Path) -> None:
        """``rigforge ci --backend B --components base`` in workspace ``ws``."""
        argv = [str(RIGFORGE), "--workspace", str(ws), "ci", "--backend", backend,
                "--components", "base", "--junit", str(junit)]
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL, env=self.env()) as proc:
            self.ci_hosts.append(f"ci{proc.pid % 100000}")
            try:
                out, err = proc.communicate(timeout=FIRST_CONVERGE_S)
            except BaseException:
                proc.kill()
                proc.wait()
                raise
        if proc.returncode != 0 or "idempotence  ok" not in out or f"backend: {backend}" not in err:
            raise BenchError(f"rigforge ci --backend {backend} exited {proc.returncode}\n"
                             f"{out[-3000:]}\n{err[-3000:]}")
        if backend != BASELINE and IMPORTING in err:
            raise BenchError(f"rigforge ci --backend {backend} imported the image: the kept "
                             f"podman host no longer holds it\n{err[-2000:]}")


def ci_steps(junit: Path) -> dict[str, float]:
    """The seconds of each step of a `rigforge ci` run, from its JUnit report."""
    suite = ET.parse(junit).getroot().find("testsuite")
    return {c.get("name"): float(c.get("time")) for c in suite.findall("testcase")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed rounds per variant (default 3)")
    parser.add_argument("--ci", action=argparse.BooleanOptionalAction, default=True,
                        help="also time a `rigforge ci --components base` round per backend "
                        "(about a minute each here; default: on)")
    args = parser.parse_args()
    if not 1 <= args.runs <= 20:
        parser.error("--runs must be 1-20")
    header("issue #14  sandbox backends: podman against nspawn (the baseline)")
    with Sandboxes() as sb:
        figures = measure(sb, args)
        others = sb.others()
    print(f"  end      {load()}; {others} other sandbox host(s) running")
    print(" ".join(f"{key}={'n/a' if value is None else f'{value:.2f}'}"
                   for key, value in figures.items()))


def measure(sb: Sandboxes, args) -> dict[str, float | None]:
    print(f"  others   {sb.others()} other sandbox host(s) running on this machine "
          "(not this run's; they share its CPUs)")
    say(f"sandbox up {sb.hold} --backend podman (kept, halted, for the whole run: it holds "
        "the imported image)")
    started = time.perf_counter()
    log = sb.up(sb.hold, "podman")
    first = time.perf_counter() - started
    sb.halt(sb.hold)
    imported = IMPORTING in log
    what = ("importing the cached root" if imported else
            "no import: a podman container not of this run holds the image")
    print(f"  first podman up ({what}; one-off, untimed, not a figure): {first:.1f} s")

    imports = {"warm": 0, "cold": 0}

    def up(backend: str, name: str, kind: str = "warm"):
        def run():
            if IMPORTING in sb.up(name, backend):
                imports[kind] += 1
        return run

    def login_and_down(name: str):
        def undo():
            sb.ssh(name, "true", cold=True)
            sb.down(name)
        return undo

    def drop_hold():
        sb.down(sb.hold)

    def keep_hold():
        sb.halt(sb.hold)

    ci_dir = Path(tempfile.mkdtemp(prefix="ci-", dir=sb.tmp))
    junits: dict[str, list[Path]] = {BASELINE: [], "podman": []}

    def fresh_ws():
        shutil.rmtree(ci_dir / "ws", ignore_errors=True)
        sb.init(ci_dir / "ws")

    def ci(backend: str):
        def run():
            junit = ci_dir / f"{backend}-{len(junits[backend])}.xml"
            sb.ci(ci_dir / "ws", backend, junit)
            junits[backend].append(junit)
        return run

    up_n, up_p = "sandbox up, nspawn", "sandbox up, podman"
    up_cold = "sandbox up, podman, importing the image"
    ci_n, ci_p = "rigforge ci --components base, nspawn", "rigforge ci --components base, podman"
    variants: dict = {
        up_n: (None, up(BASELINE, f"{sb.tag}-n"), login_and_down(f"{sb.tag}-n")),
        up_p: (None, up("podman", f"{sb.tag}-p"), login_and_down(f"{sb.tag}-p")),
    }
    if imported:  # else another container keeps the image in the store: no run would import
        # the kept host is removed (and the image with it), then the new host is kept instead
        variants[up_cold] = (drop_hold, up("podman", sb.hold, "cold"), keep_hold)
    if args.ci:
        variants[ci_n] = (fresh_ws, ci(BASELINE))
        variants[ci_p] = (fresh_ws, ci("podman"))
    t = alternate(variants, args.runs)
    m = {name: median(values) for name, values in t.items()}
    if imports["warm"]:
        raise BenchError(f"{imports['warm']} podman up(s) imported the image although the kept "
                         "host held it: the podman figures include the import")

    print(f"\nsandbox backends (medians of {args.runs} alternated runs after one untimed warm-up "
          "round; the one-off import of the image into podman's store is in no podman row but "
          f"\"{up_cold}\")")
    for name, values in t.items():
        print(row(name, values, 44))
    print(f"\n  {'variant':<44} {'median':>8}  {'ratio to nspawn':>15}  target")
    table = [(up_n, None), (up_p, up_n), (up_cold, up_n), (ci_n, None), (ci_p, ci_n)]
    figures: dict[str, float | None] = {}
    for name, base in table:
        if name not in m:
            continue
        if base is None:
            print(f"  {name:<44} {m[name]:7.2f}s  {'1.00':>15}  (baseline)")
            continue
        r = ratio(m[name], m[base])
        if name == up_cold:
            goal = (f"context, not a target: {imports['cold']} of {args.runs + 1} runs imported "
                    "(what a podman up costs with no podman host around, as every "
                    "`rigforge ci --backend podman` on a machine without one)")
        else:
            goal = f"<= {TARGET}x: {'met' if r <= TARGET else 'NOT met'}"
        print(f"  {name:<44} {m[name]:7.2f}s  {r:15.2f}  {goal}")
    figures["up_podman_vs_nspawn"] = ratio(m[up_p], m[up_n])
    figures["ci_podman_vs_nspawn"] = ratio(m[ci_p], m[ci_n]) if args.ci else None
    figures["up_podman_importing_vs_nspawn"] = ratio(m[up_cold], m[up_n]) if up_cold in m else None
    print(f"  per round, up podman/nspawn: {paired(t[up_p], t[up_n])}")
    if up_cold not in m:
        print(f"  \"{up_cold}\" not measured: a podman container not of this run holds the "
              "image, so no up would import it")
    if args.ci:
        print(f"  per round, ci podman/nspawn: {paired(t[ci_p], t[ci_n])}")
        for backend, label in ((BASELINE, ci_n), ("podman", ci_p)):
            timed = junits[backend][1:]  # not the warm-up's
            steps = {s: median([ci_steps(j)[s] for j in timed]) for s in STEPS}
            rest = m[label] - sum(steps.values())
            print(f"  ci {backend:<7} steps (medians, from its --junit): "
                  + ", ".join(f"{s} {v:.1f} s" for s, v in steps.items())
                  + f"; the rest (start-up, sandbox up and down) {rest:.1f} s")
    return figures


if __name__ == "__main__":
    run_main(main, "the sandbox hosts, workspaces and podman image of this run were removed")
