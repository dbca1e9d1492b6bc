"""``rigforge doctor``: each failed check of a verify as a diagnosis and the step that fixes it.

A check that knows its fix says so (provision/checks ``fail(cause, fix)``, the health and
workload tiers); for the install tier's checks the fix is the table below, else re-applying the
check's component. Nothing here runs a fix: doctor prints them, and the user runs them.
"""

from dataclasses import dataclass

from provision.verify.results import CheckResult, VerifyResult

REBOOT = "reboot the host (`sudo reboot`): the driver's libraries were updated under the running module"

#: Install-tier checks whose fix is not "apply the component again" ({host}, {component}).
FIXES = {
    "test_loaded_module_matches_the_package": REBOOT,
    "test_no_reboot_pending": "reboot the host (`sudo reboot`)",
    "test_driver_package_installed_for_the_branch": "`rigforge update-drivers --limit {host}`",
    "test_every_installed_kernel_has_an_nvidia_module": "`rigforge update-drivers --limit {host}` builds the "
    "module for every installed kernel",
    "test_docker_lists_the_nvidia_runtime": "re-run the container toolkit's runtime configuration: "
    "`rigforge provision --limit {host} --components nvidia_container_toolkit`",
    "test_cdi_specification_on_a_gpu_host": "regenerate the CDI specification: "
    "`rigforge provision --limit {host} --components nvidia_container_toolkit`",
    "test_free_disk_space": "free disk space on / (`sudo apt-get clean`, old models, docker images), "
    "then `rigforge verify --limit {host}`",
    "test_dpkg_is_consistent": "`sudo dpkg --configure -a` on the host, then "
    "`rigforge provision --limit {host}`",
    "test_kernel_headers_for_running_kernel": "`rigforge provision --limit {host} --components base`, "
    "or reboot into the newest kernel",
}


@dataclass(frozen=True)
class Diagnosis:
    host: str
    tier: str
    component: str
    check: str
    diagnosis: str
    fix: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def fix_for(check: CheckResult) -> str:
    if check.fix:
        return check.fix
    known = FIXES.get(check.check)
    if known:
        return known.format(host=check.host, component=check.component)
    return (f"`rigforge provision --limit {check.host} --components {check.component}` applies the "
            "component again; then `rigforge doctor`")


def cause_of(check: CheckResult) -> str:
    """The message without the fix the check appended to it (it is in its own column)."""
    if check.fix and check.message.endswith(f". Fix: {check.fix}"):
        return check.message[: -len(f". Fix: {check.fix}")]
    return check.message or check.outcome


def diagnose(result: VerifyResult) -> list[Diagnosis]:
    return [
        Diagnosis(c.host, c.tier, c.component, c.check, cause_of(c), fix_for(c))
        for c in result.failed
    ]


def to_dict(result: VerifyResult, found: list[Diagnosis]) -> dict:
    """doctor's JSON: the diagnoses, the warnings, and per host and tier what was skipped and why."""
    skipped: dict[str, list[dict]] = {}
    for c in result.checks:
        if c.outcome == "skipped":
            skipped.setdefault(c.host, []).append({"tier": c.tier, "check": c.check, "reason": c.message})
    return {
        "status": "healthy" if result.succeeded else "problems",
        "diagnoses": [d.to_dict() for d in found],
        "warnings": {host: list(w) for host, w in sorted(result.warnings.items())},
        "summary": result.summary(),
        "skipped": skipped,
    }
