"""``rigforge doctor`` (provision/commands/doctor.py): verify's checks, then their diagnoses."""

from provision.commands import doctor
from provision.verify import CheckResult, VerifyResult


def test_doctor_runs_every_tier_for_the_host_and_diagnoses_the_failures(workspace, monkeypatch):
    from provision.commands import verify

    asked = {}

    def fake_verify(ws, limit, components, full, output=None, fmt="table", tier=None):
        asked.update(limit=limit, components=components, tier=tier, full=full)
        return VerifyResult(checks=[
            CheckResult("rig1", "nvidia_driver", "test_pcie_links_run_at_full_width", "failed",
                        "GPU 0 runs at x4 of x16. Fix: reseat it", tier="health", fix="reseat it"),
            CheckResult("rig1", "base", "test_os_is_supported", "passed"),
        ], pytest_rc=1)

    monkeypatch.setattr(verify, "verify", fake_verify)
    result, found = doctor.doctor(workspace, "rig1")
    assert asked == {"limit": "rig1", "components": None, "tier": None, "full": False}
    assert [(d.check, d.diagnosis, d.fix) for d in found] == [
        ("test_pcie_links_run_at_full_width", "GPU 0 runs at x4 of x16", "reseat it")]
    assert not result.succeeded
