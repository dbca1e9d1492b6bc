"""testinfra checks, one module per component and tier (``test_<component>[_<tier>].py``,
provision/verify/tiers.py).

They run under ``rigforge verify`` and under plain pytest, from a workspace directory::

    pytest --pyargs provision.checks --ssh-config=.rigforge/ssh_config \\
        --hosts='ssh://rig1?sudo=true'

Each check knows what the host should look like from the workspace's variables
(the ``rig`` fixture) and skips, with the reason, what does not apply.
"""


class RigforgeWarning(UserWarning):
    """Something a check found that works today and needs the owner soon (a driver branch past
    its end of life). The check passes; ``rigforge verify`` reports the warning with the host."""


class Finding(AssertionError):
    """A failed check that knows the fix: ``rigforge verify`` reports both, ``rigforge doctor``
    offers the fix."""

    def __init__(self, cause: str, fix: str = ""):
        super().__init__(f"{cause}. Fix: {fix}" if fix else cause)
        self.cause, self.fix = cause, fix


def fail(cause: str, fix: str = "") -> None:
    """Fail the running check with ``cause`` (what is wrong and why, one line) and ``fix`` (the
    command or step that repairs it)."""
    raise Finding(cause, fix)


def fail_on(problems: list) -> None:
    """Fail the running check with every problem found (``Problem``\\s of provision/gpu/health.py
    and workload.py: the causes joined, each fix once); do nothing when there is none."""
    from provision.gpu.health import summary

    if problems:
        fail(*summary(problems))
