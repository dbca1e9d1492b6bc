"""provision/gpu/model.py: the resolver's values."""

from provision.gpu.model import HostFacts, Problem, Resolution, Stack


def test_facts_from_parsed_outputs():
    from provision.gpu import kernel_module, mokutil, pci_bus, system

    facts = HostFacts.from_parsed(
        system.parse_os_release('ID=debian\nVERSION_ID="12"\n'),
        "x86_64",
        pci_bus.parse_lspci(
            "01:00.0 VGA compatible controller [0300]: NVIDIA Corporation Device [10de:2b85]\n"
        ),
        mokutil.parse_mokutil_sb_state("SecureBoot enabled\nSecureBoot validation is disabled in shim\n"),
        kernel_module.parse_proc_driver_version(
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.216.01  x\n"
        ),
    )
    assert (facts.os_id, facts.os_version, facts.driver_loaded) == ("debian", "12", "535.216.01")
    assert facts.secure_boot == "enabled" and not facts.secure_boot_enforcing
    assert facts.gpus[0].architecture == "Blackwell"


def test_secure_boot_enforces_unless_shim_skips_validation():
    assert HostFacts("debian", "12", secure_boot="enabled").secure_boot_enforcing
    assert not HostFacts("debian", "12", secure_boot="enabled",
                         secure_boot_validation_disabled=True).secure_boot_enforcing
    assert not HostFacts("debian", "12", secure_boot="disabled").secure_boot_enforcing
    assert not HostFacts().probed and HostFacts("ubuntu").probed


def test_stack_as_vars_and_resolution_ok():
    stack = Stack("cuda-repo", "580", "open", "cuda-repo", "12.8", "cuda-repo", "9")
    assert stack.as_vars() == {
        "nvidia_driver_source": "cuda-repo", "nvidia_driver_branch": "580", "nvidia_driver_flavor": "open",
        "cuda_source": "cuda-repo", "cuda_version": "12.8", "cudnn_source": "cuda-repo", "cudnn_version": "9",
    }
    assert Resolution(stack).ok
    assert not Resolution(stack, [Problem("no", ("cuda_version",))]).ok
