"""provision/gpu/mokutil.py: Secure Boot and signing keys (recorded outputs: test_recorded_outputs.py;
the probe's and the resolver's use of them: tests/unit/test_secure_boot.py)."""

from provision.gpu.mokutil import (
    MOK_KEY_STATES,
    MokKey,
    SecureBoot,
    parse_mokutil_sb_state,
    parse_mokutil_test_key,
)


def test_secure_boot_enforces_unless_shim_skips_validation():
    assert SecureBoot("enabled").enforcing
    assert not SecureBoot("enabled", validation_disabled=True).enforcing
    assert not SecureBoot("disabled").enforcing


def test_a_missing_mokutil_is_unknown_not_disabled():
    assert parse_mokutil_sb_state("", "bash: mokutil: command not found", 127) == SecureBoot("unknown")
    assert parse_mokutil_test_key("", "", 127) == MokKey("unknown")


def test_test_key_names_the_key_and_where_it_is_trusted():
    found = parse_mokutil_test_key("/var/lib/dkms/mok.pub is already in db\n")
    assert (found.state, found.key, found.where) == ("enrolled", "/var/lib/dkms/mok.pub", "db")
    assert found.enrolled
    assert found.state in MOK_KEY_STATES
