"""provision/gpu/workload.py: what the workload checks conclude, from outputs recorded on real
hosts (tests/unit/data/gpu/) read through the real parsers. Where no recording of a case exists,
the test builds the input from the command's documented lines and says so."""

from pathlib import Path

import pytest

from provision.gpu import workload
from provision.gpu.ollama_ps import OllamaModel, parse_ollama_ps

DATA = Path(__file__).parents[1] / "data" / "gpu"
IMAGE = "ubuntu:noble-20260911@sha256:" + "68" * 32
RUN = f"docker run --rm --pull missing --gpus all {IMAGE} nvidia-smi -L"


def recorded(folder: str, case: str) -> str:
    return (DATA / folder / f"{case}.txt").read_text()


# --- nvidia-smi -L and the container ---------------------------------------------------------

FOUR = recorded("container_gpu_failure", "healthy_gpu_list")


def test_gpu_list_reads_every_gpu_line_and_leaves_mig_devices_aside():
    assert [line.split(":")[0] for line in workload.gpu_list(FOUR)] == ["GPU 0", "GPU 1", "GPU 2", "GPU 3"]
    # The indented MIG line follows nvidia-smi -L's documented layout (no recording with MIG).
    mig = "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-1)\n  MIG 1g.5gb     Device  0: (UUID: MIG-2)\n"
    assert workload.gpu_list(mig) == ["GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-1)"]


def test_a_container_that_lists_every_host_gpu_passes():
    assert workload.container_problems(RUN, 0, FOUR, workload.gpu_list(FOUR)) == []


def test_a_container_that_sees_fewer_gpus_fails_naming_the_missing_ones():
    host = workload.gpu_list(FOUR)
    seen = "\n".join(host[:2]) + "\n"  # the recording cut to its first two lines
    [problem] = workload.container_problems(RUN, 0, seen, host)
    assert problem.cause.startswith("the container sees 2 of the host's 4 GPUs (missing: GPU 2: Tesla T4")
    assert "NVIDIA_VISIBLE_DEVICES" in problem.fix


@pytest.mark.parametrize(("case", "words"), [
    ("driver_library_mismatch_in_prestart_hook", "driver/library version mismatch"),
    ("driver_library_mismatch_older_runc", "driver/library version mismatch"),
    ("no_gpu_runtime", "the NVIDIA Container Toolkit is not registered"),
    ("runtime_not_registered", "Docker does not know the nvidia runtime"),
    ("cdi_devices_unresolvable_compose", "(runtime.nvidia.com/gpu=all)"),
    ("docker_not_running", "Docker's daemon does not answer (unix:///var/run/docker.sock)"),
    ("gpu_requires_reset", "the GPU needs a reset"),
    ("nvml_unknown_error_after_daemon_reload", "NVML lost the container's GPU devices"),
])
def test_a_failed_container_names_the_recorded_cause_and_its_fix(case, words):
    from provision.gpu.container_errors import parse_container_gpu_failure

    text = recorded("container_gpu_failure", case)
    [problem] = workload.container_problems(RUN, 125, text, workload.gpu_list(FOUR))
    failure = parse_container_gpu_failure(text)
    assert problem.cause.startswith(f"`{RUN}` failed: ") and words in problem.cause
    assert problem.cause.endswith(f"[{failure.cause}]") and problem.fix == failure.fix


def test_a_container_that_lists_no_gpu_fails():
    [problem] = workload.container_problems(RUN, 0, "No devices were found\n", [])
    assert problem.cause == f"`{RUN}` lists no GPU: No devices were found"


def test_an_unknown_failure_quotes_dockers_last_line():
    text = "docker: Error response from daemon: something new.\nSee 'docker run --help'.\n"
    [problem] = workload.container_problems(RUN, 125, text, [])
    assert problem.cause == f"`{RUN}` failed: See 'docker run --help'."
    assert f"run `{RUN}` on the host" in problem.fix


def test_only_an_image_pinned_by_digest_is_pulled():
    assert workload.pinned(IMAGE) and workload.pull_policy(IMAGE) == "missing"
    assert not workload.pinned("ubuntu:24.04") and workload.pull_policy("ubuntu:24.04") == "never"
    assert not workload.pinned("ubuntu@sha256:1234")


def test_a_missing_image_is_told_apart_from_a_gpu_failure():
    # Docker's texts for an image it has not and did not pull (built from docker's messages:
    # no recording of `docker run --pull never` was found).
    missing = "docker: Error response from daemon: No such image: ubuntu:24.04.\n"
    assert workload.image_unavailable(125, missing)
    offline = ("Unable to find image 'ubuntu:24.04' locally\ndocker: Error response from daemon: Get "
               '"https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io: no such host.\n')
    assert workload.image_unavailable(125, offline)
    pulled = ("Unable to find image 'ubuntu:24.04' locally\nStatus: Downloaded newer image for ubuntu:24.04\n"
              + recorded("container_gpu_failure", "no_gpu_runtime"))
    assert not workload.image_unavailable(125, pulled)
    assert not workload.image_unavailable(0, "Unable to find image 'x' locally\n" + FOUR)


# --- PyTorch ---------------------------------------------------------------------------------
# No recording of the workload script's own lines exists (rigforge writes them): each case is
# its lines as the script prints them, with PyTorch's recorded warning where there is one.

VERSION = "rigforge-torch version 2.5.1 cuda 12.4\n"


def healthy(devices: int = 2) -> str:
    rows = "".join(f"rigforge-torch device {i} ok 262144 NVIDIA GeForce RTX 4090\n" for i in range(devices))
    return VERSION + "True\n" + rows


def test_torch_that_computes_on_every_device_passes():
    run = workload.parse_torch_run(healthy())
    assert run.has_torch and run.available and [d.index for d in run.devices] == [0, 1]
    assert workload.torch_problems("ml", 0, healthy()) == []


def test_an_environment_without_torch_is_told_apart():
    assert not workload.parse_torch_run("rigforge-torch none\n").has_torch
    # A script that died before its first line is a failure, not "no torch".
    crash = "Traceback (most recent call last):\nOSError: libcudart.so.12: cannot open shared object file\n"
    assert workload.parse_torch_run(crash).has_torch
    [problem] = workload.torch_problems("ml", 1, crash)
    assert problem.cause == ("the PyTorch check failed in conda environment ml: "
                             "OSError: libcudart.so.12: cannot open shared object file")


@pytest.mark.parametrize(("case", "words"), [
    ("driver_too_old_warning", "the driver supports CUDA 11.0 only"),
    ("error_804_forward_compatibility", "CUDA failed to initialise (error 804: forward compatibility"),
    ("no_driver_warning", "PyTorch finds no NVIDIA driver"),
])
def test_unavailable_cuda_names_pytorchs_recorded_warning(case, words):
    from provision.gpu.torch_cuda import parse_torch_cuda

    text = recorded("torch_cuda", case)
    output = VERSION + "False\n" + text
    [problem] = workload.torch_problems("ml", 0, output)
    assert problem.cause.startswith("PyTorch 2.5.1 (CUDA 12.4) in conda environment ml cannot use the GPU: ")
    assert words in problem.cause and problem.fix == parse_torch_cuda(text).fix


def test_a_gpu_newer_than_the_build_fails_the_matmul_with_the_recorded_warning():
    text = recorded("torch_cuda", "unsupported_gpu_sm_120")
    output = (VERSION + "True\n" + text + "rigforge-torch device 0 error CUDA error: no kernel image is "
              "available for execution on the device\n")
    [problem] = workload.torch_problems("ml", 0, output)
    assert "cuda:0 failed" in problem.cause
    assert "(sm_120) is not among this build's GPU architectures" in problem.cause
    assert problem.fix.startswith("install a PyTorch build whose CUDA supports")


def test_a_device_error_without_a_warning_is_named_from_cudas_text():
    output = healthy(1) + ("rigforge-torch device 1 error CUDA error: no kernel image is available for "
                           "execution on the device\n")
    [problem] = workload.torch_problems("ml", 0, output)
    assert "cuda:1 failed" in problem.cause and "no kernel for the GPU's architecture" in problem.cause
    assert problem.fix.startswith("install a PyTorch build whose CUDA supports")


def test_a_cpu_only_build_and_a_wrong_result_fail():
    [cpu] = workload.torch_problems("ml", 0, "rigforge-torch version 2.5.1+cpu cuda None\nFalse\n")
    assert cpu.cause == "PyTorch 2.5.1+cpu in conda environment ml is a CPU-only build"
    wrong = VERSION + "True\nrigforge-torch device 0 ok 262143 NVIDIA GeForce RTX 4090\n"
    [bad] = workload.torch_problems("ml", 0, wrong)
    assert bad.cause.endswith("gave 262143, not 262144") and "reset the GPU" in bad.fix


def test_unavailable_cuda_without_a_warning_still_fails():
    [problem] = workload.torch_problems("ml", 0, VERSION + "False\n")
    assert problem.cause.startswith("torch.cuda.is_available() is False in conda environment ml")


# --- Ollama ----------------------------------------------------------------------------------

#: `ollama list` as printed in two public issue threads (space-aligned: ollama/ollama#4470;
#: tab-separated, an older release: vercel/modelfusion#348).
LIST_SPACES = """NAME                            ID              SIZE    MODIFIED
llama3:8b                       a6990ed6be41    4.7 GB  2 weeks ago
llama3:latest                   a6990ed6be41    4.7 GB  25 hours ago
"""
LIST_TABS = """NAME           \tID          \tSIZE  \tMODIFIED
gemma2:latest  \tff02c3702f32\t5.4 GB\t2 weeks ago
llama3.1:latest\t62757c860e01\t4.7 GB\t2 weeks ago
llama3:latest  \t365c0bd3c000\t4.7 GB\t6 weeks ago
"""


def test_pulled_models_are_read_from_both_layouts_of_ollama_list():
    assert workload.pulled_models(LIST_SPACES) == {"llama3:8b": 4.7e9, "llama3:latest": 4.7e9}
    assert workload.pulled_models(LIST_TABS)["gemma2:latest"] == 5.4e9
    assert workload.pulled_models("NAME    ID    SIZE    MODIFIED\n") == {}


def test_the_smallest_pulled_model_of_the_wanted_ones_is_loaded():
    pulled = workload.pulled_models(LIST_TABS)
    wanted = ["gemma2:latest", "llama3:latest", "llama3.1:latest"]
    assert workload.smallest(wanted, pulled) == "llama3.1:latest"  # 4.7 GB each: by name
    assert workload.smallest(["gemma2:latest", "qwen3:latest"], pulled) == "gemma2:latest"
    assert workload.smallest(["qwen3:latest"], pulled) is None


def ps(case: str) -> list[OllamaModel]:
    return parse_ollama_ps(recorded("ollama_ps", case))


def test_a_model_all_on_the_gpu_passes():
    assert workload.placement_problems("llama3.2:latest", ps("one_model_on_gpu")) == []
    assert workload.placement_problems("llama3", ps("first_release_tab_separated")) == []
    assert not workload.on_cpu("llama3.2:latest", ps("one_model_on_gpu"))


CPU_MODEL = "hf.co/unsloth/DeepSeek-R1-Distill-Llama-8B-GGUF:latest"


def test_a_model_on_the_cpu_with_a_mismatched_driver_names_the_reboot():
    model, rows = CPU_MODEL, ps("cpu_only_after_runtime_log_line")
    assert workload.on_cpu(model, rows)
    mismatch = recorded("nvidia_smi_failure", "version_mismatch_nvml_line")
    [problem] = workload.placement_problems(model, rows, 18, mismatch)
    assert problem.cause.startswith(f"Ollama runs {model} (8.1 GB) on the CPU (ollama ps: 100% CPU); "
                                    "nvidia-smi failed: the loaded driver module and its libraries differ")
    assert problem.fix == "reboot the host: `sudo reboot`"


def test_a_model_on_the_cpu_with_a_working_driver_names_the_servers_start():
    [problem] = workload.placement_problems(CPU_MODEL, ps("cpu_only_after_runtime_log_line"), 0, FOUR)
    assert "although nvidia-smi lists 4 GPU(s): the server found no usable GPU when it" in problem.cause
    assert problem.fix.startswith("`sudo systemctl restart ollama`")


def test_a_split_model_fails_as_too_big_for_the_vram():
    [problem] = workload.placement_problems("llama4:16x17b", ps("cpu_gpu_split_forever"))
    assert problem.cause == ("Ollama runs llama4:16x17b (159 GB) split between CPU and GPU (ollama ps: "
                             "52%/48% CPU/GPU): the model does not fit in the GPUs' free memory")
    assert "smaller model" in problem.fix
    assert not workload.on_cpu("llama4:16x17b", ps("cpu_gpu_split_forever"))


def test_a_model_that_did_not_load_fails():
    [problem] = workload.placement_problems("qwen3:latest", ps("one_model_on_gpu"))
    assert problem.cause == "qwen3:latest is not loaded after `ollama run` (ollama ps lists llama3.2:latest)"
    assert workload.load_problem("m", 0, "") is None
    assert workload.load_problem("m", 124, "").cause == "Ollama did not load m within 300 s"
    # The client's recorded error when the server is down (ollama_ps/server_not_running).
    down = workload.load_problem("m", 1, recorded("ollama_ps", "server_not_running"))
    assert down.cause == "Ollama could not load m: Error: could not connect to ollama app, is it running?"


# --- nvcc ------------------------------------------------------------------------------------
# No recording of the kernel's own lines exists (rigforge writes them); the CUDA runtime's
# error texts are cudaGetErrorString's, and the gcc refusal is host_config.h's #error.


def test_a_kernel_that_sums_right_on_every_device_passes():
    out = "rigforge-nvcc devices 2\nrigforge-nvcc device 0 sum 992\nrigforge-nvcc device 1 sum 992\n"
    assert workload.nvcc_problems(0, out) == []


@pytest.mark.parametrize(("error", "cause", "fix"), [
    ("CUDA driver version is insufficient for CUDA runtime version", "the driver is older", "a driver"),
    ("the provided PTX was compiled with an unsupported toolchain.", "older than the nvcc", "a driver"),
    ("no kernel image is available for execution on the device", "GPU's architecture", "CUDA release"),
    ("system has unsupported display driver / cuda driver combination", "differ from the loaded", "reboot"),
    ("no CUDA-capable device is detected", "finds no GPU", "nvidia-smi"),
])
def test_a_kernel_that_cannot_run_names_cudas_error(error, cause, fix):
    [problem] = workload.nvcc_problems(1, f"rigforge-nvcc error -1 {error}\n")
    assert problem.cause.startswith("a CUDA kernel built by nvcc could not run on the GPUs: ")
    assert cause in problem.cause and error in problem.cause and fix in problem.fix


def test_a_compile_failure_names_nvccs_error():
    gcc = ("rigforge-nvcc compile failed\n"
           "/usr/local/cuda/bin/../targets/x86_64-linux/include/crt/host_config.h:143:2: error: #error -- "
           "unsupported GNU version! gcc versions later than 12 are not supported!\n")
    [problem] = workload.nvcc_problems(2, gcc)
    assert problem.cause.startswith("nvcc refuses this host's gcc: ") and "-ccbin" in problem.fix
    [other] = workload.nvcc_problems(2, "rigforge-nvcc compile failed\nsh: 1: gcc: not found\n")
    assert other.cause == "nvcc could not compile a minimal kernel: sh: 1: gcc: not found"


def test_a_wrong_sum_no_device_or_no_output_fails():
    [wrong] = workload.nvcc_problems(0, "rigforge-nvcc devices 1\nrigforge-nvcc device 0 sum 990\n")
    assert wrong.cause == "a CUDA kernel on device 0 computed 990, not 992"
    [none] = workload.nvcc_problems(0, "rigforge-nvcc devices 0\n")
    assert none.cause == "the CUDA runtime lists no device"
    [silent] = workload.nvcc_problems(139, "")
    assert silent.cause == "the nvcc-built kernel failed: exit status 139"
