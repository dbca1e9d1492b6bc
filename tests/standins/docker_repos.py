"""STAND-INs for Docker's apt repository and NVIDIA's container toolkit repository.

Not Docker's and not NVIDIA's packages. These machines cannot download from
download.docker.com or nvidia.github.io, so the tests build small packages under the real
names, sign a flat apt repository for each with a throwaway key (``apt_repo``) and serve
them to the sandbox hosts::

    <root>/docker/            Docker's repository: Packages, InRelease, ... (suite "/")
    <root>/docker/gpg         its key, ASCII-armored like Docker's
    <root>/nvidia/stable/deb/amd64/   NVIDIA's layout: .../stable/deb/$(ARCH), suite "/"
    <root>/nvidia/gpgkey      its key, ASCII-armored like NVIDIA's

What the stand-in programs do (python3 and sh scripts; no container runtime of their own):

* ``nvidia-ctk`` (nvidia-container-toolkit-base): ``runtime configure --runtime=docker``
  merges ``{"runtimes": {"nvidia": {"args": [], "path": "nvidia-container-runtime"}}}`` into
  ``/etc/docker/daemon.json`` and keeps every other key, as the real one does; ``cdi
  generate`` fails without ``/dev/nvidia0`` (the real one needs the driver) and writes a
  small spec otherwise. ``nvidia-container-runtime`` execs ``runc``, so Docker can run a
  container with ``--runtime=nvidia`` through it.
* From 1.18.0, nvidia-container-toolkit-base also ships ``nvidia-cdi-refresh.service`` and
  ``nvidia-cdi-refresh.path`` in ``/etc/systemd/system`` (conffiles, as NVIDIA's 1.18 packages
  put them; a downgrade leaves them behind) and ``/etc/nvidia-container-toolkit/
  nvidia-cdi-refresh.env``. The service is a oneshot that runs ``nvidia-ctk cdi generate
  --output=/var/run/cdi/nvidia.yaml`` under the real unit's conditions (nvidia-smi present, an
  ``nvidia.ko`` in the running kernel's ``modules.dep``), so it skips itself on a host without a
  driver and fails, like ``cdi generate``, without ``/dev/nvidia0``; the path unit starts it
  when ``modules.dep`` changes. The postinst does what NVIDIA's 1.18.0 postinst does: when
  systemd is running or degraded, daemon-reload, ``enable --now`` both units, start the service,
  each only warning when it fails.
* ``dockerd`` (docker-ce): reads ``daemon.json`` like dockerd (invalid JSON: exit 1;
  ``--validate``), listens on ``/run/docker.sock`` (group docker, 0660) and serves its info
  (version, runtimes from daemon.json). It runs no containers. ``docker`` (docker-ce-cli)
  implements ``info [--format]`` and ``--version`` against that socket.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import apt_repo, gpgkey
from .apt_repo import DebSpec

DOCKER_NOTE = "STAND-IN for Docker's apt repository (not Docker's packages)"
NVIDIA_NOTE = "STAND-IN for NVIDIA's container toolkit apt repository (not NVIDIA's packages)"

#: The stand-in docker-ce release (Docker's version scheme, without the epoch).
DOCKER_VERSION = "28.0.4"
DOCKER_DEB_VERSION = f"{DOCKER_VERSION}-1~debian.12~bookworm"
DOCKER_CE_PACKAGES = (
    "docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin", "docker-compose-plugin",
)
#: Toolkit releases in the stand-in repository: one refused (CVE-2025-23266), two allowed, and
#: one with the nvidia-cdi-refresh units.
NVIDIA_TOOLKIT_VERSIONS = ("1.17.3", "1.17.8", "1.17.9", "1.18.0")
#: The first release that ships nvidia-cdi-refresh.service and .path.
NVIDIA_CDI_REFRESH_FROM = "1.18.0"
NVIDIA_CDI_REFRESH_UNITS = ("nvidia-cdi-refresh.path", "nvidia-cdi-refresh.service")
NVIDIA_CDI_REFRESH_SPEC = "/var/run/cdi/nvidia.yaml"
NVIDIA_TOOLKIT_PACKAGES = (
    "nvidia-container-toolkit", "nvidia-container-toolkit-base",
    "libnvidia-container-tools", "libnvidia-container1",
)
NVIDIA_RUNTIME = {"args": [], "path": "nvidia-container-runtime"}
NVIDIA_REPO_PATH = "nvidia/stable/deb"

_BANNER = "# STAND-IN built by the rigforge test suite; not {owner}'s program.\n"

NVIDIA_CTK = '''#!/usr/bin/python3
# STAND-IN for NVIDIA's nvidia-ctk, built by the rigforge test suite; not NVIDIA's program.
import json, os, sys

VERSION = "@VERSION@"
RUNTIME = @RUNTIME@


def option(args, name, default=None):
    for i, arg in enumerate(args):
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
        if arg == name and i + 1 < len(args):
            return args[i + 1]
    return default


def log(level, text):
    print(f"{level}[0000] {text}", file=sys.stderr)


def write(path, text):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".nvidia-ctk.tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def runtime_configure(args):
    if option(args, "--runtime", "docker") != "docker":
        log("ERROR", "this STAND-IN only configures --runtime=docker")
        return 1
    path = option(args, "--config", "/etc/docker/daemon.json")
    try:
        with open(path) as fh:
            text = fh.read()
    except FileNotFoundError:
        log("INFO", "Config file does not exist; using empty config")
        text = ""
    try:
        config = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        log("ERROR", f"unable to load config: {exc}")
        return 1
    if not isinstance(config, dict):
        log("ERROR", "unable to load config: not a JSON object")
        return 1
    runtimes = config.setdefault("runtimes", {})
    runtimes["nvidia"] = dict(RUNTIME)
    write(path, json.dumps(config, indent=4, sort_keys=True))
    log("INFO", f"Wrote updated config to {path}")
    log("INFO", "It is recommended that docker daemon be restarted.")
    return 0


def cdi_generate(args):
    if not os.path.exists("/dev/nvidia0"):
        log("ERROR", "failed to generate CDI spec: failed to initialize NVML: ERROR_LIBRARY_NOT_FOUND")
        return 1
    path = option(args, "--output", "/dev/stdout")
    write(path, "---\\ncdiVersion: 0.5.0\\nkind: nvidia.com/gpu\\ndevices:\\n"
                "- name: all\\n  containerEdits:\\n    deviceNodes:\\n    - path: /dev/nvidia0\\n"
                "containerEdits: {}\\n# STAND-IN CDI specification (rigforge test suite)\\n")
    log("INFO", f"Generated CDI spec with version 0.5.0 to {path}")
    return 0


def main(args):
    if args[:1] in (["--version"], ["-v"]):
        print(f"NVIDIA Container Toolkit CLI version {VERSION}\\ncommit: STAND-IN")
        return 0
    if args[:2] == ["runtime", "configure"]:
        return runtime_configure(args[2:])
    if args[:2] == ["cdi", "generate"]:
        return cdi_generate(args[2:])
    log("ERROR", f"STAND-IN nvidia-ctk: {' '.join(args) or '(nothing)'} is not implemented")
    return 1


sys.exit(main(sys.argv[1:]))
'''

DOCKERD = '''#!/usr/bin/python3
# STAND-IN for Docker's dockerd, built by the rigforge test suite; not Docker's program.
# It runs no containers: it reads daemon.json, listens on the socket and serves its info.
import grp, json, os, signal, socket, sys

VERSION = "@VERSION@"
SOCKET = "/run/docker.sock"


def option(args, name, default=None):
    for i, arg in enumerate(args):
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
        if arg == name and i + 1 < len(args):
            return args[i + 1]
    return default


def load(path):
    try:
        with open(path) as fh:
            config = json.load(fh)
    except FileNotFoundError:
        return {}
    if not isinstance(config, dict):
        raise ValueError("the configuration is not a JSON object")
    return config


def main(args):
    if "--version" in args or "-v" in args:
        print(f"Docker version {VERSION}, build STAND-IN")
        return 0
    if "--help" in args or "-h" in args:
        print("Usage: dockerd [OPTIONS] (STAND-IN)\\n"
              "      --config-file string   Daemon configuration file\\n"
              "      --validate             Validate daemon configuration and exit")
        return 0
    path = option(args, "--config-file", "/etc/docker/daemon.json")
    try:
        config = load(path)
    except ValueError as exc:
        print(f"unable to configure the Docker daemon with file {path}: {exc}", file=sys.stderr)
        return 1
    if "--validate" in args:
        print("configuration OK")
        return 0
    runtimes = {"io.containerd.runc.v2": {"path": "runc"}, "runc": {"path": "runc"}}
    runtimes.update(config.get("runtimes", {}))
    info = {
        "ServerVersion": VERSION,
        "Name": socket.gethostname(),
        "Runtimes": runtimes,
        "LoggingDriver": config.get("log-driver", "json-file"),
        "DockerRootDir": config.get("data-root", "/var/lib/docker"),
        "Warnings": ["STAND-IN dockerd built by the rigforge test suite: it runs no containers"],
    }
    payload = (json.dumps(info) + "\\n").encode()
    if os.path.exists(SOCKET):
        os.unlink(SOCKET)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(SOCKET)
    try:
        os.chown(SOCKET, 0, grp.getgrnam("docker").gr_gid)
    except KeyError:
        pass
    os.chmod(SOCKET, 0o660)
    server.listen(16)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"API listen on {SOCKET} (STAND-IN dockerd {VERSION})", file=sys.stderr, flush=True)
    try:
        while True:
            conn, _ = server.accept()
            with conn:
                conn.sendall(payload)
    finally:
        os.unlink(SOCKET)


sys.exit(main(sys.argv[1:]))
'''

DOCKER_CLI = '''#!/usr/bin/python3
# STAND-IN for Docker's docker CLI, built by the rigforge test suite; not Docker's program.
import json, os, re, socket, sys

VERSION = "@VERSION@"
HOST = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


def info():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(HOST.removeprefix("unix://"))
    except PermissionError:
        sys.exit("permission denied while trying to connect to the Docker daemon socket at " + HOST)
    except OSError:
        sys.exit(f"Cannot connect to the Docker daemon at {HOST}. Is the docker daemon running?")
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return json.loads(data)


def render(template, data):
    def field(match):
        value = data if not match.group(2) else data.get(match.group(2), "")
        return json.dumps(value) if match.group(1) else str(value)
    return re.sub(r"\\{\\{\\s*(json\\s+)?\\.(\\w*)\\s*\\}\\}", field, template)


def main(args):
    if args[:1] in (["--version"], ["-v"], ["version"]):
        print(f"Docker version {VERSION}, build STAND-IN")
        return 0
    if args[:1] == ["info"]:
        template = None
        for i, arg in enumerate(args):
            if arg in ("--format", "-f") and i + 1 < len(args):
                template = args[i + 1]
            elif arg.startswith("--format="):
                template = arg.split("=", 1)[1]
        data = info()
        if template is None:
            print(f"Server Version: {data['ServerVersion']}\\nRuntimes: {' '.join(sorted(data['Runtimes']))}")
        else:
            print(render(template, data))
        return 0
    print(f"docker: '{' '.join(args)}' is not implemented by this STAND-IN docker CLI", file=sys.stderr)
    return 1


sys.exit(main(sys.argv[1:]))
'''

DOCKER_UNIT = """[Unit]
Description=Docker Application Container Engine (STAND-IN built by the rigforge test suite)
After=network-online.target

[Service]
Type=simple
ExecStart=/usr/bin/dockerd
ExecReload=/bin/kill -s HUP $MAINPID
Restart=on-failure

[Install]
WantedBy=multi-user.target
"""


NVIDIA_CDI_REFRESH_SERVICE = """# STAND-IN for NVIDIA's unit, built by the rigforge test suite.
[Unit]
Description=Refresh NVIDIA CDI specification file (STAND-IN built by the rigforge test suite)
ConditionPathExists=|/usr/bin/nvidia-smi
ConditionPathExists=|/usr/sbin/nvidia-smi
ConditionPathExists=/usr/bin/nvidia-ctk

[Service]
Type=oneshot
EnvironmentFile=-/etc/nvidia-container-toolkit/nvidia-cdi-refresh.env
ExecCondition=/usr/bin/grep -qE '/nvidia[.]ko' /lib/modules/%v/modules.dep
ExecStart=/usr/bin/nvidia-ctk cdi generate --output=@SPEC@

[Install]
WantedBy=multi-user.target
""".replace("@SPEC@", NVIDIA_CDI_REFRESH_SPEC)

NVIDIA_CDI_REFRESH_PATH = """# STAND-IN for NVIDIA's unit, built by the rigforge test suite.
[Unit]
Description=Trigger a CDI refresh on NVIDIA driver changes (STAND-IN built by the rigforge test suite)

[Path]
PathChanged=/lib/modules/%v/modules.dep
PathChanged=/lib/modules/%v/modules.dep.bin

[Install]
WantedBy=multi-user.target
"""

NVIDIA_CDI_REFRESH_ENV = """# STAND-IN for NVIDIA's nvidia-cdi-refresh.env, built by the rigforge test suite.
# Environment for the nvidia-ctk cdi generate run of nvidia-cdi-refresh.service (ENVVAR=value).
"""

# What NVIDIA's 1.18.0 nvidia-container-toolkit-base postinst does with the units.
NVIDIA_CDI_REFRESH_POSTINST = """# STAND-IN postinst, built by the rigforge test suite; not NVIDIA's script.
[ "$1" = configure ] || exit 0
if command -v systemctl >/dev/null 2>&1; then
  state=$(systemctl is-system-running 2>/dev/null || true)
  case "$state" in
    running|degraded)
      systemctl daemon-reload || echo "Warning: Failed to reload systemd daemon" >&2
      systemctl enable --now nvidia-cdi-refresh.path \\
        || echo "Warning: Failed to enable nvidia-cdi-refresh.path" >&2
      systemctl enable --now nvidia-cdi-refresh.service \\
        || echo "Warning: Failed to enable nvidia-cdi-refresh.service" >&2
      systemctl start nvidia-cdi-refresh.service || echo "Warning: Failed to trigger CDI refresh" >&2
      ;;
  esac
fi
"""


def has_cdi_refresh(version: str) -> bool:
    """Whether the stand-in toolkit ``version`` ships the nvidia-cdi-refresh units."""
    def release(text: str) -> tuple[int, ...]:
        return tuple(int(part) for part in text.split("."))
    return release(version) >= release(NVIDIA_CDI_REFRESH_FROM)


def _shell(owner: str, body: str) -> str:
    return "#!/bin/sh\n" + _BANNER.format(owner=owner) + body


def _with_version(script: str, version: str) -> str:
    return script.replace("@VERSION@", version)


def _doc(name: str, note: str) -> dict[str, str]:
    return {f"/usr/share/doc/{name}/STAND-IN": f"{name}: {note}, built by the rigforge test suite.\n"}


def nvidia_toolkit_packages(version: str) -> list[DebSpec]:
    """The four toolkit packages of one release, with the real names and dependencies."""
    deb = f"{version}-1"
    ctk = (_with_version(NVIDIA_CTK, version)
           .replace("@RUNTIME@", repr(NVIDIA_RUNTIME)))
    runtime = _shell("NVIDIA", 'exec runc "$@"\n')
    hook = _shell("NVIDIA", "exit 0\n")
    cli = _shell("NVIDIA", (
        'case "$1" in\n'
        f'  --version) echo "cli-version: {version} (STAND-IN)";;\n'
        '  *) echo "nvidia-container-cli: initialization error: nvml error: driver not loaded" >&2;'
        ' exit 1;;\n'
        "esac\n"
    ))
    arch = apt_repo.DEB_ARCH

    def spec(name: str, files: dict[str, str], depends: list[str], what: str, **kw) -> DebSpec:
        execs = {p: 0o755 for p in files if p.startswith("/usr/bin/")}
        return DebSpec(name, deb, arch, depends=depends, files={**files, **_doc(name, NVIDIA_NOTE)},
                       modes=execs, description=f"STAND-IN for NVIDIA's {what} {version}", **kw)

    base = {"/usr/bin/nvidia-ctk": ctk, "/usr/bin/nvidia-container-runtime": runtime}
    refresh: dict = {}
    if has_cdi_refresh(version):
        units = {
            "/etc/systemd/system/nvidia-cdi-refresh.service": NVIDIA_CDI_REFRESH_SERVICE,
            "/etc/systemd/system/nvidia-cdi-refresh.path": NVIDIA_CDI_REFRESH_PATH,
            "/etc/nvidia-container-toolkit/nvidia-cdi-refresh.env": NVIDIA_CDI_REFRESH_ENV,
        }
        base |= units
        refresh = {"conffiles": list(units), "postinst": NVIDIA_CDI_REFRESH_POSTINST}

    return [
        spec("libnvidia-container1", {}, [], "libnvidia-container library"),
        spec("libnvidia-container-tools", {"/usr/bin/nvidia-container-cli": cli},
             [f"libnvidia-container1 (>= {deb})", "libnvidia-container1 (<< 2.0.0)"],
             "nvidia-container-cli"),
        spec("nvidia-container-toolkit-base", base, [],
             "nvidia-ctk and nvidia-container-runtime", **refresh),
        spec("nvidia-container-toolkit", {"/usr/bin/nvidia-container-runtime-hook": hook},
             [f"nvidia-container-toolkit-base (= {deb})", f"libnvidia-container-tools (>= {deb})",
              "libnvidia-container-tools (<< 2.0.0)"],
             "container toolkit"),
    ]


def docker_ce_packages() -> list[DebSpec]:
    """docker-ce and its companions under the real names; dockerd and docker are stand-ins."""
    deb = DOCKER_DEB_VERSION
    plugins = "/usr/libexec/docker/cli-plugins"

    def version_script(name: str, text: str) -> str:
        return _shell("Docker", f'[ "$1" = docker-cli-plugin-metadata ] && exit 1\necho "{text}"\n')

    def spec(name: str, files: dict[str, str], what: str, **kw) -> DebSpec:
        execs = {p: 0o755 for p in files if "/bin/" in p or p.startswith(plugins)}
        return DebSpec(name, deb, files={**files, **_doc(name, DOCKER_NOTE)}, modes=execs,
                       description=f"STAND-IN for Docker's {what}", **kw)

    return [
        spec("containerd.io", {"/usr/bin/containerd": version_script(
            "containerd", "containerd containerd.io 1.7.27 STAND-IN")}, "containerd"),
        spec("docker-ce-cli", {"/usr/bin/docker": _with_version(DOCKER_CLI, DOCKER_VERSION)},
             "docker CLI", conflicts=["docker.io"]),
        spec("docker-buildx-plugin", {f"{plugins}/docker-buildx": version_script(
            "buildx", "github.com/docker/buildx v0.22.0 STAND-IN")}, "buildx plugin"),
        spec("docker-compose-plugin", {f"{plugins}/docker-compose": version_script(
            "compose", "Docker Compose version v2.34.0 STAND-IN")}, "compose plugin"),
        spec("docker-ce", {"/usr/bin/dockerd": _with_version(DOCKERD, DOCKER_VERSION),
                           "/lib/systemd/system/docker.service": DOCKER_UNIT},
             "Docker engine (dockerd)",
             depends=["containerd.io (>= 1.7.27)", f"docker-ce-cli (= {deb})"],
             conflicts=["docker.io", "docker-engine"],
             postinst=(
                 "getent group docker >/dev/null || groupadd --system docker\n"
                 "if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi\n"
             )),
    ]


@dataclass(frozen=True)
class StandinRepo:
    """What a role needs to use one stand-in repository."""

    url: str  # the source's URI (for NVIDIA with $(ARCH), as in the real default)
    key_url: str
    key_sha256: str
    fingerprint: str


def _armored_key(key: gpgkey.SigningKey, dest: Path) -> str:
    """Export the public key ASCII-armored (as Docker and NVIDIA publish theirs); its SHA-256."""
    proc = subprocess.run(
        ["gpg", "--batch", "--no-tty", "--quiet", "--homedir", str(key.gpg_home),
         "--armor", "--export", key.fingerprint],
        check=True, capture_output=True, timeout=60,
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(proc.stdout)
    return hashlib.sha256(proc.stdout).hexdigest()


def _build(specs: list[DebSpec], root: Path, workdir: Path, base_url: str, note: str,
           origin: str, label: str, gpg_home: Path) -> gpgkey.SigningKey:
    key = gpgkey.ensure_key(gpg_home)
    debs = [apt_repo.build_deb(spec, workdir / "debs", note=note) for spec in specs]
    apt_repo.build_flat_repo(root, debs, base_url, gpg_home, origin=origin, label=label, note=note)
    return key


def docker_ce_standin(serve_root: Path, workdir: Path, server_url: str) -> StandinRepo:
    """Docker's repository stand-in under ``serve_root/docker`` (served at ``server_url``)."""
    root, url = serve_root / "docker", server_url.rstrip("/") + "/docker"
    key = _build(docker_ce_packages(), root, workdir / "docker", url, DOCKER_NOTE,
                 "Docker", "Docker CE", workdir / "docker" / "gnupg")
    sha = _armored_key(key, root / "gpg")
    return StandinRepo(url=url, key_url=f"{url}/gpg", key_sha256=sha, fingerprint=key.fingerprint)


def nvidia_toolkit_standin(serve_root: Path, workdir: Path, server_url: str) -> StandinRepo:
    """NVIDIA's toolkit repository stand-in, laid out as ``.../stable/deb/$(ARCH)``."""
    base = server_url.rstrip("/") + "/" + NVIDIA_REPO_PATH
    root = serve_root / NVIDIA_REPO_PATH / apt_repo.DEB_ARCH
    specs = [spec for version in NVIDIA_TOOLKIT_VERSIONS for spec in nvidia_toolkit_packages(version)]
    key = _build(specs, root, workdir / "nvidia", f"{base}/{apt_repo.DEB_ARCH}", NVIDIA_NOTE,
                 "NVIDIA", "NVIDIA Container Toolkit", workdir / "nvidia" / "gnupg")
    sha = _armored_key(key, serve_root / "nvidia" / "gpgkey")
    return StandinRepo(url=base + "/$(ARCH)", key_url=server_url.rstrip("/") + "/nvidia/gpgkey",
                       key_sha256=sha, fingerprint=key.fingerprint)
