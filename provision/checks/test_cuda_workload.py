"""Workload tier of the ``cuda`` component: nvcc builds a kernel that runs on every GPU.

In a fresh temporary directory the toolkit's nvcc (found where the install tier's
``test_cuda`` finds it) compiles NVCC_KERNEL_SOURCE (provision/gpu/commands.py), a kernel
that fills 32 integers on each device, and runs it; each device must give the right sum. What
a failure means, and its fix, is decided in provision/gpu/workload.py; without a GPU or a
loaded module, or without nvcc, the check is skipped with the reason.
"""

import shlex

import pytest

from provision.checks import fail_on
from provision.checks.gpu import require_kernel_module
from provision.checks.test_cuda import _nvcc

pytestmark = [pytest.mark.component("cuda"), pytest.mark.tier("workload")]


def test_nvcc_builds_a_kernel_that_runs_on_every_gpu(host, request):
    from provision.gpu.commands import NVCC_KERNEL
    from provision.gpu.workload import nvcc_problems

    require_kernel_module(host)
    # The host's resolved stack only after the GPU gate: nothing new runs on a GPU-less host.
    nvcc = _nvcc(host, request.getfixturevalue("stack").cuda_version)
    if not nvcc:
        pytest.skip("no CUDA toolkit: nvcc is not in /usr/local/cuda/bin or /usr/bin")
    out = host.run(NVCC_KERNEL.replace("@NVCC@", shlex.quote(nvcc)))
    problems = nvcc_problems(out.rc, out.stdout + out.stderr)
    fail_on(problems)
