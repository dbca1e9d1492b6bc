"""The kernel guard and the Secure Boot key test of role nvidia_driver, on a real sandbox host.

A host of its own gets Debian's real nvidia-driver 535 (sandbox profile: no GPU, no reboot).
The sandbox runs this machine's kernel, which no package installed, so at first there is no
kernel to check. Then a real Debian kernel image is installed with apt, without its headers:
the apt hook must record it as missing a module, `rigforge verify` must fail naming it, and the
role must refuse to reboot into it (or warn, with nvidia_driver_skip_reboot). Installing its
headers makes DKMS build the module (several minutes), after which everything passes.

The tests run in file order and share the host.
"""

import json
import re

import pytest

from tests.integration.conftest import Rig, new_rig, rigforge
from tests.integration.plays import ok as _ok
from tests.integration.plays import player

pytestmark = [pytest.mark.integration, pytest.mark.slow]

COMPONENTS = ["base", "nvidia_driver"]
GUARD = "/usr/local/sbin/rigforge-kernel-guard"
HOOK = "/etc/apt/apt.conf.d/99rigforge-kernel-guard"
STATE = "/var/lib/rigforge/kernel-guard.state"
CHECK = "test_every_installed_kernel_has_an_nvidia_module"


@pytest.fixture(scope="module")
def kg(tmp_path_factory) -> Rig:
    for rig in new_rig(tmp_path_factory, "kg"):
        # The components in the inventory too, so that `rigforge verify` checks the driver.
        host_vars = rig.workspace / "inventory" / "host_vars" / rig.name
        host_vars.mkdir(parents=True, exist_ok=True)
        (host_vars / "kernel_guard_test.yml").write_text(f"rigforge_components: {json.dumps(COMPONENTS)}\n")
        yield rig


def kg_play(rig: Rig, *args: str, **variables):
    return player(rig, COMPONENTS, "kernel_guard")(*args, **variables)


def _check(rig: Rig) -> dict:
    proc = rigforge(rig.workspace, "verify", "--components", "nvidia_driver", "--format", "json", "--full",
                    check=False)
    report = json.loads(proc.stdout)
    (found,) = [c for c in report["checks"] if c["check"] == CHECK]
    return found


def _boot_id(rig: Rig) -> str:
    return rig.ssh("cat /proc/sys/kernel/random/boot_id").stdout.strip()


@pytest.fixture(scope="module")
def kernel(kg) -> str:
    """A real Debian kernel whose image and headers are both in the archive (not the running one)."""
    names = kg.ssh("apt-cache search --names-only '^linux-headers-6\\.1\\.0-[0-9]+-amd64$'").stdout
    versions = sorted(re.findall(r"^linux-headers-(6\.1\.0-\d+)-amd64 ", names, re.M),
                      key=lambda v: int(v.rsplit("-", 1)[1]))
    assert versions, names
    return f"{versions[-1]}-amd64"


def test_guard_is_installed_and_a_second_run_changes_nothing(kg):
    _ok(kg_play(kg, playbook="base.yml")[0])
    out = _ok(kg_play(kg)[0])
    assert kg.ssh(f"stat -c '%a %U' {GUARD} {HOOK}").stdout.split("\n")[:2] == ["755 root", "644 root"]
    assert "DPkg::Post-Invoke" in kg.ssh(f"cat {HOOK}").stdout
    # The sandbox's kernel is this machine's: nothing is installed to check, and it says so.
    assert "SKIPPED: kernel guard: no kernel on" in out and "was installed by the package manager" in out
    proc, changed = kg_play(kg)
    _ok(proc)
    assert changed == 0


def test_verify_skips_with_the_reason_before_any_kernel_is_installed(kg):
    found = _check(kg)
    assert found["outcome"] == "skipped", found
    assert "no kernel on this host was installed by the package manager" in found["message"]
    assert "nvidia-current/535." in found["message"]  # DKMS has the module, ready to build


def test_a_kernel_installed_without_headers_is_recorded_by_the_apt_hook(kg, kernel):
    proc = kg.ssh(f"sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "
                  f"linux-image-{kernel} 2>&1", check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]  # the hook never fails the apt run
    state = kg.ssh(f"sudo -n cat {STATE}").stdout.splitlines()
    assert state[0].startswith("# rigforge-kernel-guard, ")
    assert state[1:] == [f"{kernel} missing older no headers: install linux-headers-{kernel}, then run: "
                         f"dkms autoinstall -k {kernel}"]
    journal = kg.ssh("sudo -n journalctl -t rigforge-kernel-guard --no-pager -o cat").stdout
    assert f"kernel {kernel} (older) has no NVIDIA module: no headers" in journal


def test_verify_fails_naming_the_kernel_without_a_module(kg, kernel):
    found = _check(kg)
    assert found["outcome"] == "failed", found
    assert f"installed kernels without an NVIDIA module (they would boot without a driver): {kernel}." \
        in found["message"]


def test_with_skip_reboot_the_role_warns(kg, kernel):
    out = _ok(kg_play(kg)[0])
    assert (f"WARNING: kernel {kernel}, which {kg.name} boots by default (the newest installed kernel), "
            "has no NVIDIA module") in out


def test_a_reboot_into_the_kernel_without_a_module_is_refused(kg, kernel):
    # A driver change makes the role reboot: take nvidia-smi away so that the run puts it back.
    kg.ssh("sudo -n apt-mark unhold nvidia-smi && sudo -n env DEBIAN_FRONTEND=noninteractive "
           "apt-get remove -y nvidia-smi")
    before = _boot_id(kg)
    proc, _ = kg_play(kg, nvidia_driver_skip_reboot=False)
    out = " ".join(proc.stdout.split())
    assert proc.returncode != 0, out[-3000:]
    assert f"Refusing to reboot {kg.name}: kernel {kernel}, which {kg.name} boots by default" in out
    assert f"Fix: install linux-headers-{kernel}, then run `sudo dkms autoinstall -k {kernel}`" in out
    assert _boot_id(kg) == before
    # The install went on (installed, and held again) before the refusal.
    assert kg.ssh("dpkg-query -W -f='${db:Status-Abbrev}' nvidia-smi").stdout.startswith("hi")


def test_secure_boot_without_an_enrolled_key_is_refused_and_an_enrolled_one_goes_ahead(kg):
    enforcing = "printf 'SecureBoot enabled\\n'"
    proc, _ = kg_play(kg, "--check", __nvidia_driver_mokutil_command=enforcing)
    out = " ".join(proc.stdout.split())
    assert proc.returncode != 0, out[-3000:]
    # The real key test on the host: no mokutil here, so nobody can say the key is enrolled.
    assert "Secure Boot is enforcing" in out and "Nothing was changed" in out
    assert "sudo mokutil --import /var/lib/dkms/mok.pub" in out and "cannot be done over SSH" in out
    enrolled = "printf 'key: /var/lib/dkms/mok.pub\\n/var/lib/dkms/mok.pub is already enrolled\\nrc: 1\\n'"
    proc, _ = kg_play(kg, "--check", __nvidia_driver_mokutil_command=enforcing,
                    __nvidia_driver_mok_test_command=enrolled)
    out = _ok(proc)
    assert ("Secure Boot: enforcing; DKMS signs the module with /var/lib/dkms/mok.pub, which is enrolled: "
            "the kernel will load it") in out


def test_installing_the_headers_lets_dkms_build_and_everything_passes(kg, kernel):
    """The real DKMS build of nvidia-current 535 for that kernel (several minutes on 2 CPUs)."""
    proc = kg.ssh(f"sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "
                  f"linux-headers-{kernel} 2>&1", check=False, timeout=1200)  # the DKMS build
    assert proc.returncode == 0, proc.stdout[-3000:]
    state = kg.ssh(f"sudo -n cat {STATE}").stdout.splitlines()
    assert state[1:] == [f"{kernel} ok older module updates/dkms/nvidia-current.ko"]
    assert _check(kg)["outcome"] == "passed"
    # DKMS made its signing key at that build: what Secure Boot would need enrolled.
    assert kg.ssh("test -s /var/lib/dkms/mok.pub", check=False).returncode == 0
    out = _ok(kg_play(kg, nvidia_driver_skip_reboot=False)[0])
    assert f"Kernels: {kernel} ok older module updates/dkms/nvidia-current.ko." in out
    assert "WARNING: kern" not in out
