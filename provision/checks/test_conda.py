"""Checks for the ``conda`` component: what the conda role promises, read from the host."""

import json
import shlex
import stat

import pytest
import yaml

pytestmark = pytest.mark.component("conda")

MARKER = ".rigforge-miniforge-version"
PROFILE_SCRIPT = "/etc/profile.d/conda.sh"


def _prefix(rig) -> str:
    return rig.get("conda_prefix", "/opt/conda")


def _conda(host, rig, *args: str):
    return host.run(shlex.join([f"{_prefix(rig)}/bin/conda", *args]))


def test_installed_release_is_the_pinned_one(host, rig):
    marker = host.file(f"{_prefix(rig)}/{MARKER}")
    assert marker.exists, f"{marker.path} is missing: Miniforge was not installed by rigforge"
    installed, pinned = marker.content_string.strip(), str(rig["conda_version"])
    assert installed == pinned, f"Miniforge {installed} is installed, conda_version pins {pinned}"


def test_conda_version_is_the_pinned_releases(host, rig):
    # Miniforge <conda version>-<build> ships exactly that conda version.
    expected = f"conda {str(rig['conda_version']).split('-')[0]}"
    result = _conda(host, rig, "--version")
    assert result.rc == 0, f"conda --version failed: {result.stderr.strip()[:200]}"
    assert result.stdout.strip() == expected, (
        f"conda --version says {result.stdout.strip()!r}, expected {expected!r}"
    )


def test_condarc_uses_conda_forge_only(host, rig):
    condarc = host.file(f"{_prefix(rig)}/.condarc")
    assert condarc.exists, f"{condarc.path} is missing"
    config = yaml.safe_load(condarc.content_string) or {}
    assert config.get("channels") == ["conda-forge"], (
        f"{condarc.path} channels are {config.get('channels')!r}, expected ['conda-forge'] only"
    )
    assert config.get("channel_priority") == "strict", f"{condarc.path}: channel_priority is not strict"
    assert "defaults" not in (config.get("default_channels") or []), f"{condarc.path} lists defaults"


def test_environments_exist(host, rig):
    wanted = [env["name"] for env in rig.get("conda_environments") or []]
    if not wanted:
        pytest.skip("conda_environments is empty")
    result = _conda(host, rig, "env", "list", "--json")
    assert result.rc == 0, f"conda env list failed: {result.stderr.strip()[:200]}"
    listed = set(json.loads(result.stdout)["envs"])
    missing = [name for name in wanted if f"{_prefix(rig)}/envs/{name}" not in listed]
    assert not missing, f"conda does not list these environments: {', '.join(missing)}"


def test_prefix_is_owned_by_root(host, rig):
    prefix = host.file(_prefix(rig))
    assert prefix.is_directory, f"{prefix.path} is not a directory"
    assert prefix.user == "root", f"{prefix.path} is owned by {prefix.user}, not root"
    assert not prefix.mode & (stat.S_IWGRP | stat.S_IWOTH), (
        f"{prefix.path} is writable by group or others (mode {prefix.mode:o})"
    )


def test_conda_group_may_create_environments(host, rig):
    group = rig.get("conda_group", "conda")
    assert host.group(group).exists, f"group {group} does not exist"
    envs = host.file(f"{_prefix(rig)}/envs")
    assert envs.is_directory, f"{envs.path} is missing"
    assert (envs.user, envs.group) == ("root", group), (
        f"{envs.path} is owned by {envs.user}:{envs.group}, expected root:{group}"
    )
    wanted = stat.S_ISGID | stat.S_IRWXG
    assert envs.mode & wanted == wanted and not envs.mode & stat.S_IWOTH, (
        f"{envs.path} has mode {envs.mode:o}, expected group rwx with setgid and not world-writable"
    )
    missing = [u for u in rig.get("conda_users") or [] if group not in host.user(u).groups]
    assert not missing, f"not in group {group}: {', '.join(missing)}"


def test_login_shells_get_conda(host, rig):
    script = host.file(PROFILE_SCRIPT)
    if not rig.get("conda_profile_script", True):
        assert not (script.exists and "Managed by rigforge" in script.content_string), (
            f"{PROFILE_SCRIPT} is still there although conda_profile_script is false"
        )
        return
    assert script.exists, f"{PROFILE_SCRIPT} is missing"
    result = host.run("bash -lc 'type -t conda'")
    assert result.stdout.strip() == "function", "a login shell has no conda function"
