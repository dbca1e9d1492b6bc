"""STAND-IN for the Miniforge installer (conda-forge/miniforge releases), not Miniforge itself.

The test machines cannot download from GitHub, so the conda role's tests install this instead:
a self-contained bash script, named like the real release asset
(``Miniforge3-<version>-Linux-<arch>.sh``), that behaves like the real installer where the
role relies on it:

- ``-b`` batch mode (without it the stand-in refuses: it has no license prompt), ``-p PREFIX``
  (default ``~/miniforge3``), ``-u`` to update an existing prefix, ``-f`` like ``-u``;
- an existing prefix without ``-u``/``-f`` is an error with the real installer's message and
  exit status 1;
- it lays out ``PREFIX/bin/conda``, ``PREFIX/condabin/conda``, ``PREFIX/etc/profile.d/conda.sh``,
  ``PREFIX/conda-meta/history`` (one entry per install or update, with the installer's
  arguments), ``PREFIX/.condarc`` (``channels: [conda-forge]``), ``PREFIX/envs``, ``PREFIX/pkgs``
  and a ``PREFIX/STAND-IN`` file saying what it is.

``PREFIX/bin/conda`` is a small python3 script (python3 is on every host Ansible manages) that
answers, in conda's own output formats:

- ``conda --version``: ``conda <the conda version of that Miniforge release>``;
- ``conda env create -f FILE [-n NAME | -p PATH]``: creates the environment's ``conda-meta/``
  with a ``history`` entry recording the spec and one ``<package>-<version>-standin_0.json``
  record per dependency (nothing is downloaded or installed); an existing environment is an
  error, as with conda;
- ``conda env update -f FILE [-n NAME | -p PATH] [--prune]``: appends a history entry, adds the
  new dependencies and, with ``--prune``, removes the records of those no longer listed;
- ``conda env list [--json]`` and ``conda info --envs [--json]``: the base prefix and every
  environment in ``PREFIX/envs`` (``--json`` prints an info dictionary with ``envs``, as conda
  25.3 does).

Anything else exits 2 with a message naming the stand-in. Stdout formats are kept real; the
stand-in is named in comments, in the installer's own output and in ``PREFIX/STAND-IN``.

>>> path, sha256 = build_installer(tmp_dir, "25.3.0-3", "25.3.0")
>>> path.name
'Miniforge3-25.3.0-3-Linux-x86_64.sh'
"""

import hashlib
import re
from pathlib import Path

_VERSION = re.compile(r"^\d+\.\d+\.\d+-\d+$")
_CONDA_VERSION = re.compile(r"^\d+\.\d+\.\d+$")

# The conda stand-in, copied verbatim into PREFIX/bin/conda (the version is substituted).
_CONDA = r'''#!/usr/bin/python3
# STAND-IN for conda, installed by the STAND-IN Miniforge installer of rigforge's tests
# (tests/standins/miniforge.py). It creates no real environments and downloads nothing.
import argparse
import datetime
import json
import os
import re
import shutil
import sys

CONDA_VERSION = "@CONDA_VERSION@"
ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
ENVS_DIR = os.path.join(ROOT, "envs")


def fail(kind, message, code=1):
    sys.stderr.write(f"\n{kind}: {message}\n\n")
    sys.exit(code)


def environments():
    found = [ROOT]
    if os.path.isdir(ENVS_DIR):
        for name in sorted(os.listdir(ENVS_DIR)):
            path = os.path.join(ENVS_DIR, name)
            if os.path.isdir(os.path.join(path, "conda-meta")):
                found.append(path)
    return found


def env_list(args):
    envs = environments()
    if args.json:
        info = {
            "active_prefix": os.environ.get("CONDA_PREFIX"),
            "conda_version": CONDA_VERSION,
            "envs": envs,
            "envs_dirs": [ENVS_DIR, os.path.expanduser("~/.conda/envs")],
            "root_prefix": ROOT,
        }
        print(json.dumps(info, indent=2, sort_keys=True))
        return
    active = os.environ.get("CONDA_PREFIX")
    lines = ["", "# conda environments:", "#"]
    for prefix in envs:
        name = "base" if prefix == ROOT else os.path.basename(prefix)
        lines.append(f"{name:20} {'*' if prefix == active else ' '} {prefix}")
    print("\n".join(lines) + "\n")


def read_spec(path):
    """name, channels and dependencies of an environment.yml (no YAML library on the host)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        fail("EnvironmentFileNotFound", f"'{path}' file not found ({exc.strerror})")
    name, section, spec = None, None, {"channels": [], "dependencies": []}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        top = re.match(r"^([A-Za-z_]+):\s*(.*?)\s*$", line)
        if top:
            section = top.group(1)
            if section == "name":
                name = top.group(2).strip("'\"")
            continue
        item = re.match(r"^\s*-\s+(.+?)\s*$", line)
        if item and section in spec:
            spec[section].append(item.group(1).strip("'\""))
    return name, spec


def target(args, name_from_file):
    if args.prefix:
        return os.path.abspath(args.prefix)
    name = args.name or name_from_file
    if not name:
        fail("CondaValueError", "either -n NAME or -p PREFIX option required,\n"
             "try \"conda env create -h\" for more details")
    return os.path.join(ENVS_DIR, name)


def package_name(dependency):
    return re.split(r"[\s=<>!~]", dependency, maxsplit=1)[0]


def record(prefix, command, spec, prune):
    meta = os.path.join(prefix, "conda-meta")
    os.makedirs(meta, exist_ok=True)
    wanted = {}
    for dep in spec["dependencies"]:
        if dep and dep != "pip":
            wanted[re.sub(r"[^A-Za-z0-9_.-]", "_", package_name(dep))] = dep
    for entry in os.listdir(meta):
        match = re.match(r"^(.+)-standin-standin_0\.json$", entry)
        if match and prune and match.group(1) not in wanted:
            os.remove(os.path.join(meta, entry))
    for safe, dep in wanted.items():
        with open(os.path.join(meta, f"{safe}-standin-standin_0.json"), "w", encoding="utf-8") as f:
            json.dump({"name": package_name(dep), "spec": dep, "channel": "conda-forge",
                       "note": "STAND-IN record: nothing was installed"}, f, indent=2)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    with open(os.path.join(meta, "history"), "a", encoding="utf-8") as f:
        f.write(f"==> {stamp} <==\n# cmd: {command}\n# conda version: {CONDA_VERSION}\n"
                f"# update specs: {json.dumps(spec['dependencies'])}\n")
        if prune:
            f.write("# prune: true\n")


def env_create(args):
    name, spec = read_spec(args.file)
    prefix = target(args, name)
    if os.path.exists(prefix):
        fail("CondaValueError", f"prefix already exists: {prefix}")
    record(prefix, " ".join(sys.argv), spec, prune=False)
    print(f"\n#\n# To activate this environment, use\n#\n#     $ conda activate {os.path.basename(prefix)}\n"
          "#\n# To deactivate an active environment, use\n#\n#     $ conda deactivate\n")


def env_update(args):
    name, spec = read_spec(args.file)
    prefix = target(args, name)
    record(prefix, " ".join(sys.argv), spec, prune=args.prune)
    print(f"\n#\n# To activate this environment, use\n#\n#     $ conda activate {os.path.basename(prefix)}\n"
          "#\n# To deactivate an active environment, use\n#\n#     $ conda deactivate\n")


def env_remove(args):
    prefix = target(args, None)
    if prefix == ROOT or not os.path.isdir(prefix):
        fail("EnvironmentLocationNotFound", f"Not a conda environment: {prefix}")
    shutil.rmtree(prefix)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        unsupported()


def parser():
    top = _Parser(prog="conda", add_help=True)
    top.add_argument("-V", "--version", action="store_true")
    commands = top.add_subparsers(dest="command", parser_class=_Parser)
    env = commands.add_parser("env").add_subparsers(dest="env_command", parser_class=_Parser)
    for verb, func in (("create", env_create), ("update", env_update), ("remove", env_remove)):
        sub = env.add_parser(verb)
        sub.set_defaults(func=func)
        sub.add_argument("-n", "--name")
        sub.add_argument("-p", "--prefix")
        sub.add_argument("-y", "--yes", action="store_true")
        sub.add_argument("-q", "--quiet", action="store_true")
        sub.add_argument("--json", action="store_true")
        if verb != "remove":
            sub.add_argument("-f", "--file", default="environment.yml")
        if verb == "update":
            sub.add_argument("--prune", action="store_true")
    listing = env.add_parser("list")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=env_list)
    info = commands.add_parser("info")
    info.add_argument("-e", "--envs", action="store_true")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=lambda a: env_list(a) if a.envs else unsupported())
    return top


def unsupported():
    fail("CondaError", "STAND-IN conda (rigforge tests) does not implement: " + " ".join(sys.argv[1:]), 2)


def main():
    args, extra = parser().parse_known_args()
    if args.version and not args.command:
        print(f"conda {CONDA_VERSION}")
        return
    if extra or not getattr(args, "func", None):
        unsupported()
    args.func(args)


if __name__ == "__main__":
    main()
'''

# Miniforge's etc/profile.d/conda.sh defines the `conda` shell function; this one only runs
# the stand-in (no activation).
_PROFILE = r"""# STAND-IN for Miniforge's etc/profile.d/conda.sh (rigforge tests): no activation support.
export CONDA_EXE='@PREFIX@/bin/conda'
export CONDA_PYTHON_EXE='/usr/bin/python3'
conda() {
    "$CONDA_EXE" "$@"
}
"""

_INSTALLER = r"""#!/bin/sh
# STAND-IN for Miniforge3-@MINIFORGE_VERSION@-Linux-@ARCH@.sh, built by rigforge's tests
# (tests/standins/miniforge.py). It is NOT Miniforge: it installs a stand-in `conda` that
# reports conda @CONDA_VERSION@ and fakes environments; it downloads and installs no packages.
# Options as in the real installer: -b batch, -p PREFIX, -u update an existing prefix, -f force.
set -eu

INSTALLER_NAME="Miniforge3"
INSTALLER_VER="@MINIFORGE_VERSION@"
CONDA_VER="@CONDA_VERSION@"
PREFIX="${HOME:-/root}/miniforge3"
BATCH=0
FORCE=0
ARGS="$*"

usage() {
    printf "usage: %s [options]\n\nInstalls %s %s (STAND-IN).\n\n" "$0" "$INSTALLER_NAME" "$INSTALLER_VER"
    printf "%s\n" "-b           run install in batch mode (without manual intervention)," \
        "-f           no error if install prefix already exists" \
        "-h           print this help message and exit" \
        "-p PREFIX    install prefix, defaults to \$HOME/miniforge3" \
        "-u           update an existing installation"
}

while getopts "bifhkp:sut" opt; do
    case "$opt" in
        b) BATCH=1 ;;
        f|u) FORCE=1 ;;
        h) usage; exit 2 ;;
        p) PREFIX="$OPTARG" ;;
        i|k|s|t) ;;
        *) usage >&2; exit 2 ;;
    esac
done

if [ "$BATCH" = "0" ]; then
    printf "STAND-IN installer: only batch mode (-b) is supported.\n" >&2
    exit 2
fi
case "$PREFIX" in
    *" "*) printf "ERROR: Cannot install into directories with spaces\n" >&2; exit 1 ;;
esac
if [ "$FORCE" = "0" ] && [ -e "$PREFIX" ]; then
    printf "ERROR: File or directory already exists: '%s'\n" "$PREFIX" >&2
    printf "If you want to update an existing installation, use the -u option.\n" >&2
    exit 1
fi
command -v python3 >/dev/null 2>&1 || { printf "ERROR: the STAND-IN conda needs python3\n" >&2; exit 1; }

mkdir -p "$PREFIX"
PREFIX=$(cd "$PREFIX" && pwd)
printf "PREFIX=%s\n" "$PREFIX"
printf "Unpacking payload ...\n"
mkdir -p "$PREFIX/bin" "$PREFIX/condabin" "$PREFIX/conda-meta" "$PREFIX/etc/profile.d" \
    "$PREFIX/envs" "$PREFIX/pkgs"

cat > "$PREFIX/bin/conda" <<'RIGFORGE_STANDIN_CONDA'
@CONDA_SCRIPT@RIGFORGE_STANDIN_CONDA
chmod 0755 "$PREFIX/bin/conda"
cp "$PREFIX/bin/conda" "$PREFIX/condabin/conda"

cat > "$PREFIX/etc/profile.d/conda.sh" <<'RIGFORGE_STANDIN_PROFILE'
@PROFILE@RIGFORGE_STANDIN_PROFILE
sed -i "s|@PREFIX@|$PREFIX|" "$PREFIX/etc/profile.d/conda.sh"

printf "channels:\n  - conda-forge\n" > "$PREFIX/.condarc"
printf "STAND-IN: installed by %s-%s-Linux-@ARCH@.sh from rigforge's tests, not by Miniforge.\n" \
    "$INSTALLER_NAME" "$INSTALLER_VER" > "$PREFIX/STAND-IN"
rm -f "$PREFIX"/conda-meta/conda-*-standin_0.json
printf '{"name": "conda", "version": "%s", "build": "standin_0", "channel": "conda-forge"}\n' \
    "$CONDA_VER" > "$PREFIX/conda-meta/conda-$CONDA_VER-standin_0.json"
{
    printf "==> %s <==\n" "$(date '+%Y-%m-%d %H:%M:%S')"
    printf "# cmd: %s-%s-Linux-@ARCH@.sh (STAND-IN) %s\n" "$INSTALLER_NAME" "$INSTALLER_VER" "$ARGS"
    printf "+conda-forge/linux-64::conda-%s-standin_0\n" "$CONDA_VER"
} >> "$PREFIX/conda-meta/history"

printf "Transaction finished\n\ninstallation finished.\n"
"""


def build_installer(
    out_dir: Path, miniforge_version: str, conda_version: str, arch: str = "x86_64"
) -> tuple[Path, str]:
    """Write ``Miniforge3-<miniforge_version>-Linux-<arch>.sh`` (and its ``.sha256``) to ``out_dir``.

    Returns the installer's path and SHA-256 (hex), the pin the role is given.
    """
    if not _VERSION.match(miniforge_version):
        raise ValueError(f"not a Miniforge release like 25.3.0-3: {miniforge_version!r}")
    if not _CONDA_VERSION.match(conda_version):
        raise ValueError(f"not a conda version like 25.3.0: {conda_version!r}")
    conda_script = _CONDA.replace("@CONDA_VERSION@", conda_version)
    script = (
        _INSTALLER.replace("@CONDA_SCRIPT@", conda_script)
        .replace("@PROFILE@", _PROFILE)
        .replace("@MINIFORGE_VERSION@", miniforge_version)
        .replace("@CONDA_VERSION@", conda_version)
        .replace("@ARCH@", arch)
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"Miniforge3-{miniforge_version}-Linux-{arch}.sh"
    data = script.encode("utf-8")
    path.write_bytes(data)
    path.chmod(0o755)
    sha256 = hashlib.sha256(data).hexdigest()
    # Like the real release: a .sha256 beside the installer ("<hash>  <name>").
    path.with_name(path.name + ".sha256").write_text(f"{sha256}  {path.name}\n", encoding="utf-8")
    return path, sha256
