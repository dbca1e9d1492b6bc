"""STAND-IN for NVIDIA's CUDA apt repository (not NVIDIA's packages).

These machines cannot download from NVIDIA, so the tests build a small repository that looks
like NVIDIA's CUDA network repository from the outside: a *flat* apt repository
(``deb [signed-by=...] URL /``) with ``Packages``, ``Packages.gz``, ``Release``, ``InRelease``
and ``Release.gpg``, signed with a throwaway test key, holding fake packages under the real
names (``cuda-keyring``, ``cuda-toolkit-12-8``, ``cudnn9-cuda-12``, ``cuda-drivers-570``,
``nvidia-driver-pinning-570``, ...). The packages install text files only: no kernel module,
no library and no program of NVIDIA's; ``nvcc`` is a shell script that prints a real banner.

Prerequisites on the test machine (Debian packages): ``dpkg`` (``dpkg-deb``), ``gnupg``
(``gpg``, ``gpgconf``) and ``gpgv``. The index files are written here, so ``apt-utils`` is
not needed.

Serving: sandbox hosts reach this machine only at the bridge address 10.213.0.1 on TCP ports
8650-8659, so :class:`RepoServer` listens there (the bridge exists while a sandbox host is up)::

    with RepoServer(tmp / "repo") as server:
        repo = cuda_repo_standin(tmp, server.url, branches=("570", "575"))
        ...  # point the role at repo.base_url, repo.base_url + "cuda-keyring_1.1-1_all.deb"
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from provision.gpu.table import fill
from provision.gpu.table import table as facts_table

from . import cuda_content as content
from . import gpgkey

BRIDGE_ADDRESS = "10.213.0.1"
SERVE_PORTS = range(8650, 8660)
NVIDIA_REPO_BASE = "https://developer.download.nvidia.com/compute/cuda/repos"
REPO_ARCH = "x86_64"  # the directory name in NVIDIA's URLs
DEB_ARCH = "amd64"
KEYRING_PATH = "/usr/share/keyrings/cuda-archive-keyring.gpg"
KEYRING_DEB = "cuda-keyring_1.1-1_all.deb"
MAINTAINER = "rigforge test suite <standin@rigforge.invalid>"
STANDIN_NOTE = "STAND-IN for NVIDIA's CUDA apt repository (not NVIDIA's packages)"
# Fixed timestamps make the packages byte-identical from one build to the next.
SOURCE_DATE_EPOCH = 1735689600  # 2025-01-01


@dataclass
class DebSpec:
    name: str
    version: str
    architecture: str = "all"
    depends: list[str] = field(default_factory=list)
    provides: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    files: dict[str, str | bytes] = field(default_factory=dict)
    modes: dict[str, int] = field(default_factory=dict)
    conffiles: list[str] = field(default_factory=list)
    postinst: str | None = None
    description: str = "STAND-IN package built by the rigforge test suite"
    replaces: list[str] = field(default_factory=list)
    prerm: str | None = None

    @property
    def filename(self) -> str:
        return f"{self.name}_{self.version}_{self.architecture}.deb"


@dataclass
class AptRepo:
    root: Path
    keyring: Path
    fingerprint: str
    base_url: str


def _control(spec: DebSpec, installed_kb: int, note: str) -> str:
    fields = [
        ("Package", spec.name),
        ("Version", spec.version),
        ("Architecture", spec.architecture),
        ("Maintainer", MAINTAINER),
        ("Installed-Size", str(max(installed_kb, 1))),
        ("Depends", ", ".join(spec.depends)),
        ("Conflicts", ", ".join(spec.conflicts)),
        ("Replaces", ", ".join(spec.replaces)),
        ("Provides", ", ".join(spec.provides)),
        ("Section", "misc"),
        ("Priority", "optional"),
        ("Description", f"{spec.description}\n {note}."),
    ]
    return "".join(f"{key}: {value}\n" for key, value in fields if value)


def _script(body: str) -> str:
    return body if body.startswith("#!") else "#!/bin/sh\nset -e\n" + body


def build_deb(spec: DebSpec, out_dir: Path, *, note: str | None = None) -> Path:
    """Build ``spec`` with ``dpkg-deb --build --root-owner-group``; returns the ``.deb``.

    ``note`` (default :data:`STANDIN_NOTE`) is the second line of the package description.
    """
    for path in [*spec.files, *spec.conffiles]:
        if not path.startswith("/"):
            raise ValueError(f"{spec.name}: {path!r} is not an absolute path")
    for path in spec.conffiles:
        if path not in spec.files or not path.startswith("/etc/"):
            raise ValueError(f"{spec.name}: conffile {path} must be a file of the package under /etc")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rf-deb-") as tmp:
        stage = Path(tmp) / spec.name
        (stage / "DEBIAN").mkdir(parents=True)
        size = 0
        for path, data in spec.files.items():
            dest = stage / path.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            blob = data.encode() if isinstance(data, str) else data
            dest.write_bytes(blob)
            dest.chmod(spec.modes.get(path, 0o644))
            size += len(blob)
        if spec.conffiles:
            (stage / "DEBIAN" / "conffiles").write_text("".join(f"{p}\n" for p in spec.conffiles))
        for name, body in (("postinst", spec.postinst), ("prerm", spec.prerm)):
            if body:
                script = stage / "DEBIAN" / name
                script.write_text(_script(body))
                script.chmod(0o755)
        (stage / "DEBIAN" / "control").write_text(
            _control(spec, (size + 1023) // 1024, note or STANDIN_NOTE))
        for entry in [stage, *stage.rglob("*")]:
            if entry.is_dir():
                entry.chmod(0o755)
            os.utime(entry, (SOURCE_DATE_EPOCH, SOURCE_DATE_EPOCH))
        deb = out_dir / spec.filename
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH)}
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(stage), str(deb)],
            check=True, capture_output=True, timeout=120, env=env,
        )
    return deb


_HASHES = (("MD5Sum", "md5"), ("SHA1", "sha1"), ("SHA256", "sha256"), ("SHA512", "sha512"))
_PACKAGE_HASHES = (("MD5sum", "md5"), ("SHA1", "sha1"), ("SHA256", "sha256"), ("SHA512", "sha512"))


def _stanza(deb: Path, relative: str) -> str:
    fields = subprocess.run(["dpkg-deb", "--field", str(deb)], check=True, capture_output=True,
                            text=True, timeout=60).stdout.rstrip("\n")
    blob = deb.read_bytes()
    extra = [f"Filename: ./{relative}", f"Size: {len(blob)}"]
    extra += [f"{key}: {hashlib.new(algo, blob).hexdigest()}" for key, algo in _PACKAGE_HASHES]
    # Like apt-ftparchive: the index fields go before the description.
    head, sep, description = fields.partition("\nDescription:")
    return "\n".join([head, *extra]) + (sep + description if sep else "") + "\n"


def _release(indexes: dict[str, bytes], origin: str, label: str, note: str) -> str:
    lines = [
        f"Origin: {origin}",
        f"Label: {label}",
        f"Description: {note}, built by the rigforge test suite",
        f"Date: {formatdate(usegmt=True)}",
    ]
    for key, algo in _HASHES:
        lines.append(f"{key}:")
        for name, blob in indexes.items():
            lines.append(f" {hashlib.new(algo, blob).hexdigest()} {len(blob):>16} {name}")
    return "\n".join(lines) + "\n"


def _keyring_path(root: Path) -> Path:
    return root.parent / f"{root.name}-archive-keyring.gpg"


def build_flat_repo(root: Path, debs: list[Path], base_url: str, gpg_home: Path, *,
                    origin: str = "NVIDIA", label: str = "NVIDIA CUDA",
                    note: str | None = None) -> AptRepo:
    """A signed flat repository of ``debs`` in ``root`` (debs elsewhere are copied in).

    ``origin`` and ``label`` go to ``Release`` (NVIDIA's values by default, so that apt pins
    by origin behave as with the real repository); ``note`` (default :data:`STANDIN_NOTE`) is
    its ``Description``.

    The signing key is the one in ``gpg_home``, generated on first use; its public half is
    exported as a binary keyring beside ``root``: ``<root>-archive-keyring.gpg``.
    """
    root.mkdir(parents=True, exist_ok=True)
    stanzas = []
    for deb in sorted(debs, key=lambda p: p.name):
        target = root / deb.name
        if deb.resolve() != target.resolve():
            shutil.copyfile(deb, target)
        stanzas.append(_stanza(target, deb.name))
    packages = "\n".join(stanzas).encode()
    (root / "Packages").write_bytes(packages)
    packages_gz = gzip.compress(packages, mtime=0)
    (root / "Packages.gz").write_bytes(packages_gz)
    release = root / "Release"
    indexes = {"Packages": packages, "Packages.gz": packages_gz}
    release.write_text(_release(indexes, origin, label, note or STANDIN_NOTE))
    key = gpgkey.ensure_key(gpg_home)
    with gpgkey.agent(gpg_home):
        gpgkey.sign_release(key, release)
    keyring = gpgkey.export_keyring(key, _keyring_path(root))
    return AptRepo(root=root, keyring=keyring, fingerprint=key.fingerprint, base_url=base_url)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        self.server.requests.append(self.requestline)


class RepoServer:
    """Serve ``root`` over HTTP on (host, port) in a background thread, for a bounded time.

    A busy port is skipped for the next one up to ``last_port`` (the sandbox firewall opens
    8650-8659). ``url`` ends with ``/``; ``requests`` lists the request lines served.

    >>> with RepoServer(tmp / "repo") as server:
    ...     server.url
    'http://10.213.0.1:8650/'
    """

    def __init__(self, root: Path, host: str = BRIDGE_ADDRESS, port: int = 8650, *,
                 last_port: int = SERVE_PORTS[-1], lifetime: float = 3600.0):
        self.root, self.host, self.first_port = Path(root), host, port
        self.last_port = max(last_port, port)
        self.lifetime = lifetime
        self.port: int | None = None
        self.requests: list[str] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("RepoServer is not started")
        return f"http://{self.host}:{self.port}/"

    def _bind(self) -> ThreadingHTTPServer:
        handler = partial(_QuietHandler, directory=str(self.root))
        for port in range(self.first_port, self.last_port + 1):
            try:
                httpd = ThreadingHTTPServer((self.host, port), handler)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    continue
                if exc.errno == errno.EADDRNOTAVAIL:
                    raise RuntimeError(
                        f"cannot listen on {self.host}: the address does not exist here "
                        "(the sandbox bridge has it only while a sandbox host is up)"
                    ) from exc
                raise
            httpd.requests = self.requests
            httpd.daemon_threads = True
            self.port = httpd.server_address[1]
            return httpd
        raise RuntimeError(f"ports {self.first_port}-{self.last_port} on {self.host} are all busy")

    def start(self) -> RepoServer:
        self.root.mkdir(parents=True, exist_ok=True)
        self._httpd = self._bind()
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                         name=f"standin-repo-{self.port}", daemon=True).start()
        self._timer = threading.Timer(self.lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        with self._lock:
            httpd, self._httpd = self._httpd, None
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()

    def __enter__(self) -> RepoServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _dashed(version: str) -> str:
    return version.replace(".", "-")


def _note(name: str) -> dict[str, str]:
    return {f"/usr/share/rigforge-standin/{name}.txt": content.standin_note(name)}


def _cuda_packages(cuda: str) -> list[DebSpec]:
    rel = content.cuda_release(cuda)
    version, dashed, prefix = f"{rel.nvcc}-1", _dashed(cuda), f"/usr/local/cuda-{cuda}"
    config = f"cuda-toolkit-{dashed}-config-common"
    major = cuda.split(".")[0]
    return [
        DebSpec(
            f"cuda-nvcc-{dashed}", version, DEB_ARCH,
            files={f"{prefix}/bin/nvcc": content.nvcc_script(cuda), **_note(f"cuda-nvcc-{dashed}")},
            modes={f"{prefix}/bin/nvcc": 0o755},
            description=f"STAND-IN for the CUDA {cuda} compiler driver nvcc",
        ),
        DebSpec(
            # Ships a file under the prefix, so that the directory exists for its postinst.
            config, version,
            files={f"{prefix}/rigforge-standin.txt": content.standin_note(config)},
            # Like the real package: /usr/local/cuda and /usr/local/cuda-MAJOR are alternatives.
            postinst=(
                f"update-alternatives --install /usr/local/cuda cuda {prefix} {dashed.replace('-', '')}\n"
                f"update-alternatives --install /usr/local/cuda-{major} cuda-{major} {prefix} "
                f"{dashed.replace('-', '')}\n"
            ),
            prerm=(
                'if [ "$1" = remove ] || [ "$1" = deconfigure ]; then\n'
                f"  update-alternatives --remove cuda {prefix}\n"
                f"  update-alternatives --remove cuda-{major} {prefix}\n"
                "fi\n"
            ),
            description=f"STAND-IN for the CUDA {cuda} toolkit configuration (alternatives)",
        ),
        DebSpec(
            f"cuda-toolkit-{dashed}", version, DEB_ARCH,
            depends=[f"cuda-nvcc-{dashed} (= {version})", f"{config} (= {version})"],
            files={f"{prefix}/version.json": content.version_json(cuda), **_note(f"cuda-toolkit-{dashed}")},
            description=f"STAND-IN for the CUDA {cuda} toolkit (nvcc only)",
        ),
    ]


def _cudnn_packages(cuda_major: str, all_majors: tuple[str, ...]) -> list[DebSpec]:
    release = content.cudnn_version(cuda_major)
    version = f"{release}-1"
    cudnn_major, minor, patch = release.split(".")[:3]
    lib, dev = f"libcudnn{cudnn_major}-cuda-{cuda_major}", f"libcudnn{cudnn_major}-dev-cuda-{cuda_major}"
    others = [m for m in all_majors if m != cuda_major]
    so = f"/usr/lib/x86_64-linux-gnu/libcudnn.so.{cudnn_major}.{minor}.{patch}"
    header = f"/usr/include/x86_64-linux-gnu/cudnn_version_v{cudnn_major}.h"
    return [
        DebSpec(
            lib, version, DEB_ARCH,
            conflicts=[f"libcudnn{cudnn_major}-cuda-{m}" for m in others],
            files={so: content.standin_note(lib), **_note(lib)},
            description=f"STAND-IN for the cuDNN {cudnn_major} runtime library for CUDA {cuda_major}",
        ),
        DebSpec(
            dev, version, DEB_ARCH,
            depends=[f"{lib} (= {version})"],
            conflicts=[f"libcudnn{cudnn_major}-dev-cuda-{m}" for m in others],
            files={header: content.cudnn_version_header(release), **_note(dev)},
            description=f"STAND-IN for the cuDNN {cudnn_major} headers for CUDA {cuda_major}",
        ),
        DebSpec(
            f"cudnn{cudnn_major}-cuda-{cuda_major}", version, DEB_ARCH,
            depends=[f"{lib} (= {version})", f"{dev} (= {version})"],
            files=_note(f"cudnn{cudnn_major}-cuda-{cuda_major}"),
            description=f"STAND-IN for the cuDNN {cudnn_major} metapackage for CUDA {cuda_major}",
        ),
    ]


def _dependency(text: str, version: str, branch: str) -> str:
    """One Depends entry of the facts table's shape: "= A | B" (same version) or ">= A" (unbounded)."""
    op, names = text.split(" ", 1)
    names = fill(names, b=branch)
    if op == ">=":
        return f"{names} (>= {branch}.0)"
    return " | ".join(f"{name.strip()} (= {version})" for name in names.split("|"))


def _driver_packages(branch: str, os_id: str = "debian") -> list[DebSpec]:
    """The driver packages of one branch, generated from the facts table's cuda-repo rule.

    Names and dependency shape come from ``roles/gpu_stack/vars/main.yml`` (the same rule the
    nvidia_driver role installs from): on Debian the unversioned ``nvidia-driver`` family behind
    ``nvidia-driver-pinning-<b>`` with ``cuda-drivers-<b>`` depending on ``nvidia-driver (>= b)``
    and no upper bound; on Ubuntu ``nvidia-open-<b>``/``cuda-drivers-<b>`` up to 580 and the
    unversioned names from 590. Kernel module packages exclude each other (one module at a
    time), and so do the branch-named packages of different branches.
    """
    rule = facts_table().driver_rule("cuda-repo", os_id, branch)
    if rule is None:
        raise ValueError(f"the facts table has no cuda-repo rule for {os_id} branch {branch}")
    version = f"{content.driver_version(branch)}-1"
    pin = f"/etc/apt/preferences.d/nvidia-driver-pinning-{branch}"
    specs = []
    for template, depends in rule["depends"].items():
        name = fill(template, b=branch)
        group = []
        if "dkms" in name or "kernel" in name:
            group = ["nvidia-kernel-module"]
        elif f"-{branch}" in name and not name.startswith("cuda-drivers"):
            group = [fill(template.replace("-<b>", ""), b=branch)]
        specs.append(DebSpec(
            name, version, DEB_ARCH, depends=[_dependency(d, version, branch) for d in depends],
            provides=group, conflicts=group, replaces=group, files=_note(name),
            description=f"STAND-IN for NVIDIA's {name} (branch {branch}; no module, no library)",
        ))
    # The pin file is not a conffile, so that removing the package (also when the next
    # branch's pinning package replaces it) removes the pin.
    specs.append(DebSpec(
        fill(rule["pinning"], b=branch), version,
        provides=["nvidia-driver-pinning"], conflicts=["nvidia-driver-pinning"],
        replaces=["nvidia-driver-pinning"],
        files={pin: content.driver_pinning(branch, os_id)},
        description=f"STAND-IN for the APT pin of the NVIDIA driver to branch {branch}",
    ))
    return specs


def cuda_repo_packages(
    distro_slug: str = "debian12",
    branches: tuple[str, ...] = ("570",),
    cuda_versions: tuple[str, ...] = ("12.8",),
    cudnn_cuda_majors: tuple[str, ...] = ("11", "12"),
    keyring_bytes: bytes = b"",
    repo_url: str = "",
) -> list[DebSpec]:
    """The stand-in packages, under the real names, for one distribution's repository.

    ``cuda-keyring`` installs ``keyring_bytes`` as the archive keyring and, like the real
    one, the one-line source ``/etc/apt/sources.list.d/cuda-<slug>-x86_64.list`` (a conffile)
    pointing at ``repo_url`` (NVIDIA's URL when empty).
    """
    url = repo_url or f"{NVIDIA_REPO_BASE}/{distro_slug}/{REPO_ARCH}/"
    source = f"/etc/apt/sources.list.d/cuda-{distro_slug}-{REPO_ARCH}.list"
    specs = [
        DebSpec(
            "cuda-keyring", "1.1-1",
            files={KEYRING_PATH: keyring_bytes,
                   source: f"deb [signed-by={KEYRING_PATH}] {url} /\n"},
            conffiles=[source],
            description="STAND-IN for the NVIDIA CUDA archive keyring and repository source",
        )
    ]
    for cuda in cuda_versions:
        specs += _cuda_packages(cuda)
    for major in cudnn_cuda_majors:
        specs += _cudnn_packages(major, tuple(cudnn_cuda_majors))
    os_id = "ubuntu" if distro_slug.startswith("ubuntu") else "debian"
    for branch in branches:
        specs += _driver_packages(branch, os_id)
    return specs


def cuda_repo_standin(workdir: Path, base_url: str, *, root: Path | None = None,
                      gpg_home: Path | None = None, **kw) -> AptRepo:
    """Build every package of :func:`cuda_repo_packages` (``**kw``) and the signed repository.

    The repository goes to ``root`` (default ``workdir / "repo"``), with
    ``cuda-keyring_1.1-1_all.deb`` at its top as on NVIDIA's server; the key lives in
    ``gpg_home`` (default ``workdir / "gnupg"``). ``base_url`` is where ``root`` is served.
    """
    root = root or workdir / "repo"
    gpg_home = gpg_home or workdir / "gnupg"
    root.parent.mkdir(parents=True, exist_ok=True)
    key = gpgkey.ensure_key(gpg_home)
    keyring = gpgkey.export_keyring(key, _keyring_path(root)).read_bytes()
    specs = cuda_repo_packages(keyring_bytes=keyring, repo_url=base_url, **kw)
    debs = [build_deb(spec, root) for spec in specs]
    return build_flat_repo(root, debs, base_url, gpg_home)
