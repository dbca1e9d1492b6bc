"""Workload tier of the ``conda`` component: PyTorch computes on the GPU in each environment
that has it.

In each environment of ``conda_environments`` (``<conda_prefix>/envs/<name>``), its python runs
TORCH_WORKLOAD_SCRIPT (provision/gpu/commands.py): ``torch.cuda.is_available()`` and a small
matmul on every device PyTorch sees. An environment without PyTorch is left out; with none,
the check is skipped with the reason. What a failure means, and its fix, is decided in
provision/gpu/workload.py; without a GPU or a loaded module the check is skipped with the
reason, after the same two commands the install tier runs, and before anything else.
"""

import shlex

import pytest

from provision.checks import fail_on
from provision.checks.gpu import require_kernel_module
from provision.checks.test_conda import _prefix

pytestmark = [pytest.mark.component("conda"), pytest.mark.tier("workload")]


def test_pytorch_computes_on_every_gpu(host, rig):
    from provision.gpu.commands import TORCH_WORKLOAD, TORCH_WORKLOAD_SCRIPT
    from provision.gpu.workload import parse_torch_run, torch_problems

    require_kernel_module(host)
    names = [str(env["name"]) for env in rig.get("conda_environments") or []]
    if not names:
        pytest.skip("conda_environments is empty: no environment to run PyTorch in")
    problems, without = [], []
    for name in names:
        python = f"{_prefix(rig)}/envs/{name}/bin/python"
        script = shlex.quote(TORCH_WORKLOAD_SCRIPT)
        out = host.run(TORCH_WORKLOAD.format(python=shlex.quote(python), script=script))
        output = out.stdout + out.stderr
        if out.rc == 127:
            without.append(f"{name} (no {python})")
        elif not parse_torch_run(output).has_torch:
            without.append(f"{name} (no torch)")
        else:
            problems += torch_problems(name, out.rc, output)
    if len(without) == len(names):
        pytest.skip(f"no environment in conda_environments has PyTorch: {', '.join(without)}")
    fail_on(problems)
