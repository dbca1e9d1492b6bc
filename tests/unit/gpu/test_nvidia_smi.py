"""provision/gpu/nvidia_smi.py: nvidia-smi's query, table and failures (recorded outputs:
test_recorded_outputs.py)."""

from pathlib import Path

import pytest

from provision.gpu.nvidia_smi import (
    classify_nvidia_smi_failure,
    parse_nvidia_smi_query,
    parse_nvidia_smi_table,
)
from provision.gpu.parsing import ParseError

DATA = Path(__file__).parents[1] / "data" / "gpu"


def test_classify_nvidia_smi_failure_gives_the_kind_only():
    read = (DATA / "nvidia_smi_failure" / "version_mismatch_nvml_line.txt").read_text()
    assert classify_nvidia_smi_failure(read) == "version_mismatch"
    assert classify_nvidia_smi_failure("") is None


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (parse_nvidia_smi_table, "No devices were found\n"),
        (parse_nvidia_smi_query, "0, NVIDIA A100, 535.104.05\n"),
    ],
    ids=["smi-table", "smi-query-columns"],
)
def test_unexpected_output_raises_parse_error(parse, text):
    with pytest.raises(ParseError):
        parse(text)
