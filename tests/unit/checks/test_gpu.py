"""Pure helpers of the GPU checks."""

from provision.checks.gpu import upstream


def test_upstream_version():
    assert upstream("535.261.03-1~deb12u1") == "535.261.03"
    assert upstream("1:570.133.20-0ubuntu1") == "570.133.20"
    assert upstream("570") == "570"
