"""The probe script's output -> facts -> resolver input, from recorded outputs."""

from pathlib import Path

from provision.probe import facts_from_sections, host_facts, split_sections

DATA = Path(__file__).parent / "data"


def _gpu_data(parser: str, case: str) -> str:
    text = (DATA / "gpu" / parser / f"{case}.txt").read_text()
    return "\n".join(line for line in text.splitlines() if not line.startswith("# "))


def _compose(**sections: str) -> str:
    """Probe output as the script prints it, from recorded pieces."""
    return "".join(f"\n@@rigforge:{name}@@\n{body}\n" for name, body in sections.items())


def test_debian_sandbox_recording():
    facts = facts_from_sections(
        split_sections((DATA / "probe" / "debian12_sandbox.txt").read_text())
    )
    assert facts["os"] == {"id": "debian", "version": "12", "codename": "bookworm",
                           "name": "Debian GNU/Linux 12 (bookworm)"}
    assert (facts["kernel"], facts["arch"]) == ("6.18.44-fc-v657", "x86_64")
    assert facts["memory_mib"] == 24105 and facts["disk_free_gib"] == 75.1
    assert facts["gpus"] is None, "lspci absent means unknown, not 'no GPU'"
    assert facts["driver"] is None
    assert facts["nvidia_smi"] == {"status": "absent", "gpus": []}
    assert facts["secure_boot"]["state"] == "unknown"
    assert facts["reboot_required"] is False
    parsed = host_facts(facts)
    assert (parsed.os_id, parsed.os_version, parsed.gpus) == ("debian", "12", ())


def test_ubuntu_gpu_host_composed_from_recordings():
    output = _compose(**{
        "os-release": _gpu_data("os_release", "ubuntu_24_04"),
        "kernel": "6.8.0-51-generic",
        "arch": "x86_64",
        "lspci": _gpu_data("lspci", "mixed_ampere_blackwell_nnk") + "\n@@rc=0",
        "nvidia-version": _gpu_data("proc_driver_version", "open_565_ubuntu_2404"),
        "nvidia-smi": _gpu_data("nvidia_smi_query", "one_gpu_noheader_nounits") + "\n@@rc=0",
        "mokutil-out": "SecureBoot enabled\n@@rc=0",
        "mokutil-err": "",
        "reboot-required": "yes",
        "end": "",
    })
    facts = facts_from_sections(split_sections(output))
    assert facts["os"]["id"] == "ubuntu" and facts["os"]["version"] == "24.04"
    assert [g["architecture"] for g in facts["gpus"]][:1] == ["Ampere"]
    assert all(g["class"] in ("0300", "0302") for g in facts["gpus"])
    assert facts["driver"] == {"loaded": "565.57.01", "flavor": "open"}
    assert facts["nvidia_smi"]["status"] == "ok"
    assert facts["nvidia_smi"]["gpus"][0]["memory_total_mib"] == 16311
    assert facts["secure_boot"] == {"state": "enabled", "validation_disabled": False,
                                    "enforcing": True}
    assert facts["reboot_required"] is True
    parsed = host_facts(facts)
    assert parsed.secure_boot_enforcing and parsed.driver_loaded == "565.57.01"


def test_driver_not_loaded_is_classified():
    output = _compose(**{
        "nvidia-smi": "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA "
        "driver. Make sure that the latest NVIDIA driver is installed and running.\n@@rc=9",
        "lspci": "@@absent@@",
        "mokutil-out": "@@absent@@",
    })
    facts = facts_from_sections(split_sections(output))
    assert facts["nvidia_smi"]["status"] == "no_driver"
    assert facts["secure_boot"]["state"] == "unknown"
    assert facts["os"] is None, "missing os-release is unknown, not a crash"
    assert any(u.startswith("os-release:") for u in facts["unreadable"])
