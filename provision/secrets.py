"""Which variables hold secrets, and a host's variables without them.

A variable whose name says it holds a password, key, token or other secret never reaches a
digest (the converged check's desired state, verify's kept results) nor a file rigforge
writes for the checks (verify's variables), at any depth.
"""

import re

_SECRET_NAME = re.compile(r"pass|secret|token|credential|private_key", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    """Whether a variable's name says it holds a password, key, token or other secret."""
    return bool(_SECRET_NAME.search(name)) or name in ("ansible_become_pass", "ansible_ssh_pass")


def public(value):
    """``value`` without the entries whose names say they hold secrets, at any depth."""
    if isinstance(value, dict):
        return {k: public(v) for k, v in value.items() if not is_secret_name(str(k))}
    if isinstance(value, list):
        return [public(v) for v in value]
    return value
