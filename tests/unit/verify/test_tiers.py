"""The tiers of verify (provision/verify/tiers.py): --tier's parsing and each tier's modules."""

import pytest

from provision.errors import UsageError
from provision.verify import tiers


def test_no_tier_given_means_every_tier_in_order():
    assert tiers.parse(None) == ["install", "health", "workload"]


def test_tiers_keep_their_own_order_whatever_the_users():
    assert tiers.parse("workload, health") == ["health", "workload"]


@pytest.mark.parametrize(("text", "error"), [
    ("", "--tier is empty"), (" , ", "--tier is empty"),
    ("install,gpu", "unknown tier 'gpu' in --tier")])
def test_a_bad_tier_is_refused_naming_the_valid_ones(text, error):
    with pytest.raises(UsageError) as raised:
        tiers.parse(text)
    assert raised.value.message == error
    assert raised.value.hint == "valid tiers: install, health, workload (default: all)"
    assert raised.value.exit_code == 2


def test_the_install_tier_is_the_components_own_module():
    assert tiers.module_name("docker", "install") == "test_docker"
    assert tiers.module_name("docker", "workload") == "test_docker_workload"
