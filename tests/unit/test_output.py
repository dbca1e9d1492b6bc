from provision.output import render_diff


def test_file_diff_is_unified():
    text = render_diff([{
        "before": "a\nb\n", "after": "a\nc\n",
        "before_header": "/etc/x (before)", "after_header": "/etc/x (after)",
    }])
    assert text.splitlines() == [
        "--- /etc/x (before)", "+++ /etc/x (after)", "@@ -1,2 +1,2 @@", " a", "-b", "+c"
    ]


def test_apt_prepared_summary_is_kept_and_noise_dropped():
    prepared = "The following NEW packages will be installed:\n  htop\n"
    assert render_diff([{"prepared": prepared}, "junk", {"before": "x", "after": "x"}]) == (
        prepared.rstrip()
    )


def test_apt_suggestions_are_dropped():
    prepared = (
        "Suggested packages:\n  gcc-doc\nRecommended packages:\n  fakeroot\n"
        "The following NEW packages will be installed:\n  htop jq\n"
        "0 upgraded, 2 newly installed, 0 to remove and 0 not upgraded.\n"
    )
    assert render_diff([{"prepared": prepared}]).splitlines() == [
        "The following NEW packages will be installed:", "  htop jq",
        "0 upgraded, 2 newly installed, 0 to remove and 0 not upgraded.",
    ]


def test_the_verify_table_for_a_file_is_the_table_not_json():
    from provision.output import verify_table_text
    from provision.verify import CheckResult, VerifyResult

    result = VerifyResult(checks=[CheckResult("rig1", "base", "test_os_is_supported", "passed")])
    text = verify_table_text(result)
    assert not text.lstrip().startswith("{")
    assert "rig1" in text and "test_os_is_supported" in text and "passed" in text
    assert "\x1b[" not in text  # no colour codes in a file
