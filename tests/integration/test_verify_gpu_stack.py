"""rigforge itself, not plain ansible-playbook, on the GPU stack of a GPU-less sandbox host:
the resolver refuses an impossible stack before any host changes; a valid one provisions,
and verify reports what it can check and skips, with the reason, what needs a GPU."""

import json

import pytest
import yaml

from tests.conftest import snapshot
from tests.integration.conftest import rigforge
from tests.integration.standins import shared_cuda_standin
from tests.integration.verify_report import assert_gpu_stack_verified_without_a_gpu

pytestmark = [pytest.mark.integration, pytest.mark.slow]

COMPONENTS = ["base", "nvidia_driver", "cuda", "cudnn"]


@pytest.fixture(scope="module")
def gpu_rig(rig):
    """The shared host with the GPU components selected; cuDNN from the CUDA repo stand-in."""
    host_dir = rig.workspace / "inventory" / "host_vars" / rig.name
    host_dir.mkdir(parents=True, exist_ok=True)
    path = host_dir / "gpu_stack_test.yml"
    path.write_text(yaml.safe_dump(
        {"rigforge_components": COMPONENTS, **shared_cuda_standin().role_vars}
    ))
    yield rig
    path.unlink()


def _packages(rig) -> str:
    return rig.ssh("dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}\\n'").stdout


def test_impossible_stack_is_refused_before_any_host_changes(gpu_rig):
    override = gpu_rig.workspace / "inventory" / "host_vars" / gpu_rig.name / "zz_bad.yml"
    override.write_text('cuda_source: cuda-repo\ncuda_version: "12.8"\n')
    try:
        before_host, before_ws = _packages(gpu_rig), snapshot(gpu_rig.workspace)
        for command in ("plan", "provision"):
            args = [command, "--yes"] if command == "provision" else [command]
            proc = rigforge(gpu_rig.workspace, *args, check=False)
            assert proc.returncode == 2, proc.stdout + proc.stderr
            assert "CUDA 12.8 needs driver >= 570; nvidia_driver_branch is 535. " in proc.stderr
            assert "nothing was changed" in proc.stderr
        assert _packages(gpu_rig) == before_host
        assert snapshot(gpu_rig.workspace) == before_ws
    finally:
        override.unlink()


def test_provision_then_verify_the_gpu_stack(gpu_rig):
    proc = rigforge(gpu_rig.workspace, "provision", "--yes", "--json", timeout=1800)
    run = json.loads(proc.stdout)["run"]
    assert run["status"] == "successful"
    verified = rigforge(gpu_rig.workspace, "verify", "--format", "json")
    report = json.loads(verified.stdout)
    # Debian 12's own driver is 535, past its end of life: verify passes and says so.
    assert report["warnings"][gpu_rig.name][0].startswith(
        "Driver branch 535 reached its end of life in 2026-06")
    assert f"warning {gpu_rig.name}: Driver branch 535 reached its end of life" in verified.stderr
    assert_gpu_stack_verified_without_a_gpu(report, COMPONENTS)


def test_verify_fails_when_a_driver_package_is_unheld(gpu_rig):
    gpu_rig.ssh("sudo -n apt-mark unhold nvidia-driver")
    try:
        proc = rigforge(gpu_rig.workspace, "verify", "--components", "nvidia_driver", check=False)
        assert proc.returncode == 1
        assert "test_driver_packages_are_held" in proc.stderr and "nvidia-driver" in proc.stderr
    finally:
        gpu_rig.ssh("sudo -n apt-mark hold nvidia-driver")
