"""testinfra checks, one module per component (``test_<component>.py``).

They run under ``rigforge verify`` and under plain pytest, from a workspace directory::

    pytest --pyargs provision.checks --ssh-config=.rigforge/ssh_config \\
        --hosts='ssh://rig1?sudo=true'

Each check knows what the host should look like from the workspace's variables
(the ``rig`` fixture) and skips, with the reason, what does not apply.
"""
