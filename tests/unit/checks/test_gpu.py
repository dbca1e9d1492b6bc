"""Pure helpers of the GPU checks, against recorded dpkg-query output."""

from types import SimpleNamespace

from provision.checks.gpu import installed_packages, upstream


class FakeHost:
    def __init__(self, stdout: str):
        self.stdout = stdout

    def run(self, command: str):
        return SimpleNamespace(stdout=self.stdout, rc=0)


def test_held_packages_count_as_installed():
    host = FakeHost(
        "hi  nvidia-driver 535.261.03-1~deb12u1\n"
        "ii  libnvidia-ml1 535.261.03-1~deb12u1\n"
        "rc  nvidia-legacy 470.1-1\n"
        "un  nvidia-smi <none>\n"
    )
    assert installed_packages(host, "nvidia-*") == {
        "nvidia-driver": "535.261.03-1~deb12u1",
        "libnvidia-ml1": "535.261.03-1~deb12u1",
    }


def test_upstream_version():
    assert upstream("535.261.03-1~deb12u1") == "535.261.03"
    assert upstream("1:570.133.20-0ubuntu1") == "570.133.20"
    assert upstream("570") == "570"
