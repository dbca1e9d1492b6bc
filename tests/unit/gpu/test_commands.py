"""provision/gpu/commands.py: the commands behind each fact, and the probe's script built from them
(each parser's recorded outputs name their command: test_recorded_outputs.py)."""

import re
import subprocess

import pytest

from provision import probe
from provision.gpu import commands


def test_query_constant_is_the_documented_command():
    assert commands.NVIDIA_SMI_QUERY == (
        "nvidia-smi --query-gpu=index,name,driver_version,memory.total,pci.bus_id "
        "--format=csv,noheader,nounits"
    )


@pytest.mark.parametrize("name", ["OS_RELEASE", "KERNEL_RELEASE", "MACHINE", "MEMINFO_TOTAL", "DF_ROOT",
                                  "LSPCI", "PCI_SYSFS_SCRIPT", "PROC_DRIVER_VERSION", "NVIDIA_SMI_QUERY",
                                  "MOKUTIL_SB_STATE", "MOKUTIL_TEST_KEY"])
def test_the_probe_script_runs_each_fact_command(name):
    assert getattr(commands, name) in probe.SCRIPT


def test_the_probe_script_has_no_placeholder_left():
    assert re.search(r"@[A-Z_]+@", probe.SCRIPT) is None
    assert probe.SCRIPT.count("s mokutil-err; command -v mokutil >/dev/null 2>&1 && mokutil --sb-state") == 1


def test_the_sysfs_script_is_valid_shell():
    # The role gpu_stack runs the same text: a quoting slip would break both.
    result = subprocess.run(["sh", "-n", "-c", commands.PCI_SYSFS_SCRIPT], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_fact_command_is_one_line():
    for name, command in commands.FACT_COMMANDS.items():
        assert command and "\n" not in command, name
