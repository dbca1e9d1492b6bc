import json

import pytest

from provision.commands import verify
from provision.errors import UsageError


def test_an_unknown_component_is_refused(workspace):
    with pytest.raises(UsageError, match="unknown component"):
        verify.verify(workspace, None, "nope")


def test_the_report_is_written_in_the_format_asked_for():
    from provision.verify import CheckResult, VerifyResult

    result = VerifyResult(checks=[CheckResult("rig1", "base", "test_x", "passed", "")],
                          junit_xml="<testsuites/>", output="")
    assert json.loads(verify.report_text(result, "json"))["checks"][0]["check"] == "test_x"
    assert verify.report_text(result, "junit") == "<testsuites/>"
    assert "test_x" in verify.report_text(result, "table")


def test_an_unknown_tier_is_refused_before_any_host_is_asked(workspace, monkeypatch):
    from provision.verify import run

    monkeypatch.setattr(run, "run_checks", lambda *a, **k: pytest.fail("a host was asked"))
    with pytest.raises(UsageError, match="unknown tier 'gpu' in --tier"):
        verify.verify(workspace, None, None, tier="install,gpu")


def test_the_json_report_counts_each_hosts_checks_per_tier():
    from provision.verify import CheckResult, VerifyResult

    result = VerifyResult(checks=[
        CheckResult("rig1", "nvidia_driver", "test_a", "passed"),
        CheckResult("rig1", "nvidia_driver", "test_b", "skipped", "no GPU", tier="health"),
        CheckResult("rig1", "nvidia_driver", "test_c", "skipped", "no GPU", tier="health"),
    ], junit_xml="", output="")
    report = json.loads(verify.report_text(result, "json"))
    assert report["summary"] == {"rig1": {"install": {"passed": 1}, "health": {"skipped": 2}}}
    assert report["checks"][1]["tier"] == "health" and "fix" not in report["checks"][1]
    assert "health" in verify.report_text(result, "table")
