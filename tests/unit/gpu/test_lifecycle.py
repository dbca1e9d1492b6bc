"""provision/gpu/lifecycle.py: driver branches over time."""

from provision.gpu.lifecycle import advised_branch, eol_warning, eol_warnings, newest_cuda_for_branch


def test_newest_cuda_for_branch():
    assert newest_cuda_for_branch(535) == "12.2"
    assert newest_cuda_for_branch(580) == "13.0"  # 13.1 needs 590.44.01 (Table 3)
    assert newest_cuda_for_branch(615) == "13.5"
    assert newest_cuda_for_branch(470) == "11.8"
    assert newest_cuda_for_branch(440) is None


def test_the_driver_check_warns_of_a_branch_past_its_end_of_life_chosen_or_installed():
    assert eol_warnings("535", "570.195.03") == [
        "Driver branch 535 reached its end of life in 2026-06 (no more security fixes); move to 580, "
        "the long-term branch, supported to 2028-06 (`rigforge update-drivers --branch 580`).",
        "The installed driver branch 570 reached its end of life in 2026-02 (no more security fixes); "
        "move to 580, the long-term branch, supported to 2028-06 (`rigforge update-drivers --branch 580`).",
    ]
    assert eol_warnings("580", "580.95.05") == []


def test_a_branch_before_its_end_of_life_has_no_warning():
    assert eol_warning("535", today="2026-01-01") is None
    assert eol_warning("999") is None


def test_advised_branch_skips_branches_past_their_end_of_life():
    assert advised_branch(570) == 580  # 570 reached its end of life in 2026-02
    assert advised_branch(580) == 580
