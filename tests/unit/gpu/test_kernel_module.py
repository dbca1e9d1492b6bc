"""provision/gpu/kernel_module.py: the loaded module and DKMS's (recorded outputs:
test_recorded_outputs.py)."""

from pathlib import Path

import pytest

from provision.gpu.kernel_module import parse_dkms_status, parse_proc_driver_version
from provision.gpu.parsing import ParseError

DATA = Path(__file__).parents[1] / "data" / "gpu"


def test_dkms_status_for_module():
    status = parse_dkms_status((DATA / "dkms_status" / "dkms3_nvidia_535.txt").read_text())
    assert [e.version for e in status.for_module("nvidia")] == ["535.86.05"]


def test_a_missing_proc_file_raises_parse_error():
    with pytest.raises(ParseError):
        parse_proc_driver_version("cat: /proc/driver/nvidia/version: No such file or directory\n")
