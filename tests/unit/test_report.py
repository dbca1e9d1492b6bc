"""provision/report.py: the per-host report at the end of `rigforge provision`."""

from provision import report
from provision.inventory import Host
from provision.runner import HostResult, _skipped_note
from provision.targets import Target

FACTS = {"os": {"id": "debian", "version": "12"}, "arch": "x86_64", "gpus": []}


def target(components, **more):
    return Target(Host("rig1", "10.0.0.5"), components, {
        "rigforge_components": components, "rigforge_facts": FACTS, "docker_source": "distro",
        "nvidia_container_toolkit_version": "1.20.1", "conda_version": "26.3.2-3",
        "conda_prefix": "/opt/conda",
        "ollama_version": "0.33.3", "ollama_host": "127.0.0.1:11434", "ollama_models": ["llama3.2"], **more})


def test_a_converged_gpu_host_says_what_it_has_and_what_to_run_next():
    components = ["base", "nvidia_driver", "cuda", "docker", "nvidia_container_toolkit", "conda", "ollama"]
    got = report.host_report(target(components), HostResult("rig1", ok=40, changed=3))
    assert got["status"] == "changed"
    assert got["has"]["nvidia_driver"] == "branch 535, proprietary modules, from debian, held"
    assert got["has"]["cuda"] == "CUDA 11.8 (distro)"
    assert got["has"]["docker"] == "Docker from distro, nvidia runtime in daemon.json"
    assert got["has"]["ollama"] == "Ollama 0.33.3 on 127.0.0.1:11434, models: llama3.2"
    assert got["has"]["conda"] == "Miniforge 26.3.2-3 in /opt/conda"
    assert got["next"] == "`rigforge verify --limit rig1`"
    assert report.lines(got)[0] == "rig1: changed"


def test_a_reboot_or_a_key_to_enroll_is_the_next_step():
    warned = HostResult("rig1", ok=3, warnings=["rig1 has a pending reboot: reboot the host soon."])
    assert report.host_report(target(["base"]), warned)["next"].startswith("reboot as the warning says")
    mok = HostResult("rig1", ok=3, warnings=["Enroll a Machine Owner Key (MOK) for DKMS: ..."])
    assert report.host_report(target(["base"]), mok)["next"].startswith("enroll the key at the console")


def test_a_failed_host_gets_its_errors_and_no_claims():
    failed = HostResult("rig1", ok=3, failed=1, messages=["Install Docker: no space left"])
    got = report.host_report(target(["base", "docker"]), failed)
    assert got["has"] == {} and got["errors"] == ["Install Docker: no space left"]
    assert "--retry-failed" in got["next"]


def test_check_mode_claims_nothing():
    got = report.host_report(target(["base", "docker"]), HostResult("rig1", ok=5), check=True)
    assert got["has"] == {} and got["next"] == "`rigforge provision` applies this plan"


def test_skipped_notes_are_lifted_from_the_roles_messages():
    assert _skipped_note({"msg": "SKIPPED: DKMS rebuild: dkms is not installed on rig1."}) == (
        "DKMS rebuild: dkms is not installed on rig1.")
    assert _skipped_note({"msg": ["SKIPPED: GPU check", "(nvidia-smi): no GPU"]}) == (
        "GPU check (nvidia-smi): no GPU")
    assert _skipped_note({"msg": "Kernels: all fine"}) is None


def test_the_facts_the_run_read_decide_what_auto_means():
    components = ["base", "nvidia_driver", "cuda"]
    bare = Target(Host("rig1", "10.0.0.5"), components, {"rigforge_components": components})
    debian = {"os": {"id": "debian", "version": "12"}, "arch": "x86_64", "gpus": []}
    got = report.host_report(bare, HostResult("rig1", ok=9), facts=debian)
    assert got["has"]["nvidia_driver"].startswith("branch 535, proprietary modules, from debian")
    assert got["has"]["cuda"] == "CUDA 11.8 (distro)"
    unknown = report.host_report(bare, HostResult("rig1", ok=9))
    assert "the host was not probed" in unknown["has"]["nvidia_driver"]
