"""provision/gpu/cudnn.py: the cuDNN line and package for a CUDA release and GPUs."""

import pytest

from provision.gpu.cudnn import cudnn_package, cudnn_release
from tests.unit.gpu.resolver_cases import GTX_780


def test_cudnn_package():
    assert cudnn_package("9", "12.8") == "cudnn9-cuda-12"
    assert cudnn_package("9", "11.8") == "cudnn9-cuda-11"
    assert cudnn_package("9", "13.0") == "cudnn9-cuda-13"
    assert cudnn_package("8", "12.2") == "libcudnn8"
    with pytest.raises(ValueError, match=r"cuDNN 8 is built for CUDA 11 and 12, not CUDA 13\.0"):
        cudnn_package("8", "13.0")
    with pytest.raises(ValueError, match="unknown cuDNN major"):
        cudnn_package("7", "11.0")


def test_cudnn_release_is_the_last_line_that_fits_cuda_and_gpus():
    assert cudnn_release("9", "12.8").release == "9"
    assert cudnn_release("9", "11.8").release == "9.10.2"
    with pytest.raises(ValueError, match=r"for CUDA 12 supports compute capability below 5\.0"):
        cudnn_release("9", "12.8", (GTX_780,))
