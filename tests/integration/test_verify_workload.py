"""The workload tier of `rigforge verify` on a real sandbox host over SSH.

The host has no GPU: without the stand-in every workload check is skipped with its reason and
verify passes. With the STAND-IN GPU (tests/integration/gpu_standin.py: /proc/driver/nvidia and
command shims for nvidia-smi, docker and ollama that print outputs recorded on real hosts, each
with its source in tests/unit/data/gpu/), the checks, parsers and judgment run for real: a
healthy recording passes; Docker's recorded `--gpus` failure and a model that Ollama runs on the
CPU fail verify with the named cause. Only the workload tier runs with the stand-in: the
components' packages are not on the host, and their install checks would fail.
"""

import json

import pytest
import yaml

from provision.gpu.commands import DOCKER_GPU_RUN, NVIDIA_SMI_LIST
from provision.gpu.workload import pull_policy
from provision.verify.spec import PREFETCH_DIR, scoped
from tests.integration import gpu_standin
from tests.integration.conftest import rigforge

pytestmark = [pytest.mark.integration]

COMPONENTS = ["base", "docker", "nvidia_container_toolkit", "conda", "ollama", "cuda"]
CPU_MODEL = "hf.co/unsloth/DeepSeek-R1-Distill-Llama-8B-GGUF:latest"  # ollama_ps/cpu_only_after_...
GPU_MODEL = "llama3.2:latest"  # ollama_ps/one_model_on_gpu
#: `ollama list` rows for the recorded models (IDs and sizes as their `ollama ps` recordings
#: print them), in the layout of ollama/ollama#4470: no recording lists these two models.
LIST = {CPU_MODEL: f"{CPU_MODEL}    6ab7dc0572eb    8.1 GB    2 weeks ago\n",
        GPU_MODEL: f"{GPU_MODEL}    a80c4f17acd5    4.0 GB    2 weeks ago\n"}
WORKLOAD_CHECKS = {
    ("nvidia_container_toolkit", "test_gpu_container_runs_nvidia_smi"),
    ("nvidia_container_toolkit", "test_cdi_container_runs_nvidia_smi"),
    ("conda", "test_pytorch_computes_on_every_gpu"),
    ("ollama", "test_a_pulled_model_runs_on_the_gpu"),
    ("cuda", "test_nvcc_builds_a_kernel_that_runs_on_every_gpu"),
}


@pytest.fixture(scope="module")
def workload_rig(rig):
    """The shared host with the components that have workload checks selected, and two models
    wanted (only the workload tier runs: the packages need not be there)."""
    host_dir = rig.workspace / "inventory" / "host_vars" / rig.name
    host_dir.mkdir(parents=True, exist_ok=True)
    path = host_dir / "workload_test.yml"
    path.write_text(yaml.safe_dump({"rigforge_components": COMPONENTS,
                                    "ollama_models": ["llama3.2", CPU_MODEL.removesuffix(":latest")]}))
    yield rig
    path.unlink()
    gpu_standin.remove(rig)


def _verify(rig, *extra):
    proc = rigforge(rig.workspace, "verify", "--limit", rig.name, "--tier", "workload", "--format", "json",
                    *extra, check=False)
    assert proc.stdout.strip(), f"verify printed no report (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return proc, {(c["component"], c["check"]): c for c in json.loads(proc.stdout)["checks"]}


def _answers(rig, smi: tuple[str, str, int], container: tuple[str, str, int], model: str, ps_case: str):
    """The stand-in's answers: the host's `nvidia-smi -L`, the container's run (--gpus all, with
    the default image), and `ollama list` / `run` / `ps` for ``model``."""
    gpu_standin.answer(rig, "nvidia-smi", NVIDIA_SMI_LIST.removeprefix("nvidia-smi "),
                       gpu_standin.recorded(*smi[:2]), rc=smi[2])
    image = _default_image(rig)
    run = DOCKER_GPU_RUN.format(pull=pull_policy(image), devices="--gpus all", image=image)
    text, rc = gpu_standin.recorded(*container[:2]), container[2]
    gpu_standin.answer(rig, "docker", run.removeprefix("docker "), text if rc == 0 else "", rc=rc,
                       stderr="" if rc == 0 else text)
    gpu_standin.answer(rig, "ollama", "list", "NAME    ID    SIZE    MODIFIED\n" + LIST[model])
    gpu_standin.answer(rig, "ollama", f"run --keepalive=5m {model} ", "")
    gpu_standin.answer(rig, "ollama", "ps", gpu_standin.recorded("ollama_ps", ps_case))


def _default_image(rig) -> str:
    defaults = rig.workspace / "roles" / "nvidia_container_toolkit" / "defaults" / "main.yml"
    return yaml.safe_load(defaults.read_text())["nvidia_container_toolkit_check_image"]


def test_without_a_gpu_every_workload_check_is_skipped_with_its_reason(workload_rig):
    proc, checks = _verify(workload_rig)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert set(checks) == WORKLOAD_CHECKS
    for check in checks.values():
        assert check["tier"] == "workload" and check["outcome"] == "skipped", check
        assert "no NVIDIA GPU on this host" in check["message"], check
    # Only the GPU gate ran (the install tier's own commands, besides testinfra's look at the
    # OS): a converged verify answers them from its one round trip, then reuses the results.
    # (a --tier workload verify keeps its record apart from the full verify's: spec.scoped)
    record = scoped(workload_rig.workspace / ".rigforge", PREFETCH_DIR, None, ["workload"]) / \
        f"{workload_rig.name}.json"
    assert set(json.loads(record.read_text())) - {"uname -s", "uname -m", "cat /etc/os-release"} == {
        "test -e /proc/driver/nvidia/version", "lspci -nn -d 10de: 2>/dev/null | grep -E '\\[030[02]\\]'"}
    _verify(workload_rig)
    proc = rigforge(workload_rig.workspace, "verify", "--limit", workload_rig.name, "--tier", "workload",
                    "--format", "json")
    assert workload_rig.name in json.loads(proc.stdout)["reused_results"]


def test_a_healthy_recording_passes(workload_rig):
    with gpu_standin.gpu(workload_rig):
        healthy = ("container_gpu_failure", "healthy_gpu_list", 0)
        _answers(workload_rig, healthy, healthy, GPU_MODEL, "one_model_on_gpu")
        proc, checks = _verify(workload_rig, "--components", "nvidia_container_toolkit,ollama")
        assert proc.returncode == 0, proc.stderr[-3000:]
        outcome = {key[1]: (c["outcome"], c["message"]) for key, c in checks.items()}
        assert outcome["test_gpu_container_runs_nvidia_smi"][0] == "passed"
        assert outcome["test_a_pulled_model_runs_on_the_gpu"][0] == "passed"
        assert outcome["test_cdi_container_runs_nvidia_smi"] == ("skipped", (
            "no CDI specification (/var/run/cdi/nvidia.yaml or /etc/cdi/nvidia.yaml): CDI is not set up"))
        assert f"run --keepalive=5m {GPU_MODEL} " in gpu_standin.calls(workload_rig, "ollama")


def test_a_docker_gpu_failure_and_a_model_on_the_cpu_fail_with_their_causes(workload_rig):
    with gpu_standin.gpu(workload_rig):
        _answers(workload_rig, ("container_gpu_failure", "healthy_gpu_list", 0),
                 ("container_gpu_failure", "no_gpu_runtime", 125), CPU_MODEL,
                 "cpu_only_after_runtime_log_line")
        proc, checks = _verify(workload_rig, "--components", "nvidia_container_toolkit,ollama")
        assert proc.returncode == 1
        container = checks[("nvidia_container_toolkit", "test_gpu_container_runs_nvidia_smi")]
        assert container["outcome"] == "failed"
        assert "the NVIDIA Container Toolkit is not registered) [no_gpu_runtime]" in container["message"]
        assert container["fix"].startswith("install nvidia-container-toolkit and register it with Docker")
        ollama = checks[("ollama", "test_a_pulled_model_runs_on_the_gpu")]
        assert ollama["outcome"] == "failed"
        assert ollama["message"].startswith(
            f"Ollama runs {CPU_MODEL} (8.1 GB) on the CPU (ollama ps: 100% CPU) "
            "although nvidia-smi lists 4 GPU(s)")
        assert ollama["fix"].startswith("`sudo systemctl restart ollama`")


def test_a_model_on_the_cpu_after_a_driver_update_names_the_reboot(workload_rig):
    with gpu_standin.gpu(workload_rig):
        _answers(workload_rig, ("nvidia_smi_failure", "version_mismatch_nvml_line", 18),
                 ("container_gpu_failure", "driver_library_mismatch_in_prestart_hook", 125), CPU_MODEL,
                 "cpu_only_after_runtime_log_line")
        proc, checks = _verify(workload_rig, "--components", "nvidia_container_toolkit,ollama")
        assert proc.returncode == 1
        for key in (("ollama", "test_a_pulled_model_runs_on_the_gpu"),
                    ("nvidia_container_toolkit", "test_gpu_container_runs_nvidia_smi")):
            check = checks[key]
            assert check["outcome"] == "failed", check
            assert "the loaded driver module and its libraries differ" in check["message"], check
            assert check["fix"] == "reboot the host: `sudo reboot`", check
        assert f"FAILED {workload_rig.name} test_a_pulled_model_runs_on_the_gpu: Ollama runs" in proc.stderr
