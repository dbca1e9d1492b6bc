"""Errors that carry their exit code, so the CLI can map them in one place.

Exit codes: 0 success, 1 a host or a check failed, 2 bad input or usage.
"""

EXIT_FAILED = 1
EXIT_USAGE = 2


class RigforgeError(Exception):
    """Base class. ``hint`` tells the user how to fix it."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class UsageError(RigforgeError):
    """Bad input: invalid names, unknown components, a corrupt inventory. Nothing was changed."""


class WorkspaceError(UsageError):
    """No workspace, or a workspace that cannot be read."""


class SandboxError(RigforgeError):
    """A sandbox host could not be created, booted or removed."""

    exit_code = EXIT_FAILED


class SandboxSetupError(SandboxError):
    """The machine cannot run sandbox hosts (not root, missing tools). Nothing was changed."""

    exit_code = EXIT_USAGE


class HostFailedError(RigforgeError):
    """A host failed or was unreachable, or a check failed."""

    exit_code = EXIT_FAILED


class DeclinedError(RigforgeError):
    """The user answered no to a confirmation. Nothing was changed."""

    exit_code = EXIT_FAILED
