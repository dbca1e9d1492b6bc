"""P5: `rigforge --help` start-up time against `ansible-playbook --version`, in one run.

Both commands are started alternately, N times each, from this process; the script prints
the medians and the ratio (target: rigforge <= 0.25x, through lazy imports).

    python bench/startup.py [--runs N]
"""

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def _time(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    # As pip compiles an installed package (see _common.compile_bytecode).
    compileall.compile_dir(str(Path(__file__).resolve().parents[1] / "provision"), quiet=1)
    ours = [str(BIN / "rigforge"), "--help"]
    baseline = [str(BIN / "ansible-playbook"), "--version"]
    _time(ours), _time(baseline)  # warm the page cache for both
    a, b = [], []
    for _ in range(args.runs):
        a.append(_time(ours))
        b.append(_time(baseline))
    ours_s, base_s = statistics.median(a), statistics.median(b)
    print(f"rigforge --help           median {ours_s * 1000:7.1f} ms over {args.runs} runs")
    print(f"ansible-playbook --version median {base_s * 1000:7.1f} ms over {args.runs} runs")
    print(f"ratio={ours_s / base_s:.3f}")


if __name__ == "__main__":
    main()
