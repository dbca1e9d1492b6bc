"""provision/gpu/nvidia_smi_health.py: the health query and the remapped rows (recorded outputs:
test_recorded_outputs.py)."""

import pytest

from provision.gpu import commands
from provision.gpu.nvidia_smi_health import parse_nvidia_smi_health, parse_nvidia_smi_remapped_rows
from provision.gpu.parsing import ParseError


def test_the_commands_ask_for_the_fields_the_parsers_read_by_default():
    assert commands.NVIDIA_SMI_HEALTH.startswith("nvidia-smi --query-gpu=index,uuid,pci.bus_id,")
    assert commands.NVIDIA_SMI_HEALTH.endswith(" --format=csv,noheader,nounits")
    assert ",".join(commands.NVIDIA_SMI_REMAPPED_ROWS_FIELDS) in commands.NVIDIA_SMI_REMAPPED_ROWS


def test_a_pending_remap_without_header():
    rows = parse_nvidia_smi_remapped_rows("GPU-455e672a, 0, 1, Yes, No\n")
    row = rows[0]
    assert (row.uuid, row.uncorrectable, row.pending, row.failure) == ("GPU-455e672a", 1, True, False)


@pytest.mark.parametrize("text", [
    'Field "remapped_rows.pending" is not a valid field to query.\n',
    "0, GPU-x, 00000000:01:00.0, 4, 4, 16, 16, 0, Maybe, Enabled, 350.00, 350.00, 350.00\n",
])
def test_output_that_is_not_the_answer_raises(text):
    with pytest.raises(ParseError):
        parse_nvidia_smi_health(text)
