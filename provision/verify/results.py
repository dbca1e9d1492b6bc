"""What ``rigforge verify`` found: a result per check, and the whole verify's."""

from dataclasses import dataclass, field


@dataclass
class CheckResult:
    host: str
    component: str
    check: str
    outcome: str  # passed | failed | skipped | error
    message: str = ""
    tier: str = "install"  # provision/verify/tiers.py
    #: The command or step that repairs a failure, where the check knows it.
    fix: str = ""
    nodeid: str = field(default="", repr=False)  # pytest's; kept with reused results
    #: What passes today and needs the owner soon (a RigforgeWarning the check raised).
    warning: str = ""

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()
                if k != "nodeid" and (k not in ("warning", "fix") or v)}


@dataclass
class VerifyResult:
    checks: list[CheckResult] = field(default_factory=list)
    junit_xml: str = ""
    pytest_rc: int = 0
    output: str = ""
    #: Hosts whose results were reused (see provision/verify/memo.py): when they were computed.
    reused: dict[str, str] = field(default_factory=dict)
    #: Per host, what passes today and needs the user soon (a driver branch past its end of life),
    #: as the checks warned.
    warnings: dict[str, list[str]] = field(default_factory=dict)

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.outcome in ("failed", "error")]

    @property
    def succeeded(self) -> bool:
        return self.pytest_rc in (0, 5) and not self.failed and bool(self.checks)

    def summary(self) -> dict[str, dict[str, dict[str, int]]]:
        """Per host and tier, how many checks ended how: ``{"rig1": {"health": {"skipped": 5}}}``."""
        found: dict[str, dict[str, dict[str, int]]] = {}
        for c in self.checks:
            counts = found.setdefault(c.host or "", {}).setdefault(c.tier, {})
            counts[c.outcome] = counts.get(c.outcome, 0) + 1
        return found

    def to_dict(self) -> dict:
        return {
            "status": "passed" if self.succeeded else "failed",
            "summary": self.summary(),
            "checks": [c.to_dict() for c in self.checks],
            "reused_results": dict(self.reused),
            "warnings": {host: list(found) for host, found in sorted(self.warnings.items())},
        }
