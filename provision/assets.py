"""Where the shipped roles, playbooks and templates are.

From a source checkout (or an editable install) they sit at the top of the repository;
from a wheel they are carried inside the package as ``provision/_data``.
"""

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def data_root() -> Path:
    bundled = _PACKAGE / "_data"
    if (bundled / "roles").is_dir():
        return bundled
    return _PACKAGE.parent


def roles_dir() -> Path:
    return data_root() / "roles"


def playbooks_dir() -> Path:
    return data_root() / "playbooks"


def templates_dir() -> Path:
    return data_root() / "templates"


def checks_dir() -> Path:
    return _PACKAGE / "checks"
