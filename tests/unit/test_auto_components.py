"""``rigforge_components: auto``: the choice on the controller (provision/components.py,
provision/targets.py) and in the plays (roles/gpu_stack/tasks/select_components.yml) agree.

The PCI lines are sysfs's format for the devices in the recorded lspci outputs under
tests/unit/data/gpu (an RTX 4090 with its audio function, an H100 SXM).
"""

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from provision import components, probe, registry, targets
from provision.errors import HostFailedError, UsageError
from provision.gpu import commands
from provision.gpu.pci_bus import parse_sysfs_pci
from provision.inventory import Host
from tests.unit.test_cuda_vars import ROLES  # also sets up Ansible's plugin loader

SYSFS_4090 = "0000:01:00.0 0x10de 0x2684 0x030000\n0000:01:00.1 0x10de 0x22ba 0x040300\n"
SYSFS_H100 = "0000:18:00.0 0x10de 0x2330 0x030200\n"
SYSFS_AUDIO_ONLY = "0000:01:00.1 0x10de 0x22ba 0x040300\n"
GPU_VARS = yaml.safe_load((ROLES / "gpu_stack" / "vars" / "main.yml").read_text())
SELECT = yaml.safe_load((ROLES / "gpu_stack" / "tasks" / "select_components.yml").read_text())[0]


def test_the_sysfs_parser_keeps_gpus_only():
    (gpu,) = parse_sysfs_pci(SYSFS_4090)
    assert (gpu.slot, gpu.device_id, gpu.class_code, gpu.architecture) == (
        "0000:01:00.0", "2684", "0300", "Ada")
    assert [g.class_code for g in parse_sysfs_pci(SYSFS_H100)] == ["0302"]
    assert parse_sysfs_pci(SYSFS_AUDIO_ONLY) == []
    assert parse_sysfs_pci("0000:00:02.0 0x8086 0x46a6 0x030000\n") == []


def test_the_probe_reads_sysfs_when_lspci_is_absent():
    sections = probe.split_sections(
        "\n@@rigforge:lspci@@\n@@absent@@\n@@rigforge:pci-sysfs@@\n" + SYSFS_4090 + "\n@@rigforge:end@@\n")
    facts = probe.facts_from_sections(sections)
    assert [g["device_id"] for g in facts["gpus"]] == ["2684"]
    assert components.auto_choice(facts, "rig1")[0] == list(registry.gpu_stack())


def test_the_plays_and_the_probe_read_the_bus_with_one_script():
    assert " ".join(GPU_VARS["gpu_stack_pci_sysfs_script"].split()) == " ".join(
        commands.PCI_SYSFS_SCRIPT.split())
    assert "@@rigforge:pci-sysfs@@" not in probe.SCRIPT and commands.PCI_SYSFS_SCRIPT in probe.SCRIPT


def test_the_plays_choose_the_same_stacks_as_the_controller():
    assert GPU_VARS["gpu_stack_auto_components"] == {
        "gpu": list(registry.gpu_stack()), "no_gpu": list(registry.cpu_stack())}


def _play_choice(**variables):
    """The set_fact expression of select_components.yml, templated as the play does."""
    loader = DataLoader()
    base = {k: GPU_VARS[k] for k in ("gpu_stack_auto_components", "gpu_stack_pci_gpu_pattern")}
    templar = Templar(loader=loader, variables={**base, "inventory_hostname": "rig1", **variables})
    (choose,) = [t for t in SELECT["block"] if "ansible.builtin.set_fact" in t]
    expression = choose["ansible.builtin.set_fact"]["gpu_stack_selected_components"]
    return templar.template(trust_as_template(expression))


@pytest.mark.parametrize(("lines", "expected"), [
    (SYSFS_4090, registry.gpu_stack()),
    (SYSFS_H100, registry.gpu_stack()),
    (SYSFS_AUDIO_ONLY, registry.cpu_stack()),
    ("", registry.cpu_stack()),
])
def test_plain_ansible_playbook_reads_the_bus_for_auto(lines, expected):
    registered = {"stdout_lines": lines.splitlines()}
    assert _play_choice(rigforge_components="auto", __gpu_stack_pci_functions=registered) == list(expected)
    # the default is auto too
    assert _play_choice(__gpu_stack_pci_functions=registered) == list(expected)
    controller = probe.facts_from_sections(probe.split_sections(
        "\n@@rigforge:lspci@@\n@@absent@@\n@@rigforge:pci-sysfs@@\n" + lines + "\n@@rigforge:end@@\n"))
    assert components.auto_choice(controller, "rig1")[0] == list(expected)


def test_a_list_and_rigforges_choice_win_in_the_plays():
    skipped = {"skipped": True}
    assert _play_choice(rigforge_components=["base", "docker"], __gpu_stack_pci_functions=skipped) == [
        "base", "docker"]
    assert _play_choice(rigforge_components="auto", __gpu_stack_pci_functions=skipped,
                        rigforge_chosen_components={"rig1": ["base", "ollama"]}) == ["base", "ollama"]


def _auto_target(name="rig1", narrowing=None, **extra):
    return targets.Target(Host(name, "10.0.0.5"),
                          components.effective(list(registry.gpu_stack()), narrowing),
                          {"rigforge_components": "auto", **extra}, auto=True)


NO_GPU = {"probed_at": "2026-12-03T09:00:00Z", "gpus": []}
ONE_GPU = {"probed_at": "2026-12-03T09:00:00Z", "gpus": [
    {"slot": "01:00.0", "device_id": "2684", "class": "0300", "name": "", "architecture": "Ada"}]}


def test_settle_prefers_the_fresh_probe_over_the_record():
    target = _auto_target(rigforge_facts=NO_GPU)
    targets.settle_auto([target], None, {"rig1": ONE_GPU})
    assert target.components == list(registry.gpu_stack()) and not target.auto
    assert "1 NVIDIA GPU" in target.reason and "recorded" not in target.reason
    assert target.vars["rigforge_facts"] is ONE_GPU


def test_settle_falls_back_to_the_record_and_says_so():
    target = _auto_target(rigforge_facts=NO_GPU)
    targets.settle_auto([target], None, {}, {"rig1": "cannot connect"})
    assert target.components == list(registry.cpu_stack())
    assert "facts recorded 2026-12-03T09:00:00Z" in target.reason


def test_an_unreachable_auto_host_without_a_record_stops_the_command():
    with pytest.raises(HostFailedError, match=r"cannot choose its components.*timed out") as caught:
        targets.settle_auto([_auto_target()], None, {}, {"rig1": "rig1: cannot connect: timed out"})
    assert caught.value.exit_code == 1 and "nothing was run" in caught.value.hint


def test_a_narrowing_to_a_gpu_component_on_a_host_without_a_gpu_is_refused():
    narrowing = ["nvidia_driver"]
    target = _auto_target(narrowing=narrowing)
    with pytest.raises(UsageError, match=r"rig1 does not select nvidia_driver \(its components: "
                                         r"base, docker, conda, ollama\)") as caught:
        targets.settle_auto([target], narrowing, {"rig1": NO_GPU})
    assert caught.value.exit_code == 2
    # update-drivers leaves such a host out instead, and names it
    target = _auto_target(narrowing=narrowing)
    targets.settle_auto([target], narrowing, {"rig1": NO_GPU}, refuse_unselected=False)
    assert target.components == []
