"""provision/gpu/cuda_versions.py: nvcc --version and cudnn_version.h (recorded outputs:
test_recorded_outputs.py)."""

import pytest

from provision.gpu.cuda_versions import parse_cudnn_version_header, parse_nvcc_version
from provision.gpu.parsing import ParseError


def test_nvcc_version_reads_as_the_cuda_release():
    assert str(parse_nvcc_version("release 12.8, V12.8.93")) == "12.8"


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (parse_nvcc_version, "bash: nvcc: command not found\n"),
        (parse_cudnn_version_header, "#define CUDNN_MAJOR 9\n#define CUDNN_MINOR 1\n"),
    ],
    ids=["nvcc", "cudnn"],
)
def test_unexpected_output_raises_parse_error(parse, text):
    with pytest.raises(ParseError):
        parse(text)
