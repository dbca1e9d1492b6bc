"""provision/gpu/torch_cuda.py: PyTorch's CUDA warnings (recorded outputs: test_recorded_outputs.py)."""

from provision.gpu.torch_cuda import parse_torch_cuda


def test_a_working_gpu_and_silence():
    assert parse_torch_cuda("True\n").available is True
    assert parse_torch_cuda("").available is None
    assert parse_torch_cuda("True\n").fix is None


def test_error_802_asks_for_the_fabric_manager():
    result = parse_torch_cuda(
        "RuntimeError: Unexpected error from cudaGetDeviceCount(). Did you run some cuda functions before "
        "calling NumCudaDevices() that might have already set an error? Error 802: system not yet initialized"
    )
    assert (result.cause, result.error_code) == ("cuda_init_error", 802)
    assert result.error == "system not yet initialized"
    assert "fabricmanager" in result.fix
