"""provision/gpu/packages.py: what each GPU component installs for a resolved stack."""

from provision.gpu.model import Stack
from provision.gpu.packages import driver_packages, driver_uses_dkms, plan

UBUNTU = Stack("ubuntu", "580", "open", "cuda-repo", "12.8", "cuda-repo", "9")
DEBIAN = Stack("debian", "535", "proprietary", "distro", "11.8", "cuda-repo", "9")


def test_ubuntu_driver_is_the_server_set_with_signed_modules_for_the_kernel():
    assert driver_packages(UBUNTU, "ubuntu", kernel="6.8.0-45-generic") == [
        "nvidia-driver-580-server-open",
        "linux-modules-nvidia-580-server-open-6.8.0-45-generic",
        "linux-modules-nvidia-580-server-open-generic",
        "nvidia-compute-utils-580-server",
    ]
    assert not driver_uses_dkms(UBUNTU, "ubuntu")


def test_nvidias_repo_driver_starts_with_its_pinning_package():
    stack = Stack("cuda-repo", "580", "open", "cuda-repo", "12.8", "cuda-repo", "9")
    assert driver_packages(stack, "ubuntu") == ["nvidia-driver-pinning-580", "nvidia-open-580"]


def test_debian_plan_holds_the_branch_and_builds_with_dkms():
    driver, cuda, cudnn = plan(DEBIAN, "debian-12", (), ["nvidia_driver", "cuda", "cudnn"])
    assert driver_uses_dkms(DEBIAN, "debian")
    assert driver.packages == ["nvidia-driver", "nvidia-kernel-dkms", "nvidia-smi", "nvidia-persistenced",
                               "linux-headers-<kernel>"]
    assert "^libcuda1 at version 535.*" in driver.holds and "nvidia-" in driver.blacklist
    assert (cuda.source, cuda.packages) == ("distro", ["nvidia-cuda-toolkit"])
    # CUDA 11 gets the last cuDNN 9 built for it, pinned.
    assert cudnn.packages == ["cudnn9-cuda-11=9.10.2*"]


def test_a_cudnn_that_cannot_fit_is_a_note_and_no_package():
    stack = Stack("cuda-repo", "580", "open", "cuda-repo", "13.0", "cuda-repo", "8")
    (cudnn,) = plan(stack, "ubuntu-24.04", (), ["cudnn", "docker"])
    assert cudnn.packages == [] and cudnn.notes == ["cuDNN 8 is built for CUDA 11 and 12, not CUDA 13.0"]
    assert cudnn.as_dict()["component"] == "cudnn"
