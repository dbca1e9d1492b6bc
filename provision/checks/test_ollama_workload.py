"""Workload tier of the ``ollama`` component: a pulled model runs on the GPU.

The smallest model of ``ollama_models`` that ``ollama list`` shows is loaded with
``ollama run MODEL ""`` (an empty prompt loads it and returns), then ``ollama ps`` must show it
100% on the GPU. All on the CPU fails naming the likely cause (the host's ``nvidia-smi -L``
tells a driver/library mismatch after an update, which a reboot fixes, from a server that
found no GPU when it started); split between CPU and GPU fails as a model too big for the free
VRAM. The model stays loaded for ``ollama_keep_alive`` (1m when that is 0). What a failure
means, and its fix, is decided in provision/gpu/workload.py; without a GPU or a loaded module,
or without a pulled model, the check is skipped with the reason.

Whether the server found the GPU at all (its "inference compute" journal line) stays an
install check (``test_ollama.test_ollama_reports_the_gpu``): it needs no model and no load.
"""

import shlex

import pytest

from provision.checks import fail, fail_on
from provision.checks.gpu import require_kernel_module
from provision.checks.test_ollama import api_url, model_name

pytestmark = [pytest.mark.component("ollama"), pytest.mark.tier("workload")]


def _keep_alive(rig) -> str:
    configured = str(rig.get("ollama_keep_alive", "5m")).strip()
    return "1m" if configured in ("", "0", "0s", "0m") else configured


def _ollama(rig, command: str) -> str:
    """An ollama client command, pointed at where the configured server answers."""
    return f"OLLAMA_HOST={shlex.quote(api_url(rig['ollama_host']))} {command}"


def _model(host, rig) -> str:
    """The smallest pulled model of ollama_models, or skip with the reason."""
    from provision.gpu.commands import OLLAMA_LIST
    from provision.gpu.workload import pulled_models, smallest

    wanted = [model_name(m) for m in rig.get("ollama_models") or []]
    if not wanted:
        pytest.skip("ollama_models is empty: no pulled model to load (a small one will do, e.g. llama3.2:1b)")
    listed = host.run(_ollama(rig, OLLAMA_LIST))
    if listed.rc != 0:
        fail(f"`ollama list` failed: {(listed.stderr or listed.stdout).strip()[:300]}",
             "`sudo systemctl status ollama`; `journalctl -u ollama`")
    model = smallest(wanted, pulled_models(listed.stdout))
    if model is None:
        pytest.skip(f"no model of ollama_models is pulled ({', '.join(wanted)}): "
                    f"`ollama pull {wanted[0]}`, or `rigforge provision --components ollama`")
    return model


def test_a_pulled_model_runs_on_the_gpu(host, rig):
    from provision.gpu.commands import NVIDIA_SMI_LIST, OLLAMA_LOAD, OLLAMA_PS
    from provision.gpu.ollama_ps import parse_ollama_ps
    from provision.gpu.parsing import ParseError
    from provision.gpu.workload import load_problem, on_cpu, placement_problems

    require_kernel_module(host)
    model = _model(host, rig)
    loaded = host.run(_ollama(rig, OLLAMA_LOAD.format(keepalive=shlex.quote(_keep_alive(rig)),
                                                      model=shlex.quote(model))))
    problem = load_problem(model, loaded.rc, loaded.stdout + loaded.stderr)
    if problem:
        fail(problem.cause, problem.fix)
    ps = host.run(_ollama(rig, OLLAMA_PS))
    try:
        rows = parse_ollama_ps(ps.stdout + ps.stderr)
    except ParseError:
        fail(f"`ollama ps` failed: {(ps.stderr or ps.stdout).strip()[:300]}",
             "`sudo systemctl status ollama`; `journalctl -u ollama`")
    problems = placement_problems(model, rows)
    if on_cpu(model, rows):
        smi = host.run(NVIDIA_SMI_LIST)  # all on the CPU: the driver's state names the cause
        problems = placement_problems(model, rows, smi.rc, smi.stdout + smi.stderr)
    fail_on(problems)
