import pytest

from provision.commands import interaction
from provision.errors import UsageError


def _terminal(monkeypatch, tty: bool):
    monkeypatch.setattr("sys.stdin.isatty", lambda: tty)


def test_without_yes_and_without_a_terminal_the_command_is_refused_at_once(monkeypatch):
    _terminal(monkeypatch, False)
    refusal = "provision changes hosts and needs confirmation, but there is no terminal"
    with pytest.raises(UsageError, match=refusal):
        interaction.terminal(False, "provision changes hosts", "pass --yes", ask=lambda q: True,
                             prompt_password=None, say=print)


def test_a_late_refusal_waits_for_the_question(monkeypatch):
    _terminal(monkeypatch, False)
    ui = interaction.terminal(False, "pins update writes a file", "pass --yes", ask=lambda q: True,
                              prompt_password=None, say=print, early=False)
    with pytest.raises(UsageError, match="no terminal"):
        ui.confirm("Write?")


def test_yes_confirms_without_asking_and_a_terminal_asks(monkeypatch):
    asked = []
    _terminal(monkeypatch, False)
    ui = interaction.terminal(True, "x", "y", ask=asked.append, prompt_password=None, say=print)
    assert ui.confirm("Go?") is True and asked == []
    _terminal(monkeypatch, True)
    ui = interaction.terminal(False, "x", "y", ask=lambda q: asked.append(q) or False, prompt_password=None,
                              say=print)
    assert ui.confirm("Go?") is False and asked == ["Go?"]


def test_the_password_is_asked_only_when_wanted():
    assert interaction.Interaction().become_password() is None
    ui = interaction.terminal(True, "x", "y", ask=lambda q: True, prompt_password=lambda: "s3cret", say=print)
    assert ui.become_password() == "s3cret"


def test_a_host_key_is_shown_then_trusted_only_when_accepted_or_confirmed(monkeypatch):
    class Key:
        key_type, fingerprint = "ssh-ed25519", "SHA256:abc"

    said = []
    _terminal(monkeypatch, False)
    trust = interaction.trust_host_key("10.0.0.5:22", False, say=said.append, ask=lambda: True)
    with pytest.raises(UsageError, match="--accept-host-key"):
        trust(Key())
    assert said == ["10.0.0.5:22 presents ssh-ed25519 key SHA256:abc"]
    assert interaction.trust_host_key("h:22", True, say=said.append, ask=lambda: False)(Key()) is True
    _terminal(monkeypatch, True)
    assert interaction.trust_host_key("h:22", False, say=said.append, ask=lambda: False)(Key()) is False
