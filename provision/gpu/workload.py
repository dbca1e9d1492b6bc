"""What the workload checks conclude from what a GPU host printed: each problem with its likely
cause and fix, as pure functions of the outputs and the parsers' results (the checks in
provision/checks/test_*_workload.py run the commands of provision/gpu/commands.py and fail with
these, or skip when the work cannot run there).

- a container: ``docker run ... nvidia-smi -L`` through ``--gpus all`` or CDI must list every
  GPU the host's own ``nvidia-smi -L`` lists; a failure is named by parse_container_gpu_failure;
- PyTorch: TORCH_WORKLOAD_SCRIPT's lines (is_available, a matmul on every device); a CUDA
  warning PyTorch printed is named by parse_torch_cuda;
- Ollama: ``ollama ps`` must show the loaded model 100% on the GPU (parse_ollama_ps); all on the
  CPU or split between CPU and GPU fails with the likely cause;
- nvcc: NVCC_KERNEL compiles and runs a kernel on every device; the CUDA runtime's error text
  (cudaGetErrorString) names the cause.
"""

import re
from dataclasses import dataclass

from provision.gpu.container_errors import parse_container_gpu_failure
from provision.gpu.health import Problem, smi_failure
from provision.gpu.ollama_ps import OllamaModel
from provision.gpu.parsing import output_lines
from provision.gpu.torch_cuda import TorchCuda, parse_torch_cuda

_GPU_LINE = re.compile(r"^GPU \d+: ")
_HEALTH = "run `rigforge verify --tier health` for the GPU's errors"
_WRONG = ("the GPU computes wrong results: `rigforge verify --tier health`, then reset the GPU "
          "(`sudo nvidia-smi -r`) or reboot; if it recurs, the card needs service")
_PINNED = re.compile(r"@sha256:[0-9a-f]{64}$")


def gpu_list(text: str) -> list[str]:
    """The ``GPU N: NAME (UUID: ...)`` lines of ``nvidia-smi -L`` (MIG devices, indented, aside)."""
    return [line.strip() for line in output_lines(text) if _GPU_LINE.match(line)]


def _said(output: str, rc: int) -> str:
    """The last line a failed command printed, or its exit status."""
    lines = [line.strip() for line in output_lines(output) if line.strip()]
    return lines[-1][:300] if lines else f"exit status {rc}"


# --- a container on the GPU ------------------------------------------------------------------

#: parse_container_gpu_failure's causes, in words.
CONTAINER_CAUSES = {
    "docker_not_running": "Docker's daemon does not answer",
    "driver_library_mismatch": "the driver's libraries differ from the loaded kernel module "
                               "(driver/library version mismatch: updated without a reboot)",
    "gpu_requires_reset": "the GPU needs a reset",
    "nvml_unknown_error": "NVML lost the container's GPU devices",
    "no_gpu_runtime": "Docker has no GPU device driver (the NVIDIA Container Toolkit is not registered)",
    "runtime_not_registered": "Docker does not know the nvidia runtime",
    "cdi_spec_missing": "the CDI specification does not name the requested devices",
}
#: What Docker prints when the image is neither on the host nor pullable (with --pull never:
#: "No such image").
_NOT_PULLED = ("No such image", "Unable to find image", "pull access denied", "manifest unknown")


def pinned(image: str) -> bool:
    """Whether the image is named by its digest (``NAME[:TAG]@sha256:<64 hex>``)."""
    return bool(_PINNED.search(image))


def pull_policy(image: str) -> str:
    """``docker run --pull``: a pinned image is pulled when missing, any other never."""
    return "missing" if pinned(image) else "never"


def image_unavailable(rc: int, output: str) -> bool:
    """The container never started because its image is not there and was not pulled."""
    return (rc != 0 and parse_container_gpu_failure(output) is None
            and "Downloaded newer image" not in output and any(m in output for m in _NOT_PULLED))


def container_problems(command: str, rc: int, output: str, host_gpus: list[str]) -> list[Problem]:
    """The container's ``nvidia-smi -L`` (``output`` with stderr) against the host's GPUs."""
    if rc != 0:
        failure = parse_container_gpu_failure(output)
        if failure is None:
            return [Problem(f"`{command}` failed: {_said(output, rc)}",
                            f"run `{command}` on the host for the whole error, then `rigforge doctor`")]
        words = CONTAINER_CAUSES.get(failure.cause, failure.cause.replace("_", " "))
        detail = f" ({failure.detail})" if failure.detail and failure.detail not in words else ""
        return [Problem(f"`{command}` failed: {words}{detail} [{failure.cause}]", failure.fix)]
    seen = gpu_list(output)
    if not seen:
        return [Problem(f"`{command}` lists no GPU: {_said(output, rc)}",
                        f"run `{command}` on the host; `rigforge doctor`")]
    if len(seen) < len(host_gpus):
        missing = [gpu for gpu in host_gpus if gpu not in seen] or host_gpus[len(seen):]
        return [Problem(f"the container sees {len(seen)} of the host's {len(host_gpus)} GPUs"
                        f" (missing: {'; '.join(missing)})",
                        "look for NVIDIA_VISIBLE_DEVICES or CUDA_VISIBLE_DEVICES in the image and in "
                        "daemon.json; regenerate the CDI specification after a GPU change "
                        "(`sudo systemctl restart nvidia-cdi-refresh.service`, or "
                        "`sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml`)")]
    return []


# --- PyTorch ---------------------------------------------------------------------------------

TORCH_MARK = "rigforge-torch"
#: The sum of a 64x64 matrix of ones times itself.
MATMUL_SUM = 64 ** 3


@dataclass(frozen=True)
class TorchDevice:
    index: int
    ok: bool
    result: int | None = None
    name: str = ""
    error: str = ""


@dataclass(frozen=True)
class TorchRun:
    """What TORCH_WORKLOAD_SCRIPT printed: ``has_torch`` False only when ``import torch`` raised
    ImportError; ``cuda`` is the CUDA PyTorch was built with (None: a CPU-only build)."""

    has_torch: bool
    version: str | None = None
    cuda: str | None = None
    available: bool | None = None
    devices: tuple[TorchDevice, ...] = ()


_TORCH_VERSION = re.compile(rf"^{TORCH_MARK} version (?P<version>\S+) cuda (?P<cuda>\S+)$")
_TORCH_DEVICE = re.compile(
    rf"^{TORCH_MARK} device (?P<index>\d+) (?:ok (?P<result>-?\d+) (?P<name>.*)|error (?P<error>.*))$")


def parse_torch_run(output: str) -> TorchRun:
    lines = [line.strip() for line in output_lines(output)]
    version = next((m for m in map(_TORCH_VERSION.match, lines) if m), None)
    if f"{TORCH_MARK} none" in lines:
        return TorchRun(has_torch=False)
    if version is None:  # the script failed before it could say: judged as a failure
        return TorchRun(has_torch=True)
    devices = tuple(
        TorchDevice(int(m["index"]), m["error"] is None, int(m["result"]) if m["result"] else None,
                    (m["name"] or "").strip(), (m["error"] or "").strip())
        for m in map(_TORCH_DEVICE.match, lines) if m)
    cuda = None if version["cuda"] == "None" else version["cuda"]
    return TorchRun(True, version["version"], cuda, parse_torch_cuda(output).available, devices)


def _torch_cause(output: str) -> tuple[str, str] | None:
    """What PyTorch's own CUDA warning says, in words, and its fix."""
    found = parse_torch_cuda(output)
    if found.cause == "driver_too_old":
        words = (f"the driver supports CUDA {found.driver_cuda} only, older than the CUDA this PyTorch "
                 "was built with")
    elif found.cause == "cuda_init_error":
        words = f"CUDA failed to initialise (error {found.error_code}: {found.error})"
    elif found.cause == "no_driver":
        words = "PyTorch finds no NVIDIA driver"
    elif found.cause == "unsupported_gpu":
        words = (f"{found.gpu} ({found.capability}) is not among this build's GPU architectures"
                 f" ({' '.join(found.supported) or 'not listed'})")
    else:
        return None
    return f"{words} [{found.cause}]", found.fix or ""


def torch_problems(env: str, rc: int, output: str) -> list[Problem]:
    """One environment's run of TORCH_WORKLOAD_SCRIPT (``output`` with stderr); call it only
    where :func:`parse_torch_run` found torch."""
    run, where = parse_torch_run(output), f"conda environment {env}"
    cause = _torch_cause(output)
    build = f"PyTorch {run.version} (CUDA {run.cuda})"
    if run.version is None:
        return [Problem(f"the PyTorch check failed in {where}: {_said(output, rc)}",
                        f"run `python -c 'import torch'` in {where} for the whole error")]
    if run.cuda is None:
        return [Problem(f"PyTorch {run.version} in {where} is a CPU-only build",
                        f"install a CUDA build of PyTorch in {env} (pytorch.org/get-started; on conda-forge "
                        "the builds whose build string starts with cuda)")]
    if not run.available:
        if cause:
            return [Problem(f"{build} in {where} cannot use the GPU: {cause[0]}", cause[1])]
        return [Problem(f"torch.cuda.is_available() is False in {where} ({build}): {_said(output, rc)}",
                        "`nvidia-smi` must answer first; then compare the CUDA version it shows with the "
                        f"CUDA {run.cuda} this PyTorch was built with")]
    if not run.devices:
        return [Problem(f"{build} in {where} lists no CUDA device although CUDA is available",
                        "look for CUDA_VISIBLE_DEVICES in the environment")]
    problems = []
    for device in run.devices:
        if not device.ok:
            known = _cuda_error(device.error)
            if known and "no kernel image" in device.error:  # PyTorch ships its own kernels
                known = ("this PyTorch build has no kernel for the GPU's architecture",
                         TorchCuda(None, "unsupported_gpu").fix or "")
            words, fix = cause or ((f"{known[0]} ({device.error[:200]})", known[1]) if known
                                   else (device.error[:300], _HEALTH))
            problems.append(Problem(f"a matmul on cuda:{device.index} failed in {where} ({build}): {words}",
                                    fix))
        elif device.result != MATMUL_SUM:
            problems.append(Problem(
                f"a matmul on cuda:{device.index} ({device.name}) in {where} gave {device.result},"
                f" not {MATMUL_SUM}", _WRONG))
    return problems


# --- Ollama ----------------------------------------------------------------------------------

_LIST_ROW = re.compile(
    r"^(?P<name>\S+)\s+(?P<id>[0-9a-f]{12})\s+(?P<size>\d+(?:\.\d+)?)\s*(?P<unit>[KMGT]?B)\b")
_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}


def pulled_models(text: str) -> dict[str, float]:
    """``ollama list``: each model's name and size in bytes (as printed: ``4.7 GB``)."""
    found = {}
    for line in output_lines(text):
        row = _LIST_ROW.match(line.strip())
        if row:
            found[row["name"]] = float(row["size"]) * _UNITS[row["unit"]]
    return found


def smallest(wanted: list[str], pulled: dict[str, float]) -> str | None:
    """The smallest of ``wanted`` (names as ``ollama list`` prints them) that is pulled."""
    present = [name for name in wanted if name in pulled]
    return min(present, key=lambda name: (pulled[name], name)) if present else None


def load_problem(model: str, rc: int, output: str) -> Problem | None:
    """``ollama run MODEL ""`` failed: Ollama's own words (an out-of-memory, a CUDA error)."""
    if rc == 0:
        return None
    if rc == 124:
        return Problem(f"Ollama did not load {model} within 300 s",
                       "look at `journalctl -u ollama` for what the runner did; try a smaller model")
    return Problem(f"Ollama could not load {model}: {_said(output, rc)}",
                   "look at `journalctl -u ollama` around the load for the runner's error")


def _tagged(name: str) -> str:
    """``llama3.2`` -> ``llama3.2:latest``, as Ollama names an untagged model."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _loaded(model: str, rows: list[OllamaModel]) -> OllamaModel | None:
    return next((r for r in rows if _tagged(r.name) == _tagged(model)), None)


def on_cpu(model: str, rows: list[OllamaModel]) -> bool:
    """Whether ``ollama ps`` shows the model loaded with none of it on the GPU."""
    row = _loaded(model, rows)
    return row is not None and row.gpu_percent == 0


def placement_problems(model: str, rows: list[OllamaModel], smi_rc: int | None = None,
                       smi_output: str = "") -> list[Problem]:
    """Where ``ollama ps`` says the loaded model runs; ``smi_*``: the host's ``nvidia-smi -L``,
    asked only when the model is all on the CPU, to name why."""
    row = _loaded(model, rows)
    if row is None:
        listed = ", ".join(r.name for r in rows) or "no model"
        return [Problem(f"{model} is not loaded after `ollama run` (ollama ps lists {listed})",
                        "look at `journalctl -u ollama` around the load for the runner's error")]
    if row.gpu_percent == 100:
        return []
    where = f"Ollama runs {model} ({row.size})"
    if row.gpu_percent == 0:
        if smi_rc:
            smi = smi_failure(smi_output, smi_rc)
            return [Problem(f"{where} on the CPU (ollama ps: {row.processor}); {smi.cause}", smi.fix)]
        gpus = len(gpu_list(smi_output))
        return [Problem(
            f"{where} on the CPU (ollama ps: {row.processor}) although nvidia-smi lists {gpus} GPU(s): "
            "the server found no usable GPU when it started (before the driver was loaded, or "
            "without its CUDA libraries)",
            "`sudo systemctl restart ollama`; if it stays on the CPU, "
            "`journalctl -u ollama | grep 'inference compute'` names the library it found")]
    return [Problem(
        f"{where} split between CPU and GPU (ollama ps: {row.processor}): the model does not fit "
        "in the GPUs' free memory",
        "pull a smaller model or quantization for ollama_models, use a shorter context "
        "(OLLAMA_CONTEXT_LENGTH), or free the VRAM other processes hold (`nvidia-smi` lists them)")]


# --- nvcc ------------------------------------------------------------------------------------

NVCC_MARK = "rigforge-nvcc"
#: The kernel's sum over 32 threads each writing 2 * its index.
KERNEL_SUM = 2 * sum(range(32))
_REBOOT = "reboot the host: `sudo reboot`"
_DRIVER_FOR_CUDA = ("install a driver whose CUDA version (nvidia-smi's header) is at least the "
                    "toolkit's, or a toolkit (cuda_version) the driver supports")
#: cudaGetErrorString's texts (the CUDA runtime API's error descriptions) -> (cause, fix).
_CUDA_ERRORS = (
    ("CUDA driver version is insufficient for CUDA runtime version",
     "the driver is older than this CUDA toolkit needs", _DRIVER_FOR_CUDA),
    ("the provided PTX was compiled with an unsupported toolchain",
     "the driver is older than the nvcc that built the kernel", _DRIVER_FOR_CUDA),
    ("no kernel image is available for execution on the device",
     "this CUDA release does not build for the GPU's architecture",
     "install a CUDA release that supports this GPU (cuda_version)"),
    ("system has unsupported display driver / cuda driver combination",
     "the driver's libraries differ from the loaded kernel module", _REBOOT),
    ("forward compatibility was attempted on non supported HW",
     "a CUDA forward-compatibility package is in use on a GPU without its support",
     "remove the cuda-compat package, or install a driver of the toolkit's CUDA version"),
    ("no CUDA-capable device is detected",
     "the CUDA runtime finds no GPU", "`nvidia-smi` must list the GPUs; else " + _REBOOT),
)


def _cuda_error(text: str) -> tuple[str, str] | None:
    """A CUDA runtime error text (cudaGetErrorString, also inside PyTorch's errors) in words, with its fix."""
    return next(((cause, fix) for said, cause, fix in _CUDA_ERRORS if said in text), None)


_ERROR_LINE = re.compile(rf"^{NVCC_MARK} error (?P<device>-?\d+) (?P<error>.*)$")
_SUM_LINE = re.compile(rf"^{NVCC_MARK} device (?P<device>\d+) sum (?P<sum>-?\d+)$")


def _compile_problem(output: str) -> Problem:
    lines = [line.strip() for line in output_lines(output)
             if line.strip() and NVCC_MARK not in line]
    gnu = next((line for line in lines if "unsupported GNU version" in line), None)
    if gnu:
        return Problem(f"nvcc refuses this host's gcc: {gnu[:300]}",
                       "install a gcc this CUDA release supports and point nvcc at it (-ccbin), or a "
                       "CUDA release that supports the OS's gcc (cuda_version)")
    error = next((line for line in lines if "error" in line.lower()), lines[0] if lines else "no output")
    return Problem(f"nvcc could not compile a minimal kernel: {error[:300]}",
                   "reinstall the toolkit: `rigforge provision --components cuda`")


def nvcc_problems(rc: int, output: str) -> list[Problem]:
    """NVCC_KERNEL's output (with stderr) and exit status."""
    lines = [line.strip() for line in output_lines(output)]
    if f"{NVCC_MARK} compile failed" in lines:
        return [_compile_problem(output)]
    problems = []
    for error in filter(None, map(_ERROR_LINE.match, lines)):
        device = "the GPUs" if error["device"] == "-1" else f"device {error['device']}"
        text = error["error"].strip()
        cause, fix = _cuda_error(text) or (text, _HEALTH)
        problems.append(Problem(f"a CUDA kernel built by nvcc could not run on {device}: {cause} ({text})",
                                fix))
    for found in filter(None, map(_SUM_LINE.match, lines)):
        if int(found["sum"]) != KERNEL_SUM:
            problems.append(Problem(
                f"a CUDA kernel on device {found['device']} computed {found['sum']}, not {KERNEL_SUM}",
                _WRONG))
    if problems:
        return problems
    if f"{NVCC_MARK} devices 0" in lines:
        return [Problem("the CUDA runtime lists no device",
                        "`nvidia-smi` must list the GPUs; else " + _REBOOT)]
    if rc != 0 or not any(map(_SUM_LINE.match, lines)):
        return [Problem(f"the nvcc-built kernel failed: {_said(output, rc)}",
                        "run the kernel by hand for the whole error, then `rigforge doctor`")]
    return []
