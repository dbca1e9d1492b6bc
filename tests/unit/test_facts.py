"""Recorded facts -> the resolver's HostFacts (provision/facts.py)."""

from provision.facts import host_facts
from provision.gpu.model import HostFacts

RECORD = {
    "os": {"id": "ubuntu", "version": "24.04", "codename": "noble"},
    "arch": "x86_64",
    "gpus": [{"slot": "01:00.0", "device_id": "2684", "class": "0300",
              "name": "GeForce RTX 4090", "architecture": "Ada Lovelace"}],
    "driver": {"loaded": "570.133.07", "flavor": "open"},
    "secure_boot": {"state": "enabled", "validation_disabled": False, "enforcing": True},
    "secure_boot_key": {"state": "enrolled", "key": "/var/lib/shim-signed/mok/MOK.der"},
}


def test_never_probed_means_nothing_known():
    for record in (None, {}):
        facts = host_facts(record)
        assert facts == HostFacts(os_id=None, os_version=None, arch=None)
        assert facts.gpus == ()


def test_a_record_gives_every_fact_the_resolver_reads():
    facts = host_facts(RECORD)
    assert (facts.os_id, facts.os_version, facts.arch) == ("ubuntu", "24.04", "x86_64")
    (gpu,) = facts.gpus
    assert (gpu.slot, gpu.device_id, gpu.class_code, gpu.architecture) == (
        "01:00.0", "2684", "0300", "Ada Lovelace")
    assert facts.driver_loaded == "570.133.07"
    assert facts.secure_boot == "enabled" and not facts.secure_boot_validation_disabled
    assert facts.secure_boot_enforcing
    assert facts.secure_boot_key == "enrolled"


def test_missing_parts_of_a_record_are_unknown_not_errors():
    facts = host_facts({"os": {"id": "debian", "version": "12"}, "gpus": None, "driver": None,
                        "secure_boot_key": None})
    assert (facts.os_id, facts.arch, facts.gpus, facts.driver_loaded) == ("debian", None, (), None)
    assert facts.secure_boot is None and facts.secure_boot_key is None
    (gpu,) = host_facts({"gpus": [{}]}).gpus
    assert gpu.class_code == "0300" and gpu.architecture is None


def test_the_checks_read_facts_without_the_probe_command():
    import ast
    from pathlib import Path

    import provision.checks.plugin as plugin

    tree = ast.parse(Path(plugin.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "provision.facts" in imported and "provision.probe" not in imported
