"""What a command needs from whoever runs it: the CLI answers with prompts and a live
progress display, a test or a script with plain values."""

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass


def _yes(_question: str) -> bool:
    return True


def _no_password() -> str | None:
    return None


def _say(_message: str) -> None:
    return None


def _no_progress(_title: str, _hosts: list[str]) -> AbstractContextManager:
    return nullcontext(None)


@dataclass
class Interaction:
    #: Asked once validation has passed, before any host is changed; False stops the command.
    confirm: Callable[[str], bool] = _yes
    #: The become (sudo) password, asked after the confirmation; None when not needed.
    become_password: Callable[[], str | None] = _no_password
    #: One line for the user (the CLI prints it on stderr).
    say: Callable[[str], None] = _say
    #: A context manager around each Ansible run; what it yields has ``update(result, host)``
    #: (or is None).
    progress: Callable[[str, list[str]], AbstractContextManager] = _no_progress


def terminal(yes: bool, refusal: str, hint: str, ask: Callable[[str], bool],
             prompt_password: Callable[[], str] | None, say: Callable[[str], None],
             early: bool = True) -> Interaction:
    """The interaction of a command that changes something, run from a terminal (``ask``
    puts a yes/no question to the user). Without ``yes`` and with no terminal to ask, the
    command is refused; ``early``: at once, before it contacts any host."""
    import sys

    from provision.errors import UsageError

    def refuse_without_terminal():
        if not yes and not sys.stdin.isatty():
            raise UsageError(f"{refusal} and needs confirmation, but there is no terminal", hint=hint)

    def confirm(question: str) -> bool:
        refuse_without_terminal()
        return yes or ask(question)

    if early:
        refuse_without_terminal()
    return Interaction(confirm=confirm, say=say, progress=_live_progress,
                       become_password=prompt_password or _no_password)


def _live_progress(title: str, hosts: list[str]) -> AbstractContextManager:
    # Loaded when Ansible runs: a converged re-run never shows progress.
    from provision.progress import Progress

    return Progress(title, hosts)


def trust_host_key(where: str, accept: bool, *, say: Callable[[str], None],
                   ask: Callable[[], bool]) -> Callable:
    """``host add``'s answer to "trust this host key?": the fingerprint is shown, then ``accept``
    (--accept-host-key) or the user's answer decides; with no terminal to ask, it is refused."""
    import sys

    from provision.errors import UsageError

    def trust(key) -> bool:
        say(f"{where} presents {key.key_type} key {key.fingerprint}")
        if not accept and not sys.stdin.isatty():
            raise UsageError("cannot ask whether to trust the host key: no terminal",
                             hint="check the fingerprint above on the host's console, then re-run "
                             "with --accept-host-key")
        return accept or ask()

    return trust
