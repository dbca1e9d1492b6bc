import pytest

from provision import stack_check
from provision.errors import UsageError
from provision.inventory import Host
from provision.targets import Target


def _target(components, **variables):
    return Target(Host("rig1", "10.0.0.5"), components, variables)


def test_only_stacks_with_a_component_the_resolver_knows_are_checked():
    assert not stack_check.needs_check([_target(["base", "docker", "conda"])])
    assert stack_check.needs_check([_target(["base", "ollama"])])
    assert stack_check.needs_check([_target(["nvidia_container_toolkit"])])


def test_a_stack_that_cannot_work_is_refused_naming_the_host():
    facts = {"os": {"id": "debian", "version_id": "12"}, "arch": "x86_64", "gpus": []}
    target = _target(["nvidia_driver", "cuda"], nvidia_driver_branch="535", cuda_version="12.8",
                     rigforge_facts=facts)
    with pytest.raises(UsageError, match="rig1: ") as err:
        stack_check.check([target])
    assert "nothing was changed" in err.value.hint
