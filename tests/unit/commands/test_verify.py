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
