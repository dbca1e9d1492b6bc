"""testinfra checks, one module per component (``test_<component>.py``).

They run under ``rigforge verify`` and under plain pytest, from a workspace directory::

    pytest --pyargs provision.checks --ssh-config=.rigforge/ssh_config \\
        --hosts='ssh://rig1?sudo=true'

Each check knows what the host should look like from the workspace's variables
(the ``rig`` fixture) and skips, with the reason, what does not apply.
"""


class RigforgeWarning(UserWarning):
    """Something a check found that works today and needs the owner soon (a driver branch past
    its end of life). The check passes; ``rigforge verify`` reports the warning with the host."""
