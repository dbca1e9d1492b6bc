"""Digests of the files that results depend on: a result kept under a digest holds while it
is unchanged.

:func:`workspace_fingerprint` covers the workspace's files that shape a run (the converged
check's record, verify's kept variables); :func:`code_fingerprint` covers rigforge's own code
and what the checks run on (verify's kept results). Both feed every file's name and bytes
to one SHA-256 through :func:`hash_tree`.
"""

import hashlib
import sys
from functools import lru_cache
from pathlib import Path

from provision import __version__
from provision.workspace import Workspace

_PACKAGE = Path(__file__).resolve().parent
#: The installed distributions whose code the checks run besides rigforge's own.
_RUNNERS = ("pytest", "pytest_testinfra", "pluggy", "pyyaml")
#: What a workspace's runs are made of (the rest of it is rigforge's state or the user's).
WORKSPACE_FILES = ("ansible.cfg", "site.yml", "inventory", "roles", "playbooks")


def hash_tree(digest, root: Path, rel: Path, suffix: str = "") -> None:
    """Feed ``digest`` the name (relative to ``root``) and bytes of the file ``root/rel``, or
    of every file under that directory in order (compiled Python left out; only names
    ending in ``suffix`` when given). A missing path adds nothing."""
    path = root / rel
    if path.is_file():
        digest.update(f"{rel}\0".encode())
        digest.update(path.read_bytes())
        return
    if not path.is_dir():
        return
    for child in sorted(path.rglob("*")):
        if (child.is_file() and "__pycache__" not in child.parts and child.suffix != ".pyc"
                and child.name.endswith(suffix)):
            digest.update(f"{child.relative_to(root)}\0".encode())
            digest.update(child.read_bytes())


def workspace_fingerprint(workspace: Workspace) -> str:
    """A digest of every workspace file that shapes what a run does, and rigforge's version."""
    digest = hashlib.sha256(f"rigforge {__version__}\0".encode())
    for rel in WORKSPACE_FILES:
        hash_tree(digest, workspace.root, Path(rel))
    return digest.hexdigest()


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Every source file of rigforge (checks, plugin and what they import), the facts table
    the checks read, and the versions of Python, pytest and testinfra, read without
    importing either."""
    import importlib.util

    h = hashlib.sha256(sys.version.encode())
    hash_tree(h, _PACKAGE, Path("."), suffix=".py")
    # The facts table the checks read (package names, hold patterns, supported OSes).
    from provision.gpu.table import table_path

    h.update(table_path().read_bytes())
    spec = importlib.util.find_spec("testinfra")
    if spec and spec.origin:
        site = Path(spec.origin).parents[1]
        names = sorted(n for n in _listdir(site)
                       if n.endswith(".dist-info") and n.lower().startswith(_RUNNERS))
        h.update("\0".join(names).encode())
    return h.hexdigest()


def _listdir(path: Path) -> list[str]:
    try:
        return [p.name for p in path.iterdir()]
    except OSError:
        return []
