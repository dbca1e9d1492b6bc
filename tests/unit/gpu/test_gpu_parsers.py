"""Every parser against outputs recorded on real hosts (tests/unit/data/gpu/<parser>/<case>.*).

One generic test walks the folders: ``<case>.txt`` is the raw output, ``<case>.source`` says
where it was recorded, ``<case>.json`` holds ``expected`` (the result as plain JSON) or
``raises`` (an exception name from provision.gpu.parsers), plus optional ``kwargs``.
"""

import dataclasses
import json
from pathlib import Path

import pytest

from provision.gpu import parsers

DATA = Path(__file__).parents[1] / "data" / "gpu"
CASES = sorted(DATA.glob("*/*.txt"))


def plain(value):
    """Dataclasses become dicts (properties included), tuples become lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for name, attr in vars(type(value)).items():
            if isinstance(attr, property):
                out[name] = plain(getattr(value, name))
        return out
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
def test_recorded_output(path):
    spec = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    assert path.with_suffix(".source").read_text(encoding="utf-8").strip(), "say where it was recorded"
    parse = getattr(parsers, f"parse_{path.parent.name}")
    text = path.read_text(encoding="utf-8")
    if "raises" in spec:
        with pytest.raises(getattr(parsers, spec["raises"])):
            parse(text, **spec.get("kwargs", {}))
    else:
        assert plain(parse(text, **spec.get("kwargs", {}))) == spec["expected"]


def test_every_case_is_complete():
    assert len(CASES) >= 50
    for folder in sorted(p for p in DATA.iterdir() if p.is_dir()):
        assert callable(getattr(parsers, f"parse_{folder.name}", None)), folder.name
    for stray in DATA.glob("*/*.*"):
        if stray.suffix in (".json", ".source"):
            assert stray.with_suffix(".txt").exists(), f"{stray} has no .txt"
    for path in CASES:
        assert path.with_suffix(".json").exists() and path.with_suffix(".source").exists(), path


def test_query_constant_is_the_documented_command():
    assert parsers.NVIDIA_SMI_QUERY == (
        "nvidia-smi --query-gpu=index,name,driver_version,memory.total,pci.bus_id "
        "--format=csv,noheader,nounits"
    )


def test_classify_nvidia_smi_failure_gives_the_kind_only():
    read = (DATA / "nvidia_smi_failure" / "version_mismatch_nvml_line.txt").read_text()
    assert parsers.classify_nvidia_smi_failure(read) == "version_mismatch"
    assert parsers.classify_nvidia_smi_failure("") is None


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (parsers.parse_proc_driver_version, "cat: /proc/driver/nvidia/version: No such file or directory\n"),
        (parsers.parse_nvcc_version, "bash: nvcc: command not found\n"),
        (parsers.parse_cudnn_version_header, "#define CUDNN_MAJOR 9\n#define CUDNN_MINOR 1\n"),
        (parsers.parse_nvidia_smi_table, "No devices were found\n"),
        (parsers.parse_os_release, "\n"),
        (parsers.parse_meminfo_total_mib, "MemFree: 10 kB\n"),
        (parsers.parse_df_avail_gib, "df: /nope: No such file or directory\n"),
        (parsers.parse_nvidia_smi_query, "0, NVIDIA A100, 535.104.05\n"),
    ],
    ids=["proc", "nvcc", "cudnn", "smi-table", "os-release", "meminfo", "df", "smi-query-columns"],
)
def test_unexpected_output_raises_parse_error(parse, text):
    with pytest.raises(parsers.ParseError):
        parse(text)


def test_lspci_label_falls_back_to_the_chip_then_the_id():
    (gpu,) = parsers.parse_lspci("01:00.0 3D controller [0302]: NVIDIA Corporation Device [10de:3340]\n")
    assert gpu.architecture is None and gpu.label == "10de:3340"


def test_dkms_status_for_module():
    status = parsers.parse_dkms_status((DATA / "dkms_status" / "dkms3_nvidia_535.txt").read_text())
    assert [e.version for e in status.for_module("nvidia")] == ["535.86.05"]
    assert str(parsers.parse_nvcc_version("release 12.8, V12.8.93")) == "12.8"
