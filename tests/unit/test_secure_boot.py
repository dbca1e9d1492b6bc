"""Secure Boot with DKMS modules completes once DKMS's signing key is enrolled.

Three states everywhere: the key never enrolled (or not made yet), enrolled, and shim's
validation disabled. The parser reads ``mokutil --test-key``; ``rigforge probe`` records
it; the resolver (provision/gpu/rules/secure_boot.py) and the role's preflight (roles/nvidia_driver,
vars/guard.yml, templated here by Ansible's own Templar) decide the same way.
"""

import subprocess
from pathlib import Path

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from provision.facts import host_facts
from provision.gpu import mokutil
from provision.gpu.model import HostFacts
from provision.gpu.stack import resolve
from provision.probe import SCRIPT, facts_from_sections, split_sections

ROLE = Path(__file__).resolve().parents[1].parent / "roles" / "nvidia_driver"
LOADER = DataLoader()
DKMS_KEY = "/var/lib/dkms/mok.pub"
UBUNTU_KEY = "/var/lib/shim-signed/mok/MOK.der"


# --- the parser, beyond the recorded cases (tests/unit/data/gpu/mokutil_test_key/) -------------

@pytest.mark.parametrize(("stdout", "stderr", "rc", "state", "where"), [
    # 0.7.2 and older exit 1 for "already ...", builds after 0.7.2 exit 0: the text decides.
    (f"{DKMS_KEY} is already enrolled\n", "", 0, "enrolled", "MokList"),
    (f"{DKMS_KEY} is already enrolled\n", "", 1, "enrolled", "MokList"),
    (f"{DKMS_KEY} is not enrolled\n", "", 0, "not-enrolled", None),
    (f"{DKMS_KEY} is not enrolled\n", "", 1, "not-enrolled", None),
    (f"{DKMS_KEY} is already in db\n", "", 1, "enrolled", "db"),
    ("", f"{DKMS_KEY} is already in the built-in trusted keyring\n", 255, "enrolled", "built-in keyring"),
    (f"{DKMS_KEY} is blocked in dbx\n", "", 1, "blocked", "dbx"),
    (f"{DKMS_KEY} is blocked in MokListXRT\n", "", 1, "blocked", "MokListX"),  # mokutil 0.6.0 (Debian 12)
    (f"{DKMS_KEY} is blocked in MokListX\n", "", 1, "blocked", "MokListX"),  # 0.7.x
    ("", "EFI variables are not supported on this system\n", 1, "unknown", None),
    ("", "sh: 1: mokutil: not found\n", 127, "unknown", None),
    ("", "Not a valid x509 certificate\n", 255, "unknown", None),
    # Only with --ca-check, which rigforge does not pass: the key itself is not enrolled.
    ("", f"CA of {DKMS_KEY} is already enrolled\n", 255, "unknown", None),
])
def test_mokutil_test_key_reads_the_text_not_the_exit_status(stdout, stderr, rc, state, where):
    found = mokutil.parse_mokutil_test_key(stdout, stderr, rc)
    assert (found.state, found.where) == (state, where)
    assert found.enrolled is (state == "enrolled")
    assert found.state in mokutil.MOK_KEY_STATES


# --- the probe ---------------------------------------------------------------------------------

def _probe(mok_key: str | None, os_id: str = "debian", sb: str = "SecureBoot enabled") -> dict:
    sections = {
        "os-release": f'ID={os_id}\nVERSION_ID="{"12" if os_id == "debian" else "24.04"}"',
        "mokutil-out": f"{sb}\n@@rc=0", "mokutil-err": "",
    }
    if mok_key is not None:
        sections["mok-key"] = mok_key
    output = "".join(f"\n@@rigforge:{name}@@\n{body}\n" for name, body in sections.items())
    return facts_from_sections(split_sections(output + "\n@@rigforge:end@@\n"))


@pytest.mark.parametrize(("section", "state"), [
    (f"@@key={DKMS_KEY}\n{DKMS_KEY} is already enrolled\n@@rc=1", "enrolled"),
    (f"@@key={DKMS_KEY}\n{DKMS_KEY} is not enrolled\n@@rc=0", "not-enrolled"),
    (f"@@key={DKMS_KEY}\n{DKMS_KEY} is already in the enrollment request\n@@rc=1", "pending"),
    (f"@@key={DKMS_KEY}\n@@no-key@@", "no-key"),
    (f"@@key={DKMS_KEY}\n@@unreadable@@", "unknown"),
    (f"@@key={DKMS_KEY}\n@@absent@@", "unknown"),
])
def test_probe_records_the_key_state_apart_from_secure_boot(section, state):
    facts = _probe(section)
    assert facts["secure_boot_key"]["state"] == state
    assert facts["secure_boot_key"]["key"] == DKMS_KEY
    # The Secure Boot record keeps its shape.
    assert facts["secure_boot"] == {"state": "enabled", "validation_disabled": False, "enforcing": True}
    assert host_facts(facts).secure_boot_key == state
    if state == "unknown":
        assert facts["secure_boot_key"]["why_unknown"]


def test_a_record_from_before_the_key_test_has_no_key_state():
    facts = _probe(None)
    assert facts["secure_boot_key"] is None
    assert host_facts(facts).secure_boot_key is None
    assert host_facts({"os": {"id": "debian", "version": "12"}}).secure_boot_key is None


def test_the_probe_script_runs_here(tmp_path):
    """The real script on this machine (Debian, no mokutil, no DKMS key): read-only, no sudo."""
    out = subprocess.run(["/bin/sh", "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False)
    facts = facts_from_sections(split_sections(out.stdout))
    key = facts["secure_boot_key"]
    assert key["key"] == (UBUNTU_KEY if (facts["os"] or {}).get("id") == "ubuntu" else DKMS_KEY)
    expected = "no-key" if not Path(key["key"]).exists() else None
    if expected:
        assert key["state"] == expected, key


# --- the resolver ------------------------------------------------------------------------------

def debian(**facts) -> HostFacts:
    return HostFacts("debian", "12", "x86_64", **facts)


def ubuntu(**facts) -> HostFacts:
    return HostFacts("ubuntu", "24.04", "x86_64", **facts)


def _secure_boot(resolution) -> tuple[list[str], list[str]]:
    return ([p.message for p in resolution.problems if "Secure Boot" in p.message],
            [n for n in resolution.notes if "Secure Boot" in n])


@pytest.mark.parametrize("key_state", ["no-key", "not-enrolled", None])
def test_debian_never_enrolled_names_debians_own_steps(key_state):
    problems, _ = _secure_boot(resolve({}, debian(secure_boot="enabled", secure_boot_key=key_state),
                                       ["nvidia_driver"]))
    (message,) = problems
    assert message.startswith("Secure Boot is enforcing on this host and nvidia_driver_source is debian")
    assert f"`sudo mokutil --import {DKMS_KEY}`" in message
    assert "confirm the key in the blue MokManager screen" in message and "cannot be done over SSH" in message
    if key_state == "not-enrolled":
        assert "generate_mok" not in message, "the key exists: no need to make it"
    else:
        # The key exists only after DKMS's first build: how to make it without one.
        assert "`sudo dkms generate_mok`" in message and "-out /var/lib/dkms/mok.pub" in message


@pytest.mark.parametrize("key_state", ["no-key", "not-enrolled"])
def test_ubuntu_never_enrolled_names_update_secureboot_policy(key_state):
    problems, _ = _secure_boot(resolve(
        {"nvidia_driver_source": "cuda-repo"}, ubuntu(secure_boot="enabled", secure_boot_key=key_state),
        ["nvidia_driver"]))
    (message,) = problems
    assert "`sudo update-secureboot-policy --enroll-key`" in message
    assert ("--new-key" in message) is (key_state == "no-key")
    assert "Use nvidia_driver_source: ubuntu (Canonical-signed prebuilt modules via ubuntu-drivers)" \
        in message
    assert UBUNTU_KEY in message and "mokutil --import" not in message


@pytest.mark.parametrize(("facts", "source", "key"), [
    (debian(secure_boot="enabled", secure_boot_key="enrolled"), "debian", DKMS_KEY),
    (ubuntu(secure_boot="enabled", secure_boot_key="enrolled"), "cuda-repo", UBUNTU_KEY),
    (debian(secure_boot="enabled", secure_boot_key="enrolled"), "cuda-repo", DKMS_KEY),
])
def test_an_enrolled_key_lets_dkms_go_ahead(facts, source, key):
    """The old rule refused enforcing Secure Boot with DKMS forever, enrolled key or not."""
    host_vars = {"nvidia_driver_source": source, "nvidia_driver_branch": "580"}
    if source == "debian":
        host_vars = {}
    problems, notes = _secure_boot(resolve(host_vars, facts, ["nvidia_driver"]))
    assert problems == []
    assert notes == [f"Secure Boot is enforcing; DKMS signs the {source} driver's modules with {key}, "
                     "which is enrolled (mokutil --test-key), so the kernel will load them."]


@pytest.mark.parametrize("key_state", ["no-key", "not-enrolled", "enrolled", None])
def test_validation_disabled_in_shim_needs_no_key(key_state):
    facts = debian(secure_boot="enabled", secure_boot_validation_disabled=True, secure_boot_key=key_state)
    assert _secure_boot(resolve({}, facts, ["nvidia_driver"])) == ([], [])


def test_a_pending_enrollment_asks_only_for_the_console():
    problems, _ = _secure_boot(resolve({}, debian(secure_boot="enabled", secure_boot_key="pending"),
                                       ["nvidia_driver"]))
    (message,) = problems
    assert "is imported but not yet confirmed at the console" in message
    assert message.endswith("Reboot with a keyboard and screen attached and confirm the key in the blue "
                            "MokManager screen (this needs the console; it cannot be done over SSH), then "
                            "run again.")


def test_ubuntus_signed_modules_need_no_key():
    facts = ubuntu(secure_boot="enabled", secure_boot_key="no-key")
    assert _secure_boot(resolve({}, facts, ["nvidia_driver"]))[0] == []


def test_probe_recommends_the_dkms_source_once_the_key_is_enrolled():
    from provision.gpu.stack import recommend

    stack, reasons = recommend(debian(secure_boot="enabled", secure_boot_key="enrolled"), ["nvidia_driver"])
    assert stack.nvidia_driver_source == "debian"
    assert not any("do not fit" in r for r in reasons)


# --- the role's preflight (vars/guard.yml) -----------------------------------------------------

def _load(relative: str) -> dict:
    return LOADER.load_from_file(str(ROLE / relative), trusted_as_template=True) or {}


def _template(variables: dict, expression: str):
    return Templar(loader=LOADER, variables=variables).template(trust_as_template(f"{{{{ {expression} }}}}"))


DEBIAN = {"distribution": "Debian", "distribution_version": "12.8", "kernel": "6.1.0-28-amd64"}
NOBLE = {"distribution": "Ubuntu", "distribution_version": "24.04", "kernel": "6.8.0-45-generic"}


def role(fake: dict, sb: str, key_test: str | None, **more) -> dict:
    """The role's variables on a faked host, as Ansible layers them, after resolve.yml."""
    variables = {
        **_load("defaults/main.yml"),
        "inventory_hostname": "rig1", "role_path": str(ROLE), "ansible_check_mode": False,
        "ansible_facts": {**fake, "architecture": "x86_64",
                          "distribution_major_version": fake["distribution_version"].split(".")[0]},
        "__nvidia_driver_mokutil": {"stdout": sb, "stderr": "", "rc": 0},
        **more,
        **_load("../gpu_stack/vars/main.yml"),
        **_load("vars/main.yml"),
        **_load(f"vars/{fake['distribution']}.yml"),
        **_load("vars/guard.yml"),
    }
    # The key test runs only when Secure Boot enforces (else it is skipped: no stdout).
    skipped = {"skipped": True}
    variables["__nvidia_driver_mok_test"] = {"stdout": key_test} if key_test is not None else skipped
    for what in ("source", "branch", "flavor"):
        variables[f"__nvidia_driver_{what}"] = _template(variables, f"__nvidia_driver_resolved_{what}")
    return variables


ENFORCING = "SecureBoot enabled\n"
SHIM_OFF = "SecureBoot enabled\nSecureBoot validation is disabled in shim\n"


def key_said(key: str, answer: str | None, rc: int = 0) -> str:
    """What __nvidia_driver_mok_test_command prints."""
    return f"key: {key}\n" + ("no key\n" if answer is None else f"{key} {answer}\nrc: {rc}\n")


@pytest.mark.parametrize(("key_test", "state", "make_key"), [
    (key_said(DKMS_KEY, None), "no-key", True),
    (key_said(DKMS_KEY, "is not enrolled", 0), "not-enrolled", False),
    (key_said(DKMS_KEY, "is not enrolled", 1), "not-enrolled", False),
])
def test_role_refuses_a_never_enrolled_key_with_debians_steps(key_test, state, make_key):
    v = role(DEBIAN, ENFORCING, key_test)
    assert _template(v, "__nvidia_driver_mok_state") == state
    refusal = _template(v, "__nvidia_driver_secure_boot_dkms_refusal")
    assert refusal.startswith("Secure Boot is enforcing on rig1, and nvidia_driver_source debian builds the "
                              f"kernel module with DKMS, which signs it with {DKMS_KEY}; ")
    # What the integration test of the refusal reads too.
    for part in ("Nothing was changed", "Machine Owner Key (MOK)", f"`sudo mokutil --import {DKMS_KEY}`",
                 "cannot be done over SSH", "nvidia_driver_source: ubuntu", "linux-modules-nvidia"):
        assert part in refusal, part
    assert "Canonical's signed linux-modules-nvidia-* packages" in refusal
    assert ("`sudo dkms generate_mok`" in refusal) is make_key
    assert ("Debian 12's dkms 3.0 makes it only at its first module build" in refusal) is make_key


@pytest.mark.parametrize("rc", [0, 1])
def test_role_goes_ahead_with_an_enrolled_key(rc):
    v = role(DEBIAN, ENFORCING, key_said(DKMS_KEY, "is already enrolled", rc))
    assert _template(v, "__nvidia_driver_mok_state") == "enrolled"
    assert _template(v, "__nvidia_driver_secure_boot_enforcing") is True
    assert _template(v, "__nvidia_driver_secure_boot_dkms_refusal") == ""
    assert _template(v, "__nvidia_driver_secure_boot_report") == (
        f"enforcing; DKMS signs the module with {DKMS_KEY}, which is enrolled: the kernel will load it")


def test_role_goes_ahead_when_shim_does_not_validate():
    v = role(DEBIAN, SHIM_OFF, None)
    assert _template(v, "__nvidia_driver_secure_boot_enforcing") is False
    assert _template(v, "__nvidia_driver_secure_boot_dkms_refusal") == ""
    assert _template(v, "__nvidia_driver_secure_boot_report") == "enabled, validation disabled in shim"


def test_role_reads_a_key_named_in_dkms_framework_conf():
    v = role(DEBIAN, ENFORCING, key_said("/root/mok/signing.der", "is not enrolled"))
    assert _template(v, "__nvidia_driver_mok_key") == "/root/mok/signing.der"
    assert "`sudo mokutil --import /root/mok/signing.der`" in _template(
        v, "__nvidia_driver_secure_boot_dkms_refusal")


def test_role_cuda_repo_on_ubuntu_names_update_secureboot_policy():
    v = role(NOBLE, ENFORCING, key_said(UBUNTU_KEY, "is not enrolled"),
             nvidia_driver_source="cuda-repo", nvidia_driver_branch="580")
    refusal = _template(v, "__nvidia_driver_secure_boot_dkms_refusal")
    assert f"signs it with {UBUNTU_KEY}; that key is not enrolled" in refusal
    assert "run `sudo update-secureboot-policy --enroll-key`" in refusal and "--new-key" not in refusal
    enrolled = role(NOBLE, ENFORCING, key_said(UBUNTU_KEY, "is already enrolled"),
                    nvidia_driver_source="cuda-repo", nvidia_driver_branch="580")
    assert _template(enrolled, "__nvidia_driver_secure_boot_dkms_refusal") == ""


def _ubuntu_without_signed_module(**more) -> dict:
    """Ubuntu 24.04 whose running kernel has no signed module package: DKMS (nvidia-dkms-*)."""
    series = "580-server-open"
    names = {f"{p}-{series}": "580.95.05-0ubuntu0.24.04.2" for p in ("nvidia-driver", "nvidia-dkms")}
    policy = "".join(f"{n}:\n  Installed: (none)\n  Candidate: {c}\n  Version table:\n"
                     for n, c in names.items())
    return {"__nvidia_driver_policy": {"stdout": policy}, **more}


@pytest.mark.parametrize(("answer", "refused"), [
    (None, True), ("is not enrolled", True), ("is already in the enrollment request", True),
    ("is already enrolled", False),
])
def test_role_ubuntu_dkms_fallback_needs_the_enrolled_key(answer, refused):
    v = role(NOBLE, ENFORCING, key_said(UBUNTU_KEY, answer), **_ubuntu_without_signed_module())
    assert _template(v, "__nvidia_driver_uses_dkms") is True
    refusal = _template(v, "__nvidia_driver_secure_boot_ubuntu_refusal")
    assert bool(refusal) is refused
    if answer is None:
        assert "`sudo update-secureboot-policy --new-key`" in refusal
        assert "`sudo update-secureboot-policy --enroll-key`" in refusal
    if answer == "is already in the enrollment request":
        assert "confirm the pending enrollment in the blue MokManager screen" in refusal
    # The DKMS-source refusal is not the one that applies to source ubuntu.
    assert _template(v, "__nvidia_driver_secure_boot_dkms_refusal") == ""


def test_role_ubuntu_signed_modules_are_never_refused():
    signed = "linux-modules-nvidia-580-server-open-6.8.0-45-generic"
    policy = f"{signed}:\n  Installed: (none)\n  Candidate: 6.8.0-45.45+1\n  Version table:\n"
    v = role(NOBLE, ENFORCING, key_said(UBUNTU_KEY, None), __nvidia_driver_policy={"stdout": policy})
    assert _template(v, "__nvidia_driver_uses_dkms") is False
    assert _template(v, "__nvidia_driver_secure_boot_ubuntu_refusal") == ""
    assert _template(v, "__nvidia_driver_secure_boot_dkms_refusal") == ""


def test_role_and_resolver_read_mokutil_alike():
    """Every recorded and derived case: the role's Jinja state equals the Python parser's."""
    data = Path(__file__).parent / "data" / "gpu" / "mokutil_test_key"
    import json

    for case in sorted(data.glob("*.txt")):
        spec = json.loads(case.with_suffix(".json").read_text())
        kwargs = spec.get("kwargs", {})
        text = case.read_text() + kwargs.get("stderr", "")
        v = role(DEBIAN, ENFORCING, f"key: {DKMS_KEY}\n{text}rc: {kwargs.get('rc', 0)}\n")
        assert _template(v, "__nvidia_driver_mok_state") == spec["expected"]["state"], case.name
