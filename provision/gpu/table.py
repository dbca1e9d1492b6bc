"""The facts of the NVIDIA stack, read from the one table the roles read too.

The table is ``roles/gpu_stack/vars/main.yml`` (shipped with the roles): driver branches with
their end of life, GPU generations, CUDA minimum drivers, cuDNN builds, operating systems,
package names per source and branch, hold patterns, what each Xid event means. Every row
carries its source and the date it was checked; this module only reads it.

>>> table().branch("580").eol
'2028-06'
>>> table().cuda_min_driver("12.8")
'570.26'
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from provision import assets

RELATIVE_PATH = Path("gpu_stack") / "vars" / "main.yml"


def table_path() -> Path:
    return assets.roles_dir() / RELATIVE_PATH


@dataclass(frozen=True)
class Branch:
    branch: str
    kind: str
    eol: str  # "YYYY-MM", "" while supported

    @property
    def number(self) -> int:
        return int(self.branch)

    def eol_passed(self, today: str) -> bool:
        """Whether support ended before ``today`` ("YYYY-MM-DD")."""
        return bool(self.eol) and self.eol < today[:7]


@dataclass(frozen=True)
class Generation:
    name: str
    open: bool
    open_only: bool = False
    first_branch: str = ""
    last_branch: str = ""
    first_cuda: str = ""
    last_cuda_major: int | None = None


@dataclass(frozen=True)
class Cudnn:
    release: str
    cuda_majors: tuple[int, ...]
    min_compute: tuple[int, int]
    newest: str = ""
    package: str = "cudnn<cudnn>-cuda-<cuda>"
    installable: bool = True


@dataclass(frozen=True)
class XidInfo:
    """A row of ``xid_events``: NVIDIA's name, meaning and resolution buckets for an Xid, rigforge's
    category and fix, the row's source, and a note where NVIDIA did not confirm something."""

    xid: int
    name: str
    meaning: str
    category: str
    immediate: str
    investigatory: str
    fix: str
    source: str
    note: str = ""


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


class Table:
    """Typed access to the table's rows (``raw`` is the file's ``gpu_stack_facts`` mapping)."""

    def __init__(self, raw: dict):
        self.raw = raw
        self.checked: str = raw["checked"]
        self.branches = tuple(
            Branch(str(row["branch"]), row["kind"], str(row.get("eol") or "")) for row in raw["branches"]
        )
        self.generations = {
            row["name"]: Generation(
                row["name"],
                bool(row["open"]),
                bool(row.get("open_only", False)),
                str(row.get("first_branch", "")),
                str(row.get("last_branch", "")),
                str(row.get("first_cuda", "")),
                row.get("last_cuda_major"),
            )
            for row in raw["generations"]
        }
        self.cuda_rows = {str(row["version"]): row for row in raw["cuda"]}
        self.cudnn = tuple(
            Cudnn(
                str(row["release"]),
                tuple(row["cuda_majors"]),
                tuple(int(p) for p in str(row["min_compute"]).split(".")),  # type: ignore[arg-type]
                str(row.get("newest", "")),
                str(row.get("package", "cudnn<cudnn>-cuda-<cuda>")),
                bool(row.get("installable", True)),
            )
            for row in raw["cudnn"]
        )
        self.os_rows = {row["key"]: row for row in raw["os"]}
        self.default_branch: str = str(raw["default_branch"])
        self.default_cuda: str = str(raw["default_cuda"])
        self.default_cudnn: str = str(raw["default_cudnn"])
        self.xid_events = {
            int(row["xid"]): XidInfo(
                int(row["xid"]), row["name"], row["meaning"], row["category"], row["immediate"],
                row["investigatory"], row["fix"], row["source"], row.get("note", ""),
            )
            for row in raw.get("xid_events", ())
        }

    # branches
    def branch(self, branch: str) -> Branch | None:
        return next((b for b in self.branches if b.branch == str(branch)), None)

    def supported_long_term(self) -> list[str]:
        return [b.branch for b in self.branches if b.kind == "long-term" and not b.eol_passed(self.checked)]

    # cuda
    @property
    def cuda_releases(self) -> tuple[str, ...]:
        return tuple(self.cuda_rows)

    def cuda_min_driver(self, cuda: str) -> str | None:
        row = self.cuda_rows.get(cuda)
        return str(row["min_driver"]) if row else None

    def cuda_min_branch(self, cuda: str) -> int | None:
        driver = self.cuda_min_driver(cuda)
        return int(driver.split(".")[0]) if driver else None

    # Xid events
    def xid_event(self, xid: int) -> XidInfo | None:
        """What an Xid number means and its usual fix, e.g. ``table().xid_event(79).category``."""
        return self.xid_events.get(int(xid))

    # operating systems
    def os_row(self, key: str | None) -> dict | None:
        return self.os_rows.get(key) if key else None

    # driver packages
    def driver_rule(self, source: str, os_id: str, branch: str) -> dict | None:
        """The driver_packages rule for a source on an OS family and branch."""
        number = int(branch)
        for rule in self.raw["driver_packages"]:
            if rule["source"] == source and os_id in rule["os"] and rule["from"] <= number <= rule["to"]:
                return rule
        return None

    def packages_of_driver(self, os_id: str) -> dict:
        return self.raw["packages_of_driver"][os_id]

    def hold_globs(self, os_id: str) -> list[str]:
        """The OS's hold patterns as shell globs, for dpkg-query and apt preferences:
        ``^(lib)?nvidia-`` is ``nvidia-*`` and ``libnvidia-*``, ``^libcuda1`` is ``libcuda1*``.
        Every pattern is an anchored name prefix (a test holds the table to that)."""
        globs = []
        for pattern in self.packages_of_driver(os_id)["hold"]:
            name = pattern.removeprefix("^")
            globs += ["nvidia-*", "libnvidia-*"] if name == "(lib)?nvidia-" else [name + "*"]
        return list(dict.fromkeys(globs))


@cache
def table() -> Table:
    """The shipped table, parsed once per process."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(table_path(), encoding="utf-8") as handle:
        return Table(yaml.load(handle, Loader=loader)["gpu_stack_facts"])


def fill(template: str, **values: str) -> str:
    """A package-name template of the table with its placeholders filled.

    >>> fill("nvidia-driver-<b><set><open>", b="580", set="-server", open="-open")
    'nvidia-driver-580-server-open'
    """
    for name, value in values.items():
        template = template.replace(f"<{name}>", value)
    return template
