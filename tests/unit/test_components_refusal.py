"""--components naming a component that a chosen host does not select: refused before anything
runs (exit 2, files unchanged), for every verb that takes it, and on the converged fast path."""

import pytest

from provision import components
from provision.errors import UsageError
from tests.conftest import snapshot


def test_the_message_names_the_host_its_components_and_the_fix():
    with pytest.raises(UsageError) as caught:
        components.refuse_unselected({"rig1": ["base", "docker"], "rig2": ["base", "nvidia_driver"]},
                                     ["nvidia_driver"])
    assert str(caught.value).startswith("rig1 does not select nvidia_driver (its components: base, docker)")
    assert "rig2" not in str(caught.value)
    assert "add it to rigforge_components" in caught.value.hint and "drop --components" in caught.value.hint


def test_a_selected_component_or_no_narrowing_passes():
    components.refuse_unselected({"rig1": ["base", "docker"]}, ["docker"])
    components.refuse_unselected({"rig1": ["base"]}, None)


@pytest.fixture
def two_hosts(two_rigs):
    host_vars = two_rigs.root / "inventory" / "host_vars"
    (host_vars / "rig1.yml").write_text("rigforge_components: [base, docker]\n")
    (host_vars / "rig2.yml").write_text("rigforge_components: [base, nvidia_driver]\n")
    return two_rigs


@pytest.mark.parametrize("verb", [["plan"], ["provision", "--yes"], ["verify"]])
def test_every_verb_refuses_before_contacting_a_host(cli, two_hosts, verb):
    before = snapshot(two_hosts.root)
    result = cli(*verb, "--components", "nvidia_driver")
    assert result.exit_code == 2, result.output
    assert "rig1 does not select nvidia_driver (its components: base, docker)" in result.output
    assert snapshot(two_hosts.root) == before


def test_the_converged_fast_path_refuses_too(cli, two_hosts):
    """A host recorded as converged used to answer "no changes" without reading its selection."""
    from provision import converged

    fp = converged.fingerprint(two_hosts)
    converged.save(two_hosts, {"version": converged.RECORD_VERSION, "hosts": {
        h: {"fingerprint": fp, "selected": sel}
        for h, sel in (("rig1", ["base", "docker"]), ("rig2", ["base", "nvidia_driver"]))}})
    before = snapshot(two_hosts.root)
    result = cli("provision", "--yes", "--components", "nvidia_driver")
    assert result.exit_code == 2, result.output
    assert "rig1 does not select nvidia_driver" in result.output
    assert snapshot(two_hosts.root) == before


def test_update_drivers_refuses_a_limited_host_without_the_driver(cli, two_hosts):
    before = snapshot(two_hosts.root)
    result = cli("update-drivers", "--limit", "rig1", "--yes")
    assert result.exit_code == 2, result.output
    assert "rig1 does not select nvidia_driver" in result.output
    assert snapshot(two_hosts.root) == before
