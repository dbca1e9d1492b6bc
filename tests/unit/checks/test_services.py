from types import SimpleNamespace

import pytest

from provision.checks.services import assert_running_and_enabled


def _host(running, enabled):
    return SimpleNamespace(service=lambda unit: SimpleNamespace(is_running=running, is_enabled=enabled))


def test_a_stopped_or_disabled_service_fails_naming_where_to_look():
    assert_running_and_enabled(_host(True, True), "ollama")
    with pytest.raises(AssertionError, match=r"ollama.service is not running \(journalctl -u ollama\)"):
        assert_running_and_enabled(_host(False, True), "ollama", look="journalctl -u ollama")
    with pytest.raises(AssertionError, match=r"docker\.service is not enabled at boot"):
        assert_running_and_enabled(_host(True, False), "docker")
