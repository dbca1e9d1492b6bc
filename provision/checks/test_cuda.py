"""Checks for the ``cuda`` component."""

import pytest

from provision.checks.packages import versions as package_versions

pytestmark = pytest.mark.component("cuda")


def _nvcc(host, version: str) -> str | None:
    for path in ("/usr/local/cuda/bin/nvcc", f"/usr/local/cuda-{version}/bin/nvcc", "/usr/bin/nvcc"):
        if host.file(path).exists:
            return path
    return None


def test_nvcc_reports_the_pinned_version(host, stack):
    from provision.gpu.commands import NVCC_VERSION
    from provision.gpu.cuda_versions import parse_nvcc_version

    nvcc = _nvcc(host, stack.cuda_version)
    assert nvcc, "nvcc not found in /usr/local/cuda/bin or /usr/bin"
    reported = parse_nvcc_version(host.check_output(NVCC_VERSION.replace("nvcc", nvcc, 1)))
    version = getattr(reported, "version", reported)
    assert version == stack.cuda_version, f"{nvcc} is CUDA {version}, cuda_version is {stack.cuda_version}"


def test_cuda_metapackage_is_not_installed(host):
    assert not package_versions(host, "cuda"), (
        "the bare `cuda` metapackage is installed: it pulls a driver that can replace yours"
    )


def test_cuda_repo_source_is_deb822_and_signed(host, stack):
    if stack.cuda_source != "cuda-repo":
        pytest.skip(f"cuda_source is {stack.cuda_source}")
    sources = host.run("grep -l -i 'compute/cuda\\|cuda' /etc/apt/sources.list.d/*.sources").stdout.split()
    assert sources, "no deb822 .sources file for NVIDIA's CUDA repo"
    for path in sources:
        assert "Signed-By:" in host.file(path).content_string, f"{path} has no Signed-By"
    lists = host.run("ls /etc/apt/sources.list.d/ | grep -i '^cuda.*\\.list$'").stdout.split()
    assert not lists, f"one-line CUDA sources remain: {lists}"
