"""STAND-IN GPU for sandbox hosts (no GPU exists here): command shims that print outputs
recorded on real hosts, and the driver's /proc entry.

Only what a GPU host's kernel and NVIDIA's binaries would answer is replaced; the checks, the
parsers and the judgment run for real over SSH:

- ``/proc/driver/nvidia/version``: /proc/driver is bind-mounted from a directory holding a
  recorded ``version`` (a systemd-nspawn host keeps CAP_SYS_ADMIN in its own mount namespace);
- commands (``nvidia-smi``, ``journalctl``, ``docker``, ``ollama``, ...): a shell script in
  /usr/local/bin, which comes first on sudo's secure_path, answers each exact argument list
  it was given an answer for (stdout, rc) from /var/lib/rigforge-standin/<command>/, logs every
  call, and hands any other argument list to the real command when there is one.

Recorded outputs come from tests/unit/data/gpu/<parser>/<case>.txt (each with its .source).
"""

import base64
import hashlib
import shlex
from contextlib import contextmanager
from pathlib import Path

DATA = Path(__file__).parents[1] / "unit" / "data" / "gpu"
STATE = "/var/lib/rigforge-standin"
#: A real host's /proc/driver/nvidia/version (the health and workload checks only ask that it exists).
PROC_VERSION = (DATA / "proc_driver_version" / "proprietary_590_debian.txt").read_text()

SHIM = """#!/bin/sh
# STAND-IN for {command} (rigforge's integration tests; tests/integration/gpu_standin.py):
# prints outputs recorded on real GPU hosts. Not NVIDIA's or anyone's real program.
dir={state}/{command}
printf '%s\\n' "$*" >> "$dir/calls.log"
key=$(printf '%s' "$*" | sha256sum | cut -c1-16)
if [ -f "$dir/$key.out" ]; then
    cat "$dir/$key.out"
    [ -f "$dir/$key.err" ] && cat "$dir/$key.err" >&2
    exit "$(cat "$dir/$key.rc")"
fi
for real in /usr/bin/{command} /bin/{command} /usr/sbin/{command}; do
    [ -x "$real" ] && exec "$real" "$@"
done
echo "{command}: stand-in has no recorded answer for: $*" >&2
exit 127
"""


def recorded(folder: str, case: str) -> str:
    return (DATA / folder / f"{case}.txt").read_text()


def _key(args: str) -> str:
    return hashlib.sha256(args.encode()).hexdigest()[:16]


def _root(rig, script: str) -> None:
    rig.ssh(f"sudo -n sh -c {shlex.quote(script)}")


def _put(rig, path: str, text: str) -> None:
    """``text`` byte for byte (base64 on the wire: a recording need not end in a newline)."""
    encoded = base64.b64encode(text.encode()).decode()
    rig.ssh(f"echo {encoded} | base64 -d | sudo -n tee {shlex.quote(path)} >/dev/null")


def answer(rig, command: str, args: str, stdout: str, rc: int = 0, stderr: str = "") -> None:
    """``command ARGS`` (ARGS exactly as the check passes them, space-joined) prints ``stdout``
    and exits ``rc`` on the host from now on."""
    directory = f"{STATE}/{command}"
    _root(rig, f"mkdir -p {directory} && touch {directory}/calls.log")
    _put(rig, f"/usr/local/bin/{command}", SHIM.format(command=command, state=STATE))
    _root(rig, f"chmod 755 /usr/local/bin/{command}")
    key = _key(args)
    _put(rig, f"{directory}/{key}.out", stdout)
    if stderr:
        _put(rig, f"{directory}/{key}.err", stderr)
    _root(rig, f"echo {rc} > {directory}/{key}.rc")


def calls(rig, command: str) -> list[str]:
    return rig.ssh(f"sudo -n cat {STATE}/{command}/calls.log", check=False).stdout.splitlines()


def remove(rig) -> None:
    """Every shim and the /proc stand-in gone: the host is GPU-less again."""
    _root(rig, f"umount /proc/driver 2>/dev/null; for d in {STATE}/*/; do [ -f \"$d/calls.log\" ] && "
               f"rm -f /usr/local/bin/$(basename \"$d\"); done; rm -rf {STATE}")


@contextmanager
def gpu(rig, proc_version: str = PROC_VERSION):
    """The host has a loaded NVIDIA driver, as far as /proc says, until the block ends."""
    _root(rig, f"mkdir -p {STATE}/proc/nvidia")
    _put(rig, f"{STATE}/proc/nvidia/version", proc_version)
    _root(rig, f"grep -q ' /proc/driver ' /proc/self/mounts || mount --bind {STATE}/proc /proc/driver")
    try:
        yield
    finally:
        remove(rig)
