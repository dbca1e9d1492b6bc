"""provision/gpu/system.py: os-release, meminfo and df (recorded outputs: test_recorded_outputs.py)."""

import pytest

from provision.gpu.parsing import ParseError
from provision.gpu.system import parse_df_avail_gib, parse_meminfo_total_mib, parse_os_release


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (parse_os_release, "\n"),
        (parse_meminfo_total_mib, "MemFree: 10 kB\n"),
        (parse_df_avail_gib, "df: /nope: No such file or directory\n"),
    ],
    ids=["os-release", "meminfo", "df"],
)
def test_unexpected_output_raises_parse_error(parse, text):
    with pytest.raises(ParseError):
        parse(text)


def test_os_release_values_are_unquoted_and_unescaped():
    text = 'ID=Ubuntu\nVERSION_ID="24.04"\nPRETTY_NAME="Ubuntu \\"Noble\\""\nID_LIKE=debian\n'
    found = parse_os_release(text)
    assert (found.id, found.version_id, found.pretty_name, found.id_like) == (
        "ubuntu", "24.04", 'Ubuntu "Noble"', ("debian",))
