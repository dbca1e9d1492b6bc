from types import SimpleNamespace

from provision import run_output


def test_pins_are_shown_with_their_urls_and_sources():
    pin = SimpleNamespace(component="ollama", version="0.33.3", arch="amd64", old=None, new="b" * 64,
                          artifact_url="https://example.invalid/ollama.tar.zst",
                          sources=["https://example.invalid/sha256sum.txt"])
    lines = []
    run_output.print_pins(lines.append, [pin], as_json=False)
    assert lines == [f"ollama 0.33.3 amd64: (none) -> {'b' * 64}\n  https://example.invalid/ollama.tar.zst"
                     "\n  from https://example.invalid/sha256sum.txt"]


def test_a_booted_sandbox_is_described_with_its_keys_only_when_new():
    key = SimpleNamespace(key_type="ssh-ed25519", fingerprint="SHA256:abc")
    booted = SimpleNamespace(name="rig1", address="10.213.0.2", user="rig", release="Debian 12",
                             keys=[key], registered=True)
    lines = []
    run_output.print_booted(lines.append, booted)
    assert lines == ["sandbox rig1 is up at 10.213.0.2, user rig (sudo), Debian 12",
                     "  recorded host key ssh-ed25519 SHA256:abc"]
    lines.clear()
    run_output.print_booted(lines.append, SimpleNamespace(**{**vars(booted), "registered": False}))
    assert lines == ["sandbox rig1 is up at 10.213.0.2, Debian 12"]


def test_a_run_that_needs_no_ansible_reports_every_host_converged_as_json():
    import json

    decision = SimpleNamespace(run=[], skip=["base"], reasons={}, warnings=["reboot"], warned=None)
    quick = SimpleNamespace(decisions={"rig1": decision},
                            to_dict=lambda: {"rig1": {"ran": [], "skipped": ["base"]}})
    out = []
    run_output.print_all_converged(out.append, quick, as_json=True)
    found = json.loads(out[0])
    assert found["run"]["hosts"][0]["host"] == "rig1" and found["run"]["hosts"][0]["warnings"] == ["reboot"]
    assert found["converged"] == {"rig1": {"ran": [], "skipped": ["base"]}}
