"""provision/gpu/table.py: the facts table as the resolver, the checks and the stand-ins read it."""

import re

import pytest

from provision.gpu.table import table

PREFIX = re.compile(r"^\^(\(lib\)\?)?[a-z0-9][a-z0-9.+-]*$")


@pytest.mark.parametrize("os_id", ["debian", "ubuntu"])
def test_hold_patterns_are_anchored_name_prefixes_so_that_globs_say_the_same(os_id):
    patterns = table().packages_of_driver(os_id)["hold"]
    assert patterns and all(PREFIX.match(p) for p in patterns), patterns
    globs = table().hold_globs(os_id)
    assert globs[:2] == ["nvidia-*", "libnvidia-*"]
    # Each glob matches exactly the names its pattern matches, on a sample of real names.
    names = ["nvidia-driver", "libnvidia-compute-580", "cuda-drivers-580", "libcuda1", "libglx-nvidia0",
             "firmware-nvidia-gsp", "xserver-xorg-video-nvidia-580", "nvidia-container-toolkit",
             "cuda-toolkit-12-8", "libcudnn9-cuda-12", "linux-modules-nvidia-580-generic"]
    from fnmatch import fnmatchcase

    for name in names:
        by_pattern = any(re.match(p, name) for p in patterns)
        by_glob = any(fnmatchcase(name, g) for g in globs)
        assert by_pattern == by_glob, name


def test_debian_holds_cover_what_debians_driver_pulls_in():
    globs = table().hold_globs("debian")
    for name in ("libcuda1*", "libnvcuvid1*", "libglx-nvidia0*", "firmware-nvidia-gsp*", "cuda-drivers*"):
        assert name in globs
