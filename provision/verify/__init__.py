"""``rigforge verify``: the testinfra checks of each host's components, under plain pytest.

:mod:`~provision.verify.run` runs them (one pytest process per group of hosts) and merges the
results (:mod:`~provision.verify.results`) and their JUnit report
(:mod:`~provision.verify.junit`); :mod:`~provision.verify.spec` says what they run against,
:mod:`~provision.verify.memo` reuses a host's last results while nothing they depend on
changed, and :mod:`~provision.verify.vars` keeps the hosts' variables for the checks.
"""

from provision.verify.results import CheckResult, VerifyResult

__all__ = ["CheckResult", "VerifyResult", "check_modules", "run_checks"]


def __getattr__(name: str):
    # Loaded when used: the results' module alone is what output.py needs on every command.
    if name == "run_checks":
        from provision.verify.run import run_checks

        return run_checks
    if name == "check_modules":
        from provision.verify.spec import check_modules

        return check_modules
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
