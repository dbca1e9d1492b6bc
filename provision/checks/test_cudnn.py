"""Checks for the ``cudnn`` component."""

import pytest

from provision.checks.packages import versions as package_versions

pytestmark = pytest.mark.component("cudnn")

HEADERS = (
    "/usr/include/x86_64-linux-gnu/cudnn_version_v{major}.h",
    "/usr/include/aarch64-linux-gnu/cudnn_version_v{major}.h",
    "/usr/include/cudnn_version.h",
    "/usr/local/cuda/include/cudnn_version.h",
)


def test_cudnn_package_matches_the_cuda_major(host, stack):
    cuda_major = stack.cuda_version.split(".")[0]
    package = f"cudnn{stack.cudnn_version}-cuda-{cuda_major}"
    assert package_versions(host, package), f"{package} is not installed"


def test_cudnn_header_reports_the_pinned_major(host, stack):
    from provision.gpu.cuda_versions import parse_cudnn_version_header

    paths = [p.format(major=stack.cudnn_version) for p in HEADERS]
    found = next((p for p in paths if host.file(p).exists), None)
    assert found, f"no cuDNN version header in {', '.join(paths)}"
    version = parse_cudnn_version_header(host.file(found).content_string)
    version = getattr(version, "version", version)
    assert version.split(".")[0] == stack.cudnn_version, (
        f"{found} says cuDNN {version}, cudnn_version is {stack.cudnn_version}"
    )
