"""provision/gpu/health.py: what the health checks conclude, from outputs recorded on real hosts
(tests/unit/data/gpu/) read through the real parsers."""

from pathlib import Path

import pytest

from provision.gpu import health
from provision.gpu.nvidia_smi_health import (
    SmiHealth,
    SmiRemappedRows,
    parse_nvidia_smi_health,
    parse_nvidia_smi_remapped_rows,
)
from provision.gpu.table import table
from provision.gpu.xid import parse_kernel_xid

DATA = Path(__file__).parents[1] / "data" / "gpu"


def recorded(folder: str, case: str) -> str:
    return (DATA / folder / f"{case}.txt").read_text()


def xid(case: str):
    return health.xid_findings(parse_kernel_xid(recorded("kernel_xid", case)), table().xid_event)


def row(**kw) -> SmiHealth:
    fields = dict.fromkeys(SmiHealth.__dataclass_fields__)
    return SmiHealth(**{**fields, **kw})


def test_xid_79_fails_with_its_meaning_and_the_reboot():
    problems, notes = xid("dmesg_ctime_xid79_unknown_process")
    assert [p.cause for p in problems] == [
        "Xid 79 on PCI:0000:a1:00 at Fri Apr  5 21:29:39 2024: GPU has fallen off the bus (bus)"]
    assert problems[0].fix.startswith("Reboot the host")
    assert notes == []


def test_a_fallen_off_gpu_without_an_xid_line_still_fails():
    problems, _ = xid("dmesg_fallen_off_bus_without_xid")
    assert [p.cause.split(":")[0] for p in problems] == ["Xid 79 on PCI"]


def test_memory_and_gsp_xids_fail_and_an_applications_xid_is_a_note():
    problems, notes = xid("dmesg_old_driver_xid48_xid63")
    assert [p.cause.split(" on ")[0] for p in problems] == ["Xid 48"]
    assert any(n.startswith("Xid 63 ") for n in notes)  # NVIDIA: no action at once
    problems, notes = xid("dmesg_ctime_xid119_gsp_timeout")
    assert [p.cause.split(" on ")[0] for p in problems] == ["Xid 119"]
    problems, notes = xid("dmesg_old_driver_xid13_xid32")
    assert [p.cause.split(" on ")[0] for p in problems] == ["Xid 32"]  # not in the catalog
    assert "NVIDIA's Xid catalog" in problems[0].fix
    assert [n.split(" on ")[0] for n in notes] == ["Xid 13"]


def test_a_healthy_log_has_no_finding():
    assert xid("dmesg_healthy_no_xid") == ([], [])


def test_an_x8_link_of_an_x16_card_fails_and_an_idle_generation_does_not():
    problems = health.link_problems(parse_nvidia_smi_health(recorded(
        "nvidia_smi_health", "two_geforce_second_slot_x8_of_16")))
    assert [p.cause for p in problems] == ["GPU 1 runs its PCIe link at x8 of x16 (Gen 3 of 3)"]
    idle = parse_nvidia_smi_health(recorded("nvidia_smi_health", "l40s_eight_gpus_pcie_idle"))
    assert {r.pcie_gen_current for r in idle} == {1} and health.link_problems(idle) == []


@pytest.mark.parametrize("case", [
    "h100_590_rigforge_fields_noheader_nounits", "geforce_2080_super_595_every_field_idle",
    "h100_590_every_field_idle", "l40s_595_every_field_idle"])
def test_recorded_healthy_cards_have_no_problem(case):
    rows = parse_nvidia_smi_health(recorded("nvidia_smi_health", case))
    assert health.link_problems(rows) == []
    assert health.memory_problems(rows, []) == []


def test_recorded_cards_without_persistence_mode_fail_only_where_it_is_wanted():
    on = parse_nvidia_smi_health(recorded("nvidia_smi_health", "h100_590_every_field_idle"))
    off = parse_nvidia_smi_health(recorded("nvidia_smi_health", "l40s_595_every_field_idle"))
    assert health.persistence_problems(on, True) == []
    assert [p.cause.split(") is ")[1] for p in health.persistence_problems(off, True)] == [
        "not in persistence mode (nvidia_driver_persistence_mode is true)"]
    assert health.persistence_problems(off, False) == []


def test_recorded_remapped_rows_after_a_reset_are_healthy():
    remapped = parse_nvidia_smi_remapped_rows(
        recorded("nvidia_smi_remapped_rows", "four_gpus_after_reset_header"))
    assert remapped and health.memory_problems([], remapped) == []


def test_memory_problems_name_the_gpu_and_the_reset():
    # No public recording has non-zero counts (see the closing notes of #15): built from fields.
    bad = row(index=0, pci_bus_id="00000000:01:00.0", ecc_uncorrected_volatile=2, retired_pages_pending=True)
    causes = [p.cause for p in health.memory_problems([bad], [
        SmiRemappedRows(None, "GPU-a", correctable=0, uncorrectable=1, pending=True, failure=False),
        SmiRemappedRows(None, "GPU-b", correctable=0, uncorrectable=9, pending=False, failure=True)])]
    assert causes == [
        "GPU 0 (00000000:01:00.0) had 2 uncorrectable ECC errors since the driver loaded",
        "GPU 0 (00000000:01:00.0) has memory pages waiting to be retired",
        "GPU (GPU-a) has a memory row remap pending",
        "GPU (GPU-b) failed to remap a memory row",
    ]
    assert "nvidia-smi -r -i 0" in health.memory_problems([bad], [])[0].fix


def test_persistence_mode_is_judged_only_when_wanted():
    off = row(index=0, persistence_mode=False)
    assert len(health.persistence_problems([off], True)) == 1
    assert health.persistence_problems([off], False) == []


def test_power_limits_by_index_and_uuid():
    rows = parse_nvidia_smi_health(recorded("nvidia_smi_health", "h100_590_rigforge_fields_noheader_nounits"))
    uuid = rows[0].uuid
    assert health.power_problems(rows, {0: 700}) == []
    assert health.power_problems(rows, {uuid: 700}) == []
    assert [p.cause for p in health.power_problems(rows, {0: 450, 3: 300})] == [
        f"GPU 0 ({rows[0].pci_bus_id}) power limit is 700 W, 450 W is configured",
        "nvidia_driver_power_limit_watts names GPU 3, which this host does not have"]
    na = parse_nvidia_smi_health(recorded("nvidia_smi_health", "power_limits_na_gpu_requires_reset"))
    unsettable = row(**{**na[0].__dict__, "index": 0})
    assert "reports no power limit" in health.power_problems([unsettable], {0: 250})[0].cause


@pytest.mark.parametrize(("output", "cause"), [
    ("Failed to initialize NVML: Driver/library version mismatch\nNVML library version: 550.120\n",
     "the loaded driver module and its libraries differ"),
    ("No devices were found\n", "the driver module is loaded but no GPU initialised"),
    ("Segmentation fault\n", "Segmentation fault"),
])
def test_a_failed_nvidia_smi_is_named(output, cause):
    problem = health.smi_failure(output, 9)
    assert problem.cause.startswith(f"nvidia-smi failed: {cause}") and problem.fix


def test_the_summary_keeps_each_fix_once():
    same = health.Problem("a", "reboot")
    assert health.summary([same, health.Problem("b", "reboot")]) == ("a; b", "reboot")
