"""Where the workflow written by `rigforge init --ci github` installs rigforge from.

rigforge is on no package index, so the workspace carries its source (``--rigforge-source``):

    wheel            (default) a wheel of the running rigforge, written to
                     ci/rigforge-<version>-py3-none-any.whl (provision/selfwheel.py)
    git+URL@COMMIT   that commit of a rigforge repository; a full 40-hex commit, because a
                     branch or a tag can move and CI would install something else than you chose

The workflow's install step names the source, and ci/rigforge-source records it, so that
`rigforge init --force --ci github` keeps it (and rebuilds the wheel of a ``wheel`` source).
"""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from provision import __version__, fsutil, selfwheel
from provision.errors import UsageError

WHEEL = "wheel"
RECORD = "ci/rigforge-source"
#: git+URL@COMMIT; the URL has no character that would need quoting in the workflow's shell line.
_GIT = re.compile(r"git\+(?:https?|ssh|git|file)://[^\s\"'`$\\#;&|<>()*?!{}]+@(?P<commit>[^@/]*)")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_FIX = ("pass --rigforge-source wheel (the default: a wheel of this rigforge, kept in the workspace) "
        "or git+URL@COMMIT with the full commit, e.g. "
        "git+https://HOST/PATH/rigforge.git@$(git rev-parse HEAD) run in the rigforge checkout")


@dataclass(frozen=True)
class Source:
    spec: str  # "wheel" or "git+URL@COMMIT"
    wheel: bytes | None = None  # a wheel source's bytes, built before anything is written

    @property
    def wheel_path(self) -> str | None:
        return f"ci/{selfwheel.filename()}" if self.spec == WHEEL else None

    @property
    def install_command(self) -> str:
        """The workflow's install step, run in the workspace root."""
        if self.wheel_path:
            return f"python -m pip install ./{self.wheel_path}"
        return f'python -m pip install "rigforge @ {self.spec}"'

    @property
    def described(self) -> str:
        if self.wheel_path:
            return f"{self.wheel_path} (a wheel of the rigforge {__version__} that wrote this file)"
        return f"{self.spec} (that commit)"

    def files(self) -> list[str]:
        """The workspace files init writes for this source."""
        return [RECORD, *([self.wheel_path] if self.wheel_path else [])]


def check(spec: str, where: str = "--rigforge-source") -> str:
    """``spec`` when the workflow can install rigforge from it; a UsageError naming the fix otherwise."""
    if spec == WHEEL:
        return spec
    match = _GIT.fullmatch(spec)
    if match is None:
        raise UsageError(f"{where}: {spec!r} is neither `wheel` nor `git+URL@COMMIT`", hint=_FIX)
    if not _COMMIT.fullmatch(match["commit"]):
        raise UsageError(
            f"{where}: {spec!r} ends in {match['commit']!r}, not a full commit (40 lowercase hex "
            "digits); a branch or a tag can move, and CI would install another rigforge",
            hint=_FIX,
        )
    return spec


def recorded(root: Path) -> str | None:
    """The source ci/rigforge-source records (its first line that is not a comment), if any."""
    path = root / RECORD
    if not path.is_file():
        return None
    lines = [line.strip() for line in path.read_text().splitlines()]
    return next((line for line in lines if line and not line.startswith("#")), None)


def prepare(root: Path, spec: str | None) -> Source:
    """The source to write: ``spec``, else the recorded one, else ``wheel``. Writes nothing."""
    spec = check(spec) if spec is not None else check(recorded(root) or WHEEL, str(root / RECORD))
    return Source(spec, selfwheel.build() if spec == WHEEL else None)


def _record_text(source: Source) -> str:
    lines = [
        "# Where .github/workflows/rigforge.yml installs rigforge from (`rigforge init --ci github`).",
        "# `init --force --ci github` keeps it (rebuilding the wheel); --rigforge-source changes it.",
    ]
    if source.wheel is not None:
        lines.append(f"# {source.wheel_path} sha256 {hashlib.sha256(source.wheel).hexdigest()}")
    return "\n".join([*lines, source.spec]) + "\n"


def write(root: Path, source: Source) -> list[str]:
    """Write the wheel (a wheel source) and the record; remove rigforge wheels of other versions."""
    for stale in (root / "ci").glob(f"{selfwheel.NAME}-*-{selfwheel.TAG}.whl"):
        if f"ci/{stale.name}" != source.wheel_path:
            stale.unlink()
    if source.wheel is not None:
        fsutil.write_bytes(root / source.wheel_path, source.wheel)
    fsutil.write_text(root / RECORD, _record_text(source))
    return list(reversed(source.files()))


#: The images the workflow proves the stack on (short names: Podman's shipped aliases resolve them).
IMAGES = ("ubuntu:22.04", "ubuntu:24.04", "ubuntu:26.04", "debian:12", "debian:13")


def workflow_context(source: Source) -> dict:
    """What the workflow template needs besides the workspace's context."""
    return {
        "images": [(image, image.replace(":", "-")) for image in IMAGES],
        "rigforge_install": source.install_command,
        "rigforge_source": source.described,
    }
