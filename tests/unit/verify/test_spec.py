"""What the checks run against (provision/verify/spec.py): the check modules of the hosts'
components, and testinfra's host spec of each host."""

from pathlib import Path

from provision import assets, registry
from provision.inventory import Host
from provision.targets import Target
from provision.verify import spec


def target(name, *components):
    return Target(Host(name, "10.0.0.5"), list(components), {})


def test_only_the_modules_of_the_hosts_components_are_collected():
    hosts = [target("a", "base", "docker"), target("b", "base", "ollama")]
    modules = spec.check_modules(hosts, ["install"])
    assert [Path(m).name for m in modules] == ["test_base.py", "test_docker.py", "test_ollama.py"]
    assert all(Path(m).is_file() for m in modules)


def test_each_tier_collects_its_own_modules_and_every_tier_is_the_default():
    driver = [target("a", "nvidia_driver")]
    names = {tier: [Path(m).name for m in spec.check_modules(driver, [tier])]
             for tier in ("install", "health")}
    assert names == {"install": ["test_nvidia_driver.py"], "health": ["test_nvidia_driver_health.py"]}
    assert [Path(m).name for m in spec.check_modules(driver)] == [
        "test_nvidia_driver.py", "test_nvidia_driver_health.py"]


def test_every_component_has_a_check_module():

    for name in registry.names():
        assert (assets.checks_dir() / f"test_{name}.py").is_file(), name


def test_without_components_the_whole_directory_is_collected():
    assert spec.check_modules([target("a")]) == [str(assets.checks_dir())]


def test_the_host_spec_goes_through_sudo_unless_the_user_is_root():
    def spec_of(user):
        return spec.host_spec(Target(Host("rig1", "10.0.0.5", user=user), ["base"], {}))

    assert spec_of("admin") == "ssh://rig1?sudo=true"
    assert spec_of("root") == "ssh://rig1" and spec_of(None) == "ssh://rig1"


def test_a_narrowed_verify_keeps_its_commands_and_results_apart(tmp_path):
    assert spec.scoped(tmp_path, "verify-commands", None, None) == tmp_path / "verify-commands"
    narrowed = {spec.scoped(tmp_path, "verify-commands", c, t)
                for c, t in [(None, ["install"]), (["base"], None), (["base"], ["install", "health"])]}
    assert narrowed == {tmp_path / "verify-commands.install.all", tmp_path / "verify-commands.all.base",
                        tmp_path / "verify-commands.install+health.base"}


def test_tiers_with_no_check_for_any_chosen_component_are_refused():
    import pytest

    from provision.errors import UsageError

    spec.refuse_empty_tiers([target("a", "base"), target("b", "nvidia_driver")], ["health"])  # b has some
    with pytest.raises(UsageError) as refused:
        spec.refuse_empty_tiers([target("a", "base", "docker")], ["health"])
    assert refused.value.message == "no check of tier health applies to the components of a (base, docker)"
    assert refused.value.hint.startswith("checks of that tier exist for health: nvidia_driver")
