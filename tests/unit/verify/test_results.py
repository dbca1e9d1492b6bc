"""What verify reports (provision/verify/results.py): per check, per host, as JSON."""

from provision import verify


def test_verify_collects_the_checks_warnings_per_host():
    result = verify.VerifyResult(checks=[
        verify.CheckResult("rig1", "nvidia_driver", "test_driver_branch_is_supported", "passed",
                           warning="Driver branch 535 reached its end of life"),
        verify.CheckResult("rig1", "base", "test_os_is_supported", "passed")])
    assert "warning" not in result.checks[1].to_dict()
    assert result.checks[0].to_dict()["warning"] == "Driver branch 535 reached its end of life"


def test_verify_json_carries_the_warnings():
    result = verify.VerifyResult(warnings={"rig1": ["Driver branch 535 reached its end of life"]})
    assert result.to_dict()["warnings"] == {"rig1": ["Driver branch 535 reached its end of life"]}


def test_the_driver_check_warns_of_a_branch_past_its_end_of_life_chosen_or_installed():
    from provision.gpu.stack import eol_warnings

    assert eol_warnings("535", "570.195.03") == [
        "Driver branch 535 reached its end of life in 2026-06 (no more security fixes); move to 580, "
        "the long-term branch, supported to 2028-06 (`rigforge update-drivers --branch 580`).",
        "The installed driver branch 570 reached its end of life in 2026-02 (no more security fixes); "
        "move to 580, the long-term branch, supported to 2028-06 (`rigforge update-drivers --branch 580`).",
    ]
    assert eol_warnings("580", "580.95.05") == []
