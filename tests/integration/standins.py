"""The STAND-IN for NVIDIA's CUDA apt repository (not NVIDIA's packages), for integration tests.

One stand-in per test process, shared by every test module that uses it: ``cuda-keyring`` has
one version, so a sandbox host that installed it from one stand-in would keep that key and
refuse a second stand-in signed with another throwaway key. Served on the sandbox bridge
(10.213.0.1, the first free port of 8650-8659) until the process ends; the bridge exists only
while a sandbox host is up, so take the ``rig`` fixture first::

    @pytest.fixture(scope="module")
    def cuda_repo(rig):
        return shared_cuda_standin()

    ... nvidia_cuda_repo_url=cuda_repo.url, **cuda_repo.role_vars ...
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from tests.standins.apt_repo import KEYRING_DEB, AptRepo, RepoServer, cuda_repo_standin

# Several branches, so that tests can switch between them in one repository.
BRANCHES = ("570", "575", "580")
CUDA_VERSIONS = ("12.8", "12.9")
CUDNN_CUDA_MAJORS = ("11", "12")
LIFETIME_SECONDS = 4 * 3600


@dataclass(frozen=True)
class CudaStandin:
    repo: AptRepo
    server: RepoServer

    @property
    def url(self) -> str:
        return self.repo.base_url

    @property
    def keyring_url(self) -> str:
        return self.url + KEYRING_DEB

    @property
    def keyring_sha256(self) -> str:
        return hashlib.sha256((self.repo.root / KEYRING_DEB).read_bytes()).hexdigest()

    @property
    def role_vars(self) -> dict[str, str]:
        """Variables that point role ``nvidia_cuda_repo`` at the stand-in."""
        return {
            "nvidia_cuda_repo_url": self.url,
            "nvidia_cuda_repo_keyring_url": self.keyring_url,
            "nvidia_cuda_repo_keyring_sha256": self.keyring_sha256,
        }


_lock = threading.Lock()
_shared: CudaStandin | None = None


def shared_cuda_standin() -> CudaStandin:
    """Build and serve the stand-in on first use; later calls return the same one."""
    global _shared
    with _lock:
        if _shared is None:
            workdir = Path(tempfile.mkdtemp(prefix="rigforge-cuda-standin-"))
            atexit.register(shutil.rmtree, workdir, True)
            server = RepoServer(workdir / "repo", lifetime=LIFETIME_SECONDS).start()
            atexit.register(server.stop)
            repo = cuda_repo_standin(workdir, server.url, branches=BRANCHES,
                                     cuda_versions=CUDA_VERSIONS, cudnn_cuda_majors=CUDNN_CUDA_MAJORS)
            _shared = CudaStandin(repo, server)
        return _shared


def shell_only_root(root: Path) -> Path:
    """A root filesystem with only a shell (busybox, else dash, with its libraries): enough for
    a plain container, not for a sandbox host."""
    (root / "bin").mkdir(parents=True)
    shutil.copy("/bin/busybox" if Path("/bin/busybox").exists() else "/bin/dash", root / "bin" / "sh")
    ldd = subprocess.run(["ldd", str(root / "bin" / "sh")], capture_output=True, text=True, timeout=30)
    libs = ldd.stdout
    for lib in libs.split():
        if lib.startswith("/"):
            (root / lib.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(lib, root / lib.lstrip("/"))
    return root
