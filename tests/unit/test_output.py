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
