"""What `rigforge verify --format json` must say about the GPU stack of a GPU-less sandbox host:
what it can check passes, and what needs a GPU is skipped with the reason, never passed."""

#: Checks that pass without a GPU, per component.
PASSED_WITHOUT_GPU = {
    "nvidia_driver": [
        "test_driver_package_installed_for_the_branch",
        "test_driver_packages_are_held",
        "test_nouveau_is_blacklisted",
        "test_unattended_upgrades_leave_the_driver_alone",
    ],
    "cuda": ["test_nvcc_reports_the_pinned_version", "test_cuda_metapackage_is_not_installed"],
    "cudnn": ["test_cudnn_package_matches_the_cuda_major", "test_cudnn_header_reports_the_pinned_major"],
}


def outcomes(report: dict) -> dict[tuple[str, str], dict]:
    return {(c["component"], c["check"]): c for c in report["checks"]}


def assert_gpu_stack_verified_without_a_gpu(report: dict, components: list[str], also_passed=()) -> None:
    outcome = outcomes(report)
    wanted = [(c, check) for c in components for check in PASSED_WITHOUT_GPU.get(c, [])]
    for key in [*wanted, *also_passed]:
        assert outcome[key]["outcome"] == "passed", outcome[key]
    for key in [("nvidia_driver", "test_nvidia_smi_sees_the_gpus"),
                ("nvidia_driver", "test_loaded_module_matches_the_package")]:
        assert outcome[key]["outcome"] == "skipped", "no GPU must never count as a pass"
        assert "userspace installed, no kernel module loaded" in outcome[key]["message"]
    # The CUDA toolkit came from the distribution: there is no CUDA repository to check.
    assert outcome[("cuda", "test_cuda_repo_source_is_deb822_and_signed")]["outcome"] == "skipped"
    # No GPU: every health and workload check is skipped, each with its reason (issue #15).
    gpu_tiers = [c for c in report["checks"] if c.get("tier") in ("health", "workload")]
    assert gpu_tiers, "the health and workload tiers ran no check"
    for check in gpu_tiers:
        assert check["outcome"] == "skipped" and check["message"], check
    assert report["status"] == "passed"
