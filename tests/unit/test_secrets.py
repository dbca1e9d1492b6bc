"""Which variables hold secrets (provision/secrets.py): one filter for every digest and file."""

import pytest

from provision import converged, secrets
from provision.verify import memo, run


@pytest.mark.parametrize("name", [
    "ansible_become_pass", "ansible_ssh_pass", "ansible_become_password", "OLLAMA_API_TOKEN",
    "my_secret", "registry_credentials", "ansible_ssh_private_key_file", "Mirror_Password",
])
def test_names_that_say_they_hold_a_secret(name):
    assert secrets.is_secret_name(name)


@pytest.mark.parametrize("name", ["docker_users", "ollama_host", "cuda_version", "login_shell"])
def test_other_names_are_not_secret(name):
    assert not secrets.is_secret_name(name)


def test_public_leaves_out_secrets_at_any_depth_and_keeps_the_rest():
    value = {
        "docker_users": ["alice"], "ansible_become_password": "s3cret",
        "ollama_environment": {"OLLAMA_API_TOKEN": "t0ken", "OLLAMA_DEBUG": "1"},
        "mirrors": [{"url": "http://m", "password": "p"}, "plain"],
        7: "a key that is not a string",
    }
    assert secrets.public(value) == {
        "docker_users": ["alice"], "ollama_environment": {"OLLAMA_DEBUG": "1"},
        "mirrors": [{"url": "http://m"}, "plain"], 7: "a key that is not a string",
    }
    assert secrets.public("s3cret") == "s3cret"  # a value is never judged, only its name


def test_the_converged_digest_and_verify_use_this_one_filter():
    assert converged.is_secret_name is secrets.is_secret_name
    assert run.public is secrets.public and memo.public is secrets.public
