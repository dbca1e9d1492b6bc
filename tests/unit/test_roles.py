from pathlib import Path

from provision import roles

ROLES = Path(__file__).resolve().parents[2] / "roles"


def test_a_component_reaches_its_dependencies_and_the_roles_its_tasks_import():
    # cuda: meta dependency gpu_stack; tasks/repo.yml imports nvidia_cuda_repo, which depends
    # on pins; the play holds the driver's libraries (nvidia_driver) after it.
    assert set(roles.of_component(ROLES, "cuda")) >= {"cuda", "gpu_stack", "nvidia_cuda_repo", "pins",
                                                      "nvidia_driver"}
    assert roles.of_component(ROLES, "cuda")[0] == "cuda"
    assert set(roles.of_component(ROLES, "docker")) >= {"docker", "pins", "gpu_stack"}
    assert "nvidia_driver" not in roles.of_component(ROLES, "docker")


def test_imports_inside_blocks_count(tmp_path):
    for role, text in {
        "a": "---\n- name: Block.\n  block:\n    - name: B.\n      ansible.builtin.include_role:\n"
             "        name: b\n",
        "b": "---\n- name: Nothing.\n  ansible.builtin.debug:\n    msg: b\n",
    }.items():
        (tmp_path / role / "tasks").mkdir(parents=True)
        (tmp_path / role / "tasks" / "main.yml").write_text(text)
    assert roles.reached(tmp_path, ("a",)) == ("a", "b")


def test_the_argument_spec_of_a_role():
    spec = roles.argument_spec(ROLES, "docker")
    assert "docker_source" in spec["options"]
    assert roles.argument_spec(ROLES, "gpu_stack") == {}
