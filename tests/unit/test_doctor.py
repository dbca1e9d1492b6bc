"""provision/doctor.py: a diagnosis and a fix for each failed check."""

import ast

from provision import assets, doctor
from provision.verify import CheckResult, VerifyResult


def test_a_checks_own_fix_comes_first_and_leaves_the_message():
    check = CheckResult("rig1", "nvidia_driver", "test_no_xid_event_since_boot", "failed",
                        "Xid 79 on PCI:0000:a1:00: GPU has fallen off the bus (bus). Fix: Reboot the host",
                        tier="health", fix="Reboot the host")
    (found,) = doctor.diagnose(VerifyResult(checks=[check], pytest_rc=1))
    assert found.diagnosis == "Xid 79 on PCI:0000:a1:00: GPU has fallen off the bus (bus)"
    assert found.fix == "Reboot the host" and found.tier == "health"


def test_known_install_checks_get_their_fix_and_the_others_the_component_again():
    loaded = CheckResult("rig1", "nvidia_driver", "test_loaded_module_matches_the_package", "failed",
                         "loaded module 535.1 != installed package 535.2: reboot the host")
    held = CheckResult("rig1", "nvidia_driver", "test_driver_packages_are_held", "error", "")
    found = doctor.diagnose(VerifyResult(checks=[loaded, held], pytest_rc=1))
    assert found[0].fix == doctor.REBOOT
    assert found[1].fix.startswith("`rigforge provision --limit rig1 --components nvidia_driver`")
    assert found[1].diagnosis == "error"


def test_every_fix_in_the_table_belongs_to_a_real_check():
    names = {node.name for path in assets.checks_dir().glob("test_*.py")
             for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.FunctionDef)}
    assert set(doctor.FIXES) <= names


def test_the_json_lists_diagnoses_warnings_and_skipped_reasons():
    result = VerifyResult(checks=[
        CheckResult("rig1", "ollama", "test_x", "skipped", "no NVIDIA GPU on this host", tier="workload"),
    ], warnings={"rig1": ["Driver branch 535 reached its end of life"]})
    data = doctor.to_dict(result, doctor.diagnose(result))
    assert data["status"] == "healthy" and data["diagnoses"] == []
    assert data["skipped"] == {"rig1": [{"tier": "workload", "check": "test_x",
                                         "reason": "no NVIDIA GPU on this host"}]}
    assert data["warnings"] == {"rig1": ["Driver branch 535 reached its end of life"]}
