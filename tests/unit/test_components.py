import pytest

from provision import components, registry
from provision.errors import UsageError


def test_parse_list_keeps_stack_order():
    assert components.parse_list(" base ") == ["base"]
    assert components.parse_list(None) is None


def test_unknown_component_names_the_valid_ones():
    with pytest.raises(UsageError, match="unknown component 'dockr'") as err:
        components.parse_list("base,dockr")
    assert "docker" in err.value.hint


def test_every_component_has_a_role_and_a_playbook(tmp_path):
    from provision import assets, workspace

    ws, _ = workspace.init(tmp_path / "ws")
    for name in registry.names():
        assert (assets.roles_dir() / name / "tasks" / "main.yml").is_file(), name
        assert (ws.root / "playbooks" / f"{name}.yml").is_file(), name


def test_empty_list_is_refused():
    with pytest.raises(UsageError, match="empty"):
        components.parse_list(" , ")


GPU_FACTS = {"probed_at": "2026-12-03T10:00:00Z", "gpus": [
    {"slot": "01:00.0", "device_id": "2684", "class": "0300", "name": "AD102 [GeForce RTX 4090]",
     "architecture": "Ada Lovelace"}]}
NO_GPU_FACTS = {"probed_at": "2026-12-03T10:00:00Z", "gpus": []}


def test_host_components_must_be_auto_or_a_list():
    with pytest.raises(UsageError, match="must be auto or a list"):
        components.host_components({"rigforge_components": "base"}, "rig1")
    with pytest.raises(UsageError, match="rigforge_components of host 'rig1'"):
        components.host_components({"rigforge_components": ["bse"]}, "rig1")


def test_auto_is_the_default_and_reads_the_facts():
    assert components.DEFAULT_COMPONENTS == "auto"
    gpu, why = components.choice({"rigforge_facts": GPU_FACTS}, "rig1")
    assert gpu == ["base", "nvidia_driver", "cuda", "cudnn", "docker", "nvidia_container_toolkit",
                   "conda", "ollama"]
    assert "1 NVIDIA GPU" in why and "RTX 4090" in why
    cpu, why = components.choice({"rigforge_components": "auto", "rigforge_facts": NO_GPU_FACTS}, "rig1")
    assert cpu == ["base", "docker", "conda", "ollama"]
    assert "no NVIDIA GPU" in why and "CPU" in why


def test_auto_without_facts_asks_for_a_probe():
    with pytest.raises(components.NoFactsError, match="no facts") as caught:
        components.host_components({}, "rig1")
    assert "rigforge probe rig1" in caught.value.hint
    # lspci absent and sysfs unreadable: the probe could not tell, so rigforge does not guess.
    with pytest.raises(components.NoFactsError, match="could not list its PCI devices"):
        components.host_components({"rigforge_facts": {"gpus": None}}, "rig1")


def test_an_explicit_list_wins_over_the_facts():
    chosen, why = components.choice({"rigforge_components": ["docker", "base"],
                                     "rigforge_facts": GPU_FACTS}, "rig1")
    assert chosen == ["base", "docker"] and "lists" in why


def test_effective_narrows():
    assert components.effective(["base"], None) == ["base"]
    assert components.effective(["base"], []) == []
