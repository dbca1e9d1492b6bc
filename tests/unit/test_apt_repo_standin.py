"""The STAND-IN for NVIDIA's CUDA apt repository (not NVIDIA's packages), tested without hosts.

Needs dpkg-deb, gpg and gpgv (Debian packages dpkg, gnupg, gpgv); without them the tests are
skipped with the reason. apt itself reads the repository here through a private apt
configuration (file:// source, its own lists and status), so nothing on this machine changes.
"""

import gzip
import hashlib
import os
import shutil
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.standins.apt_repo import (
    KEYRING_DEB,
    DebSpec,
    RepoServer,
    build_deb,
    build_flat_repo,
    cuda_repo_packages,
    cuda_repo_standin,
)

TOOLS = ("dpkg-deb", "gpg", "gpgv", "gpgconf", "apt-get", "apt-cache")
_absent = [t for t in TOOLS if not shutil.which(t)]
pytestmark = pytest.mark.skipif(
    bool(_absent), reason=f"missing {', '.join(_absent)} (apt-get install dpkg gnupg gpgv apt)"
)


def _run(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, **kw)


def _spec(name="rf-tool", version="1.2.3-1", **kw) -> DebSpec:
    return DebSpec(
        name, version, depends=["rf-lib (= 1.2.3-1)", "rf-a | rf-b"],
        files={"/usr/local/bin/rf-tool": "#!/bin/sh\necho tool\n", "/etc/rf-tool.conf": "x = 1\n"},
        modes={"/usr/local/bin/rf-tool": 0o755}, conffiles=["/etc/rf-tool.conf"], **kw,
    )


def _release_hashes(release: str, section: str = "SHA256") -> dict[str, tuple[str, int]]:
    hashes, current = {}, None
    for line in release.splitlines():
        if not line.startswith(" "):
            current = line.rstrip(":")
        elif current == section:
            digest, size, name = line.split()
            hashes[name] = (digest, int(size))
    return hashes


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    """The full stand-in with two driver branches, built once for this module."""
    work = tmp_path_factory.mktemp("cuda-standin")
    return cuda_repo_standin(work, "http://10.213.0.1:8650/", branches=("570", "575"))


def _apt(tmp_path: Path, source_line: str):
    """apt-get/apt-cache with a private configuration: only ``source_line``, an empty status."""
    base = tmp_path / "apt"
    for sub in ("lists/partial", "cache/archives/partial", "prefs", "parts"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    (base / "status").touch()
    (base / "sources.list").write_text(source_line + "\n")
    conf = base / "apt.conf"
    conf.write_text("".join(f'{key} "{value}";\n' for key, value in {
        "Dir::State::status": base / "status", "Dir::State::lists": base / "lists",
        "Dir::Cache": base / "cache", "Dir::Etc::sourcelist": base / "sources.list",
        "Dir::Etc::sourceparts": base / "parts", "Dir::Etc::preferences": base / "none",
        "Dir::Etc::preferencesparts": base / "prefs", "APT::Architecture": "amd64",
    }.items()))
    env = {**os.environ, "APT_CONFIG": str(conf), "LC_ALL": "C"}

    def apt(*args: str) -> subprocess.CompletedProcess:
        return _run(*args, env=env)

    apt.prefs = base / "prefs"
    return apt


def test_build_deb_carries_name_version_depends_files_and_conffiles(tmp_path):
    deb = build_deb(_spec(), tmp_path)
    assert deb.name == "rf-tool_1.2.3-1_all.deb"
    info = _run("dpkg-deb", "-I", str(deb)).stdout
    assert "Package: rf-tool" in info and "Version: 1.2.3-1" in info
    assert "Depends: rf-lib (= 1.2.3-1), rf-a | rf-b" in info
    assert "STAND-IN for NVIDIA's CUDA apt repository (not NVIDIA's packages)" in info
    assert _run("dpkg-deb", "-I", str(deb), "conffiles").stdout == "/etc/rf-tool.conf\n"
    listing = _run("dpkg-deb", "-c", str(deb)).stdout.splitlines()
    (tool,) = [line for line in listing if line.endswith("./usr/local/bin/rf-tool")]
    assert tool.startswith("-rwxr-xr-x root/root")
    assert any(line.startswith("-rw-r--r-- root/root") and line.endswith("./etc/rf-tool.conf")
               for line in listing)


def test_build_deb_is_reproducible(tmp_path):
    first = build_deb(_spec(), tmp_path / "a").read_bytes()
    assert build_deb(_spec(), tmp_path / "b").read_bytes() == first


@pytest.mark.parametrize("conffiles", [["/usr/share/rf.conf"], ["/etc/not-shipped.conf"]])
def test_build_deb_refuses_a_conffile_that_is_not_a_shipped_file_under_etc(tmp_path, conffiles):
    spec = DebSpec("rf-bad", "1", files={"/usr/share/rf.conf": ""}, conffiles=conffiles)
    with pytest.raises(ValueError, match="conffile"):
        build_deb(spec, tmp_path)


def test_flat_repo_release_hashes_packages_and_the_signatures_verify(tmp_path):
    debs = [build_deb(_spec(), tmp_path / "debs"), build_deb(DebSpec("rf-lib", "1.2.3-1"), tmp_path / "debs")]
    repo = build_flat_repo(tmp_path / "repo", debs, "http://example.invalid/", tmp_path / "gnupg")
    packages = (repo.root / "Packages").read_bytes()
    assert gzip.decompress((repo.root / "Packages.gz").read_bytes()) == packages
    hashes = _release_hashes((repo.root / "Release").read_text())
    for name in ("Packages", "Packages.gz"):
        blob = (repo.root / name).read_bytes()
        assert hashes[name] == (hashlib.sha256(blob).hexdigest(), len(blob))
    deb_sha = hashlib.sha256((repo.root / debs[0].name).read_bytes()).hexdigest()
    assert f"Filename: ./{debs[0].name}\n" in packages.decode()
    assert f"SHA256: {deb_sha}\n" in packages.decode()
    inrelease = _run("gpgv", "--keyring", str(repo.keyring), str(repo.root / "InRelease"))
    assert inrelease.returncode == 0, inrelease.stderr
    assert repo.fingerprint[-16:] in inrelease.stderr
    detached = _run("gpgv", "--keyring", str(repo.keyring), str(repo.root / "Release.gpg"),
                    str(repo.root / "Release"))
    assert detached.returncode == 0, detached.stderr


def test_another_key_does_not_verify_the_repo(tmp_path):
    deb = build_deb(DebSpec("rf-lib", "1"), tmp_path)
    repo = build_flat_repo(tmp_path / "repo", [deb], "http://example.invalid/", tmp_path / "gnupg")
    other = build_flat_repo(tmp_path / "other", [deb], "http://example.invalid/", tmp_path / "gnupg2")
    assert other.fingerprint != repo.fingerprint
    proc = _run("gpgv", "--keyring", str(other.keyring), str(repo.root / "InRelease"))
    assert proc.returncode != 0 and "No public key" in proc.stderr


def test_apt_reads_the_repo_and_refuses_a_tampered_packages_file(tmp_path):
    deb = build_deb(DebSpec("rf-lib", "1.0-1"), tmp_path)
    repo = build_flat_repo(tmp_path / "repo", [deb], "http://example.invalid/", tmp_path / "gnupg")
    apt = _apt(tmp_path, f"deb [signed-by={repo.keyring}] file://{repo.root}/ /")
    assert apt("apt-get", "update").returncode == 0
    assert "Candidate: 1.0-1" in apt("apt-cache", "policy", "rf-lib").stdout

    packages = (repo.root / "Packages").read_text().replace("Version: 1.0-1", "Version: 9.0-1")
    (repo.root / "Packages").write_text(packages)
    (repo.root / "Packages.gz").write_bytes(gzip.compress(packages.encode()))
    shutil.rmtree(tmp_path / "apt" / "lists")
    (tmp_path / "apt" / "lists" / "partial").mkdir(parents=True)
    proc = apt("apt-get", "update")
    assert proc.returncode != 0 and "Hash Sum mismatch" in proc.stdout + proc.stderr
    assert "9.0-1" not in apt("apt-cache", "policy", "rf-lib").stdout


def test_cuda_packages_use_the_real_names(standin):
    """Generated from the facts table: NVIDIA's debian12 repository has Debian-style names."""
    specs = cuda_repo_packages(branches=("570", "575"))
    names = {spec.name for spec in specs}
    assert {
        "cuda-keyring", "cuda-toolkit-12-8", "cuda-nvcc-12-8", "cudnn9-cuda-12", "cudnn9-cuda-11",
        "libcudnn9-cuda-12", "nvidia-driver", "nvidia-kernel-dkms", "nvidia-open", "nvidia-kernel-open-dkms",
        "libcuda1", "cuda-drivers-570", "nvidia-driver-pinning-570", "cuda-drivers-575",
        "nvidia-driver-pinning-575",
    } <= names
    old_beliefs = ("nvidia-driver-5", "nvidia-kernel-5", "libnvidia-compute")
    assert not any(name.startswith(old_beliefs) for name in names)
    assert not any("nvidia-smi" in name or name.startswith("nvidia-utils") for name in names)
    # The trap NVIDIA's guide warns of: cuda-drivers-<b> has no upper bound on nvidia-driver.
    assert next(s for s in specs if s.name == "cuda-drivers-570").depends == ["nvidia-driver (>= 570.0)"]
    repo = standin
    assert (repo.root / KEYRING_DEB).is_file()
    assert (repo.root / "nvidia-driver_575.57.08-1_amd64.deb").is_file()
    assert (repo.root / "nvidia-driver_570.133.20-1_amd64.deb").is_file()


def test_ubuntu_repository_names_follow_the_branch_up_to_580_and_drop_it_from_590():
    names = {spec.name for spec in cuda_repo_packages("ubuntu2404", branches=("580", "595"))}
    assert {"nvidia-driver-pinning-580", "nvidia-open-580", "cuda-drivers-580", "libnvidia-compute-580",
            "nvidia-driver-pinning-595", "nvidia-open", "cuda-drivers", "libnvidia-compute"} <= names
    assert "nvidia-open-595" not in names and "cuda-drivers-595" not in names


def test_no_stand_in_package_ships_a_kernel_module_or_nvidia_smi(standin):
    repo = standin
    for deb in repo.root.glob("*.deb"):
        listing = _run("dpkg-deb", "-c", str(deb)).stdout
        assert ".ko" not in listing and "nvidia-smi" not in listing and "/lib/modules" not in listing


def test_keyring_package_installs_the_key_and_a_one_line_source_as_a_conffile(standin, tmp_path):
    repo = standin
    deb = repo.root / KEYRING_DEB
    source = "/etc/apt/sources.list.d/cuda-debian12-x86_64.list"
    assert _run("dpkg-deb", "-I", str(deb), "conffiles").stdout == f"{source}\n"
    _run("dpkg-deb", "-x", str(deb), str(tmp_path))
    assert (tmp_path / source.lstrip("/")).read_text() == (
        "deb [signed-by=/usr/share/keyrings/cuda-archive-keyring.gpg] http://10.213.0.1:8650/ /\n"
    )
    shipped = tmp_path / "usr/share/keyrings/cuda-archive-keyring.gpg"
    assert shipped.read_bytes() == repo.keyring.read_bytes()


def test_nvcc_prints_the_real_banner_and_cudnn_header_has_the_defines(standin, tmp_path):
    repo = standin
    for deb in ("cuda-nvcc-12-8_12.8.93-1_amd64.deb", "libcudnn9-dev-cuda-12_9.26.1.1-1_amd64.deb"):
        _run("dpkg-deb", "-x", str(repo.root / deb), str(tmp_path))
    out = _run(str(tmp_path / "usr/local/cuda-12.8/bin/nvcc"), "--version").stdout
    assert out.splitlines() == [
        "nvcc: NVIDIA (R) Cuda compiler driver",
        "Copyright (c) 2005-2025 NVIDIA Corporation",
        "Built on Fri_Feb_21_20:23:50_PST_2025",
        "Cuda compilation tools, release 12.8, V12.8.93",
        "Build cuda_12.8.r12.8/compiler.35583870_0",
    ]
    header = (tmp_path / "usr/include/x86_64-linux-gnu/cudnn_version_v9.h").read_text()
    # cuDNN 9.26.1 for CUDA 12, from the facts table; CUDA 11 gets the last line built for it.
    for define in ("#define CUDNN_MAJOR 9\n", "#define CUDNN_MINOR 26\n", "#define CUDNN_PATCHLEVEL 1\n"):
        assert define in header


def test_apt_pins_the_driver_branch_and_keeps_the_other_pinning_package_installable(standin, tmp_path):
    repo = standin
    apt = _apt(tmp_path, f"deb [signed-by={repo.keyring}] file://{repo.root}/ /")
    assert apt("apt-get", "update").returncode == 0
    _run("dpkg-deb", "-x", str(repo.root / "nvidia-driver-pinning-570_570.133.20-1_all.deb"),
         str(tmp_path / "pin"))
    shutil.copy(tmp_path / "pin/etc/apt/preferences.d/nvidia-driver-pinning-570", apt.prefs)

    def candidate(package: str) -> str:
        lines = apt("apt-cache", "policy", package).stdout.splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if "Candidate:" in line)

    # One name, three branches in the repository: the pin keeps apt on 570.
    assert candidate("nvidia-driver") == "570.133.20-1"
    assert candidate("libcuda1") == "570.133.20-1"
    assert candidate("nvidia-open") == "570.133.20-1"
    assert candidate("cuda-drivers-575") == "(none)"
    assert candidate("nvidia-driver-pinning-575") == "575.57.08-1"
    assert candidate("cuda-toolkit-12-8") == "12.8.93-1"


def test_repo_server_serves_the_root_and_skips_a_busy_port(tmp_path):
    (tmp_path / "hello.txt").write_text("hi\n")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with RepoServer(tmp_path, host="127.0.0.1", port=port, last_port=port + 9) as server:
            assert server.port != port and server.url == f"http://127.0.0.1:{server.port}/"
            with urllib.request.urlopen(server.url + "hello.txt", timeout=10) as resp:
                assert resp.read() == b"hi\n"
            assert server.requests == ["GET /hello.txt HTTP/1.1"]
        with socket.socket() as again:  # the port is free once the server has stopped
            again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            again.bind(("127.0.0.1", server.port))


def test_repo_server_stops_by_itself_after_its_lifetime(tmp_path):
    server = RepoServer(tmp_path, host="127.0.0.1", port=0, lifetime=0.2).start()
    server._timer.join(timeout=5)
    with pytest.raises(OSError):
        urllib.request.urlopen(server.url, timeout=2)
