"""What PyTorch says when ``torch.cuda.is_available()`` cannot use the GPU.

PyTorch prints a ``UserWarning: CUDA initialization: ...`` (or raises the same text as a
RuntimeError/AssertionError, in older releases and on first use of a device) for:

- ``driver_too_old``: "The NVIDIA driver on your system is too old (found version 11040)", the
  CUDA version the driver supports, as the CUDA driver API reports it (11040 is 11.4), is older
  than the CUDA PyTorch was built with;
- ``cuda_init_error``: "Unexpected error from cudaGetDeviceCount() ... Error 804: forward
  compatibility was attempted on non supported HW" (the CUDA runtime error number and text: 804
  is a CUDA newer than the driver, through the forward-compatibility package, on a GPU that
  does not support it; 802 "system not yet initialized" is a missing fabric manager);
- ``no_driver``: "Found no NVIDIA driver on your system";
- ``unsupported_gpu``: "<GPU> with CUDA capability sm_120 is not compatible with the current
  PyTorch installation", with the capabilities the build supports.

>>> parse_torch_cuda("True").available
True
"""

import re
from dataclasses import dataclass

from provision.gpu.parsing import output_lines


@dataclass(frozen=True)
class TorchCuda:
    """``available``: the True/False the check printed (None if it printed neither)."""

    available: bool | None
    cause: str | None = None
    driver_cuda: str | None = None
    error_code: int | None = None
    error: str | None = None
    gpu: str | None = None
    capability: str | None = None
    supported: tuple[str, ...] = ()

    @property
    def fix(self) -> str | None:
        if self.cause == "cuda_init_error" and self.error_code == 802:
            return "start nvidia-fabricmanager (NVSwitch systems), at the driver's version"
        return _FIXES.get(self.cause) if self.cause else None


_FIXES = {
    "driver_too_old": "install a newer driver, or a PyTorch build for the CUDA version this driver supports",
    "cuda_init_error": "match the driver and CUDA: a newer driver, or a PyTorch build for the CUDA the "
                       "driver supports (no CUDA forward-compatibility package on GPUs without its support)",
    "no_driver": "install the NVIDIA driver and load its module (nvidia-smi must answer first)",
    "unsupported_gpu": "install a PyTorch build whose CUDA supports this GPU's capability "
                       "(pytorch.org/get-started)",
}
_TOO_OLD = re.compile(r"The NVIDIA driver on your system is too old \(found version (?P<version>\d+)\)")
_DEVICE_COUNT = re.compile(r"Unexpected error from cudaGetDeviceCount\(\).*?Error (?P<code>\d+): "
                           r"(?P<error>.+?)(?: \(Triggered internally at.*)?$")
_NO_DRIVER = re.compile(r"Found no NVIDIA driver on your system")
_CAPABILITY = re.compile(r"(?:^|: )(?P<gpu>[^:]+?) with CUDA capability (?P<sm>sm_\d+) is not compatible")
_SUPPORTED = re.compile(r"The current PyTorch install supports CUDA capabilities (?P<list>[\w ]+?)\.?$")


def _driver_cuda(version: str) -> str:
    """The CUDA driver API's version number as CUDA prints it: 11040 -> "11.4"."""
    number = int(version)
    return f"{number // 1000}.{number % 1000 // 10}"


def _cause(line: str) -> TorchCuda | None:
    too_old = _TOO_OLD.search(line)
    if too_old:
        return TorchCuda(None, "driver_too_old", driver_cuda=_driver_cuda(too_old["version"]))
    device_count = _DEVICE_COUNT.search(line)
    if device_count:
        return TorchCuda(None, "cuda_init_error", error_code=int(device_count["code"]),
                         error=device_count["error"].strip())
    if _NO_DRIVER.search(line):
        return TorchCuda(None, "no_driver")
    capability = _CAPABILITY.search(line)
    if capability:
        return TorchCuda(None, "unsupported_gpu", gpu=capability["gpu"].strip(), capability=capability["sm"])
    return None


def parse_torch_cuda(output: str) -> TorchCuda:
    """The first known CUDA problem in the check's output, and what it printed."""
    lines = [line.strip() for line in output_lines(output)]
    printed = [line for line in lines if line in ("True", "False")]
    available = printed[-1] == "True" if printed else None
    found = next((cause for cause in map(_cause, lines) if cause), None)
    if found is None:
        return TorchCuda(available)
    supported = next((m["list"].split() for m in map(_SUPPORTED.search, lines) if m), [])
    return TorchCuda(available, found.cause, found.driver_cuda, found.error_code, found.error,
                     found.gpu, found.capability, tuple(supported))
