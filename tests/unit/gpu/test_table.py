"""provision/gpu/table.py: the facts table as the resolver, the checks and the stand-ins read it."""

import re

import pytest

from provision.gpu.table import table

PREFIX = re.compile(r"^\^(\(lib\)\?)?[a-z0-9][a-z0-9.+-]*$")


@pytest.mark.parametrize("os_id", ["debian", "ubuntu"])
def test_hold_patterns_are_anchored_name_prefixes_so_that_globs_say_the_same(os_id):
    patterns = table().packages_of_driver(os_id)["hold"]
    assert patterns and all(PREFIX.match(p) for p in patterns), patterns
    globs = table().hold_globs(os_id)
    assert globs[:2] == ["nvidia-*", "libnvidia-*"]
    # Each glob matches exactly the names its pattern matches, on a sample of real names.
    names = ["nvidia-driver", "libnvidia-compute-580", "cuda-drivers-580", "libcuda1", "libglx-nvidia0",
             "firmware-nvidia-gsp", "xserver-xorg-video-nvidia-580", "nvidia-container-toolkit",
             "cuda-toolkit-12-8", "libcudnn9-cuda-12", "linux-modules-nvidia-580-generic"]
    from fnmatch import fnmatchcase

    for name in names:
        by_pattern = any(re.match(p, name) for p in patterns)
        by_glob = any(fnmatchcase(name, g) for g in globs)
        assert by_pattern == by_glob, name


def test_debian_holds_cover_what_debians_driver_pulls_in():
    globs = table().hold_globs("debian")
    for name in ("libcuda1*", "libnvcuvid1*", "libglx-nvidia0*", "firmware-nvidia-gsp*", "cuda-drivers*"):
        assert name in globs


def _rows_with_a_source(value):
    """Every mapping of the table that names a source, wherever it sits: its ``source`` key, or
    ``source_ref`` where ``source`` names a package source (driver_packages)."""
    if isinstance(value, dict):
        if "source_ref" in value or "source" in value:
            yield {**value, "source": value.get("source_ref", value.get("source"))}
        for item in value.values():
            yield from _rows_with_a_source(item)
    elif isinstance(value, list):
        for item in value:
            yield from _rows_with_a_source(item)


def test_every_row_names_a_source_the_table_lists_and_its_check_date():
    raw = table().raw
    rows = [row for key, value in raw.items() if key != "sources" for row in _rows_with_a_source(value)]
    assert rows
    for row in rows:
        assert row["source"] in raw["sources"], row
        assert re.fullmatch(r"20\d\d-\d\d-\d\d", str(row.get("checked", ""))), row
    for source in raw["sources"].values():
        assert source["title"] and "url" in source


XIDS = [13, 31, 43, 45, 48, 61, 62, 63, 64, 68, 69, 74, 79, 92, 94, 95, 109, 119, 120]


@pytest.mark.parametrize("number", XIDS)
def test_each_xid_the_checks_name_has_its_meaning_and_fix(number):
    info = table().xid_event(number)
    assert info is not None and info.xid == number
    assert info.name and info.meaning and info.fix and info.immediate
    assert info.category in {"application", "memory", "bus", "nvlink", "gsp", "firmware", "hang"}
    assert info.source in table().raw["sources"]


def test_xid_rows_are_unique_checked_on_their_own_date_and_a_number_outside_is_none():
    rows = table().raw["xid_events"]
    assert sorted(row["xid"] for row in rows) == XIDS
    assert {row["checked"] for row in rows} == {"2026-12-07"}
    assert table().xid_event(32) is None
    assert table().xid_event(61).note  # the Ampere+ catalog lists it as unused
