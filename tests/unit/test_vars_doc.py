from pathlib import Path

import yaml

from provision import registry, roles, vars_doc

ROLES = Path(__file__).resolve().parents[2] / "roles"


def test_every_option_of_every_component_role_is_documented_in_stack_order():
    text = vars_doc.render(ROLES)
    for component in registry.REGISTRY:
        for name in roles.argument_spec(ROLES, component.role).get("options", {}):
            assert f"# {name}:" in text, name
    headers = [line for line in text.splitlines() if line.startswith("# --- ")]
    assert [h.rsplit("`", 2)[1] for h in headers][:3] == ["base", "nvidia_driver", "nvidia_cuda_repo"]


def test_the_block_uncomments_to_the_defaults():
    import re

    text = vars_doc.render(ROLES)
    setting = re.compile(r"^# [a-z][a-z0-9_]*:( |$)|^#   - ")
    uncommented = "\n".join(line[2:] for line in text.splitlines() if setting.match(line))
    values = yaml.safe_load(uncommented)
    assert values["docker_source"] == "docker-ce" and values["base_packages"][0] == "build-essential"
    assert values["cuda_version"] == "auto" and values["ollama_allow_network"] is False


def test_ansible_markup_becomes_plain_text():
    assert vars_doc._plain("Merges O(docker_daemon_options) into C(/etc/docker/daemon.json).") == (
        "Merges `docker_daemon_options` into `/etc/docker/daemon.json`.")
