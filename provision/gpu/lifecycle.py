"""Driver branches over time: end of life, the branch to advise, the CUDA a branch runs."""

from provision.gpu import table
from provision.gpu.lookup import cuda_min_driver, cuda_releases, version


def newest_cuda_for_branch(branch: int) -> str | None:
    """The newest CUDA release whose full feature set a driver branch supports."""
    fitting = [cuda for cuda in cuda_releases() if (cuda_min_driver(cuda) or 0) <= branch]
    return max(fitting, key=version) if fitting else None


def eol_warning(branch: str, today: str | None = None, installed: bool = False) -> str | None:
    """The warning for a driver branch past its end of life, naming the branch to move to."""
    facts = table.table()
    found = facts.branch(branch)
    today = today or facts.checked
    if found is None or not found.eol_passed(today):
        return None
    targets = [b for b in facts.supported_long_term() if int(b) > found.number] or [facts.default_branch]
    target = facts.branch(targets[0])
    until = f", supported to {target.eol}" if target and target.eol else ""
    what = "The installed driver branch" if installed else "Driver branch"
    return (f"{what} {branch} reached its end of life in {found.eol} (no more security fixes); "
            f"move to {targets[0]}, the long-term branch{until} (`rigforge update-drivers --branch "
            f"{targets[0]}`).")


def eol_warnings(branch: str, loaded: str = "") -> list[str]:
    """The end-of-life warnings for a chosen branch and, when another one is loaded, for that."""
    found = [eol_warning(branch)]
    if loaded and loaded.split(".")[0] != branch:
        found.append(eol_warning(loaded.split(".")[0], installed=True))
    return [w for w in found if w]


def advised_branch(needed: int) -> int:
    """The branch to advise for a floor: the oldest at or above it that is still supported."""
    today = table.table().checked
    for found in sorted(table.table().branches, key=lambda b: b.number):
        if found.number >= needed and not found.eol_passed(today) and found.kind != "new-feature":
            return found.number
    return needed
