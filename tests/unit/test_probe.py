"""The probe script's output -> facts -> resolver input, from recorded outputs; and the probe
over ssh, against a loopback SSH server running the script on this machine."""

import platform
from pathlib import Path

import pytest

from provision import remote
from provision.errors import HostFailedError
from provision.facts import host_facts
from provision.gpu.commands import NVIDIA_SMI_QUERY
from provision.inventory import Inventory
from provision.probe import SCRIPT, facts_from_sections, probe_host, probe_hosts, split_sections
from tests.conftest import snapshot
from tests.unit.loopback_sshd import host_in, keygen, public_line

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


# --- over ssh: the probe script run for real, on this machine, through a loopback SSH server ---


@pytest.fixture
def rig(workspace, tmp_path):
    sshd = host_in(workspace, tmp_path)
    yield sshd
    sshd.close()


def _inventory_host(workspace, name="rig1"):
    return Inventory(workspace.inventory).get(name)


def test_the_script_uses_the_gpu_commands_query_and_reads_df_with_its_header():
    assert NVIDIA_SMI_QUERY in SCRIPT
    assert "df -P -k /\n" in SCRIPT and "tail" not in SCRIPT.split("s df;")[1].split("\n")[0]


def test_a_probe_over_ssh_reads_this_machines_facts_in_one_session(workspace, rig):
    (result,) = probe_hosts(workspace, [_inventory_host(workspace)])
    assert result.error is None, result.error
    facts = result.facts
    assert facts["kernel"] == platform.release() and facts["arch"] == platform.machine()
    assert facts["os"]["id"] == platform.freedesktop_os_release()["ID"]
    assert facts["memory_mib"] > 0 and facts["disk_free_gib"] > 0
    assert not [u for u in facts["unreadable"] if u.startswith(("/proc/meminfo", "df"))]
    assert rig.commands == ["sh -s"] and rig.connections == 1


def test_a_probe_checks_the_host_key_even_while_a_shared_connection_is_open(workspace, rig, tmp_path):
    remote.run(workspace, "rig1", "true")  # the converged check's way: a master stays open
    other = public_line(keygen(tmp_path / "other"))
    workspace.known_hosts.write_text(f"[127.0.0.1]:{rig.port} {other}\n")
    with pytest.raises(HostFailedError) as caught:
        probe_host(workspace, _inventory_host(workspace))
    assert caught.value.message == "rig1: the host key of 127.0.0.1 changed (ssh-ed25519)"
    assert "remove it and add it again" in caught.value.hint
    assert rig.commands == ["sh -s"]  # only the shared session's


def test_an_unrecorded_host_key_is_refused_and_says_how_to_record_it(workspace, rig):
    workspace.known_hosts.write_text("")
    (result,) = probe_hosts(workspace, [_inventory_host(workspace)])
    assert result.facts is None
    assert result.error.splitlines()[0] == f"rig1: Server '[127.0.0.1]:{rig.port}' not found in known_hosts"
    with pytest.raises(HostFailedError) as caught:
        probe_host(workspace, _inventory_host(workspace))
    assert "`rigforge host add` records it" in caught.value.hint


def test_a_host_nothing_answers_for_cannot_be_connected_to(workspace, rig):
    rig.close()
    (result,) = probe_hosts(workspace, [_inventory_host(workspace)])
    assert result.error == "rig1: cannot connect: Connection refused"


def test_the_host_is_reached_as_the_inventory_says_now_and_nothing_is_written(workspace, rig):
    """host_vars override hosts.yml (as for Ansible), and a probe writes no ssh_config."""
    host_vars = workspace.root / "inventory" / "host_vars"
    host_vars.mkdir(exist_ok=True)
    (host_vars / "rig1.yml").write_text("ansible_user: bob\n")
    before = snapshot(workspace.root)
    (result,) = probe_hosts(workspace, [_inventory_host(workspace)])
    assert result.error is None and rig.users[-1] == "bob"
    assert snapshot(workspace.root) == before
