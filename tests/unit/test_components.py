import pytest

from provision import components
from provision.errors import UsageError


def test_parse_list_keeps_stack_order():
    assert components.parse_list(" base ") == ["base"]
    assert components.parse_list(None) is None


def test_unknown_component_names_the_valid_ones():
    with pytest.raises(UsageError, match="unknown component 'dockr'") as err:
        components.parse_list("base,dockr")
    assert "docker" in err.value.hint


def test_every_component_has_a_role_and_a_playbook():
    from provision import assets

    for name in components.COMPONENTS:
        assert (assets.roles_dir() / name / "tasks" / "main.yml").is_file(), name
        assert (assets.playbooks_dir() / f"{name}.yml").is_file(), name


def test_empty_list_is_refused():
    with pytest.raises(UsageError, match="empty"):
        components.parse_list(" , ")


def test_host_components_must_be_a_list():
    assert components.host_components({}, "rig1") == ["base"]
    with pytest.raises(UsageError, match="must be a list"):
        components.host_components({"rigforge_components": "base"}, "rig1")
    with pytest.raises(UsageError, match="rigforge_components of host 'rig1'"):
        components.host_components({"rigforge_components": ["bse"]}, "rig1")


def test_effective_narrows():
    assert components.effective(["base"], None) == ["base"]
    assert components.effective(["base"], []) == []
