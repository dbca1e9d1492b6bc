"""The checks' one-command package test agrees with testinfra's per-package one.

Runs against this machine's real dpkg through testinfra's ``local://`` backend, and against a
stand-in ``dpkg-query`` on PATH for the states this machine does not have.
"""

import os
from types import SimpleNamespace

import pytest
from testinfra.backend import get_backend
from testinfra.host import Host

from provision.checks.packages import installed, versions


@pytest.fixture
def local():
    return Host(get_backend("local://"))


def test_agrees_with_testinfra_on_this_machines_packages(local):
    names = ["dpkg", "bash", "coreutils", "rigforge-no-such-package", "python3"]
    assert installed(local, names) == {n for n in names if local.package(n).is_installed}
    assert "dpkg" in installed(local, names)
    assert "rigforge-no-such-package" not in installed(local, names)


def test_held_counts_and_marked_for_removal_or_half_installed_do_not(local, tmp_path, monkeypatch):
    lines = ["held hold ok installed", "gone deinstall ok installed",
             "half install ok half-configured", "fine install ok installed", "weird"]
    stand_in = tmp_path / "dpkg-query"
    stand_in.write_text("#!/bin/sh\nprintf '%s\\n' " + " ".join(f"'{x}'" for x in lines)
                        + "\necho 'dpkg-query: no packages found matching nope' >&2\nexit 1\n")
    stand_in.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    got = installed(local, ["held", "gone", "half", "fine", "nope", "fine:amd64"])
    assert got == {"held", "fine", "fine:amd64"}


def test_no_names_asks_nothing(local):
    local.backend.run = lambda *a, **k: pytest.fail("ran a command")
    assert installed(local, []) == set()


class FakeHost:
    def __init__(self, stdout: str):
        self.stdout = stdout

    def run(self, command: str, *args):
        return SimpleNamespace(stdout=self.stdout, rc=0)


def test_held_packages_count_as_installed():
    host = FakeHost(
        "nvidia-driver hold ok installed 535.261.03-1~deb12u1\n"
        "libnvidia-ml1 install ok installed 535.261.03-1~deb12u1\n"
        "nvidia-legacy deinstall ok config-files 470.1-1\n"
        "nvidia-smi unknown ok not-installed\n"
    )
    assert versions(host, "nvidia-*") == {
        "nvidia-driver": "535.261.03-1~deb12u1",
        "libnvidia-ml1": "535.261.03-1~deb12u1",
    }
