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
