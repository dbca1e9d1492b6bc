"""Workload tier of the ``nvidia_container_toolkit`` component: a container computes on the GPU.

``docker run --gpus all IMAGE nvidia-smi -L`` (NVIDIA's sample workload, with -L for a short
answer), and, where a CDI specification is set up and Docker reads CDI specifications, the same
with ``--device nvidia.com/gpu=all``: each must list every GPU the host's own ``nvidia-smi -L``
lists. The image (``nvidia_container_toolkit_check_image``) has no CUDA of its own: the toolkit
injects nvidia-smi and the driver's libraries. It is pulled only when pinned by digest; an
unpinned image is used only when already on the host. What a failure means, and its fix, is
decided in provision/gpu/workload.py; without a GPU or a loaded module every check here is
skipped with the reason, after the same two commands the install tier runs.
"""

import pytest

from provision.checks import fail_on
from provision.checks.gpu import require_kernel_module
from provision.checks.test_nvidia_container_toolkit import CDI_REFRESH_SPEC, CDI_STATIC_SPEC

pytestmark = [pytest.mark.component("nvidia_container_toolkit"), pytest.mark.tier("workload")]

CDI_DEVICES = "--device nvidia.com/gpu=all"



def _image(rig) -> str:
    image = str(rig.get("nvidia_container_toolkit_check_image") or "").strip()
    if not image:
        pytest.skip("nvidia_container_toolkit_check_image is empty: no image to run nvidia-smi in")
    return image


def _host_gpus(host) -> list[str]:
    """The host's own ``nvidia-smi -L`` lines; the driver is loaded, so it must answer."""
    from provision.gpu.commands import NVIDIA_SMI_LIST
    from provision.gpu.health import smi_failure
    from provision.gpu.workload import gpu_list

    out = host.run(NVIDIA_SMI_LIST)
    if out.rc != 0:
        fail_on([smi_failure(out.stdout + out.stderr, out.rc)])
    return gpu_list(out.stdout)


def _run_container(host, rig, devices: str) -> None:
    from provision.gpu.commands import DOCKER_GPU_RUN
    from provision.gpu.workload import container_problems, image_unavailable, pinned, pull_policy

    image = _image(rig)
    gpus = _host_gpus(host)
    command = DOCKER_GPU_RUN.format(pull=pull_policy(image), devices=devices, image=image)
    out = host.run(command)
    output = out.stdout + out.stderr
    if image_unavailable(out.rc, output):
        why = ("is not pinned by digest, and rigforge pulls only pinned images" if not pinned(image)
               else "could not be pulled")
        pytest.skip(f"the image {image} is not on the host and {why}: `docker pull {image}` "
                    "(or pin nvidia_container_toolkit_check_image as IMAGE@sha256:DIGEST)")
    fail_on(container_problems(command, out.rc, output, gpus))


def test_gpu_container_runs_nvidia_smi(host, rig):
    require_kernel_module(host)
    _run_container(host, rig, "--gpus all")


def test_cdi_container_runs_nvidia_smi(host, rig):
    from provision.gpu.commands import DOCKER_CDI_SPEC_DIRS

    require_kernel_module(host)
    specs = [path for path in (CDI_REFRESH_SPEC, CDI_STATIC_SPEC) if host.file(path).exists]
    if not specs:
        pytest.skip(f"no CDI specification ({CDI_REFRESH_SPEC} or {CDI_STATIC_SPEC}): CDI is not set up")
    dirs = host.run(DOCKER_CDI_SPEC_DIRS)
    if dirs.rc != 0 or dirs.stdout.strip() in ("", "null", "[]"):
        pytest.skip(f"Docker reads no CDI specification (docker info lists no CDI spec directory), so "
                    f"{specs[0]} is unused: Docker 28.2 and newer read them by default, 25 to 28.1 with "
                    '"features": {"cdi": true} in daemon.json')
    _run_container(host, rig, CDI_DEVICES)
