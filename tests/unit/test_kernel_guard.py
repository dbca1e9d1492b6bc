"""The kernel-update guard of the nvidia_driver role, run for real in a fake root.

The guard script (templates/rigforge-kernel-guard.sh.j2, rendered by Ansible's Templar with
the role's variables) runs under /bin/sh against a temporary directory standing for /
(RIGFORGE_KERNEL_GUARD_ROOT): kernels in lib/modules with and without an NVIDIA module and
headers, a dpkg status file read by the real dpkg-query, and a fake ``dkms`` and ``uname``
on PATH. The role's decisions about its output (vars/guard.yml) and the Ubuntu kernel
metapackages are templated as tests/unit/test_nvidia_driver_vars.py does.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROLE = Path(__file__).resolve().parents[2] / "roles" / "nvidia_driver"
LOADER = DataLoader()
RUNNING = "6.1.0-47-amd64"


def _load(relative: str) -> dict:
    return LOADER.load_from_file(str(ROLE / relative), trusted_as_template=True) or {}


def _template(variables: dict, text: str):
    return Templar(loader=LOADER, variables=variables).template(trust_as_template(text))


def role_vars(fake: dict | None = None, **more) -> dict:
    fake = fake or {"distribution": "Debian", "distribution_version": "12.8", "kernel": RUNNING}
    variables = {
        **_load("defaults/main.yml"),
        "inventory_hostname": "rig1", "role_path": str(ROLE), "ansible_check_mode": False,
        "ansible_facts": {**fake, "architecture": "x86_64",
                          "distribution_major_version": fake["distribution_version"].split(".")[0]},
        **more,
        **_load("../gpu_stack/vars/main.yml"),
        **_load("vars/main.yml"),
        **_load(f"vars/{fake['distribution']}.yml"),
        **_load("vars/guard.yml"),
    }
    for what in ("source", "branch", "flavor"):
        expression = f"{{{{ __nvidia_driver_resolved_{what} }}}}"
        variables[f"__nvidia_driver_{what}"] = _template(variables, expression)
    return variables


def value(variables: dict, name: str):
    return _template(variables, f"{{{{ __nvidia_driver_{name} }}}}")


def render(template: str) -> str:
    return _template(role_vars(), (ROLE / "templates" / template).read_text())


# --- the script in a fake root -----------------------------------------------------------------

FAKE_DKMS = """#!/bin/sh
# dkms autoinstall -k KERNEL: builds the NVIDIA module unless told to fail.
echo "$*" >>"$RIGFORGE_KERNEL_GUARD_ROOT/dkms.calls"
kernel=$3
if [ -e "$RIGFORGE_KERNEL_GUARD_ROOT/dkms-fails-$kernel" ]; then exit 10; fi
if [ -e "$RIGFORGE_KERNEL_GUARD_ROOT/dkms-builds-nothing-$kernel" ]; then exit 0; fi
mkdir -p "$RIGFORGE_KERNEL_GUARD_ROOT/lib/modules/$kernel/updates/dkms"
: >"$RIGFORGE_KERNEL_GUARD_ROOT/lib/modules/$kernel/updates/dkms/nvidia.ko.xz"
"""


class FakeRoot:
    def __init__(self, tmp_path: Path, running: str = RUNNING, dkms: bool = True):
        self.root = tmp_path / "root"
        self.bin = tmp_path / "bin"
        self.log = tmp_path / "journal.log"
        for path in (self.root / "var/lib/dpkg/info", self.root / "var/lib/dpkg/updates", self.bin):
            path.mkdir(parents=True)
        (self.root / "var/lib/dpkg/status").write_text("")
        self._exe("uname", f"#!/bin/sh\necho {running}\n")
        if dkms:
            self._exe("dkms", FAKE_DKMS)
        self.script = tmp_path / "rigforge-kernel-guard"
        self.script.write_text(render("rigforge-kernel-guard.sh.j2"))
        self.script.chmod(0o755)

    def _exe(self, name: str, text: str) -> None:
        (self.bin / name).write_text(text)
        (self.bin / name).chmod(0o755)

    def kernel(self, name: str, *, image: str = "modules", module: str | None = None,
               headers: bool = False) -> None:
        """image: "modules" (kernel/ and modules.dep), "package" (only dpkg says so) or "none"."""
        base = self.root / "lib/modules" / name
        base.mkdir(parents=True)
        if image == "modules":
            (base / "kernel/drivers").mkdir(parents=True)
            (base / "modules.dep").write_text("kernel/drivers/x.ko:\n")
        elif image == "none":
            (base / "modules.dep").write_text("")  # DKMS's depmod writes one into a headers-only tree
        else:
            with (self.root / "var/lib/dpkg/status").open("a") as status:
                status.write(f"Package: linux-image-{name}\nStatus: install ok installed\nMaintainer: x\n"
                             f"Architecture: amd64\nVersion: 1\nDescription: x\n\n")
        if module:
            (base / module).parent.mkdir(parents=True, exist_ok=True)
            (base / module).write_text("")
        if headers:
            (base / "build").mkdir()
            (base / "build/Makefile").write_text("")

    def run(self, *args: str, path: str | None = None) -> subprocess.CompletedProcess:
        env = {"PATH": path or f"{self.bin}:/usr/bin:/bin", "RIGFORGE_KERNEL_GUARD_ROOT": str(self.root),
               "RIGFORGE_KERNEL_GUARD_LOG": str(self.log), "LC_ALL": "C"}
        return subprocess.run(["/bin/sh", str(self.script), *args], env=env, capture_output=True, text=True,
                              timeout=60, check=False)

    @property
    def state(self) -> list[str]:
        return (self.root / "var/lib/rigforge/kernel-guard.state").read_text().splitlines()

    @property
    def dkms_calls(self) -> list[str]:
        calls = self.root / "dkms.calls"
        return calls.read_text().splitlines() if calls.exists() else []


@pytest.fixture
def fake(tmp_path) -> FakeRoot:
    return FakeRoot(tmp_path)


def test_kernels_with_and_without_modules_and_headers(fake):
    fake.kernel("6.1.0-40-amd64")  # older, no module, no headers
    fake.kernel(RUNNING, module="updates/dkms/nvidia-current.ko")  # Debian's DKMS module name
    fake.kernel("6.1.0-50-amd64", image="package", headers=True)  # newer: DKMS builds it now
    fake.kernel("6.1.0-53-amd64", image="none", headers=True)  # headers only: not an installed kernel
    fake.kernel("6.1.0-54-amd64", headers=True)  # newest; its build fails
    (fake.root / "dkms-fails-6.1.0-54-amd64").write_text("")
    proc = fake.run()
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines == [
        "6.1.0-40-amd64 missing older no headers: install linux-headers-6.1.0-40-amd64, then run: "
        "dkms autoinstall -k 6.1.0-40-amd64",
        f"{RUNNING} ok running module updates/dkms/nvidia-current.ko",
        "6.1.0-50-amd64 ok newer module updates/dkms/nvidia.ko.xz (built now)",
        "6.1.0-54-amd64 missing newer dkms autoinstall -k 6.1.0-54-amd64 failed (exit 10): "
        "see dkms status -k 6.1.0-54-amd64 and its make.log",
    ]
    # Once per kernel that lacks a module and has headers; never for the others.
    assert fake.dkms_calls == ["autoinstall -k 6.1.0-50-amd64", "autoinstall -k 6.1.0-54-amd64"]
    assert fake.state[0].startswith("# rigforge-kernel-guard, ")
    assert fake.state[0].endswith(f"running {RUNNING}")
    assert fake.state[1:] == lines
    journal = fake.log.read_text()
    assert ("warning rigforge-kernel-guard: kernel 6.1.0-40-amd64 (older) has no NVIDIA module: "
            "no headers") in journal
    assert "kernel 6.1.0-54-amd64 (newer) has no NVIDIA module: dkms autoinstall" in journal
    # A second run finds the module built by the first and builds nothing more.
    again = fake.run()
    assert "6.1.0-50-amd64 ok newer module updates/dkms/nvidia.ko.xz\n" in again.stdout
    assert fake.dkms_calls.count("autoinstall -k 6.1.0-50-amd64") == 1


def test_ubuntu_prebuilt_module_paths_count(fake):
    fake.kernel("6.8.0-45-generic", module="kernel/nvidia-580srv/nvidia.ko")
    fake.kernel("6.8.0-51-generic", module="updates/dkms/nvidia.ko.zst")
    lines = fake.run().stdout.splitlines()
    assert lines == ["6.8.0-45-generic ok newer module kernel/nvidia-580srv/nvidia.ko",
                     "6.8.0-51-generic ok newer module updates/dkms/nvidia.ko.zst"]
    assert fake.dkms_calls == []
    assert "info rigforge-kernel-guard: every installed kernel has an NVIDIA module" in fake.log.read_text()


def test_report_mode_builds_nothing_and_writes_nothing(fake):
    fake.kernel("6.1.0-50-amd64", headers=True)
    proc = fake.run("--report")
    assert proc.stdout == ("6.1.0-50-amd64 missing newer not built yet: "
                           "run: dkms autoinstall -k 6.1.0-50-amd64\n")
    assert fake.dkms_calls == []
    assert not (fake.root / "var/lib/rigforge").exists()


def test_a_build_that_makes_no_nvidia_module_is_reported(fake):
    fake.kernel("6.1.0-50-amd64", headers=True)
    (fake.root / "dkms-builds-nothing-6.1.0-50-amd64").write_text("")
    assert "built no NVIDIA module: is the driver's DKMS package installed?" in fake.run().stdout


def test_without_dkms(tmp_path):
    fake = FakeRoot(tmp_path, dkms=False)
    fake.kernel("6.1.0-50-amd64", headers=True)
    path = f"{fake.bin}:{tmp_path / 'tools'}"
    (tmp_path / "tools").mkdir()
    for tool in ("find", "sort", "ls", "sed", "head", "grep", "dpkg-query", "mkdir", "mv", "rm", "date"):
        if shutil.which(tool):
            os.symlink(shutil.which(tool), tmp_path / "tools" / tool)
    proc = fake.run(path=path)
    assert proc.returncode == 0, proc.stderr
    assert "6.1.0-50-amd64 missing newer dkms is not installed" in proc.stdout


def test_a_container_running_its_hosts_kernel_has_no_installed_kernel(tmp_path):
    fake = FakeRoot(tmp_path, running="6.18.44-fc-v1147")
    proc = fake.run()
    assert (proc.returncode, proc.stdout) == (0, "")
    assert fake.state[1:] == []


def test_it_never_fails_the_apt_run(fake, tmp_path):
    fake.kernel("6.1.0-50-amd64", headers=True)
    (fake.root / "dkms-fails-6.1.0-50-amd64").write_text("")
    # The state directory cannot be made (a file is in its way), dkms fails, logger is absent.
    (fake.root / "var/lib/rigforge").write_text("not a directory")
    proc = fake.run()
    assert proc.returncode == 0
    assert "6.1.0-50-amd64 missing" in proc.stdout
    broken = tmp_path / "empty"
    broken.mkdir()
    assert fake.run(path=str(broken)).returncode == 0  # no tools at all


def test_apt_reads_the_hook_and_it_cannot_fail(tmp_path):
    conf = tmp_path / "99rigforge-kernel-guard"
    conf.write_text(render("99rigforge-kernel-guard.j2"))
    dump = subprocess.run(["apt-config", "-c", str(conf), "dump", "DPkg::Post-Invoke"],
                          capture_output=True, text=True, check=True).stdout
    hook = re.findall(r'^DPkg::Post-Invoke:: "(.*)";$', dump, re.M)
    assert any("/usr/local/sbin/rigforge-kernel-guard" in h for h in hook), dump
    (ours,) = [h for h in hook if "rigforge-kernel-guard" in h]
    assert ours.endswith("|| true; fi")
    # As apt runs it: sh -c. Without the script it does nothing, and a failing script fails nothing.
    assert subprocess.run(["/bin/sh", "-c", ours.replace("\\\"", "\"")], check=False).returncode == 0


# --- the role's decisions on the guard's output ------------------------------------------------

def no_headers(kernel: str, place: str) -> str:
    return (f"{kernel} missing {place} no headers: install linux-headers-{kernel}, then run: "
            f"dkms autoinstall -k {kernel}")


def guard_run(*lines: str) -> dict:
    return {"__nvidia_driver_guard_run": {"stdout_lines": list(lines)}}


def test_refuses_when_the_kernel_that_boots_has_no_module():
    v = role_vars(**guard_run(
        no_headers("6.1.0-40-amd64", "older"),
        f"{RUNNING} ok running module updates/dkms/nvidia-current.ko",
        no_headers("6.1.0-50-amd64", "newer"),
    ))
    assert value(v, "guard_boot_missing") is True
    refusal = value(v, "guard_refusal")
    assert refusal.startswith("kernel 6.1.0-50-amd64, which rig1 boots by default (the newest installed "
                              "kernel), has no NVIDIA module")
    assert "linux-headers-6.1.0-50-amd64, then run `sudo dkms autoinstall -k 6.1.0-50-amd64`" in refusal
    assert "has no NVIDIA module (no headers: install linux-headers-6.1.0-50-amd64, " in refusal
    assert refusal.endswith("Other kernels without an NVIDIA module: 6.1.0-40-amd64 (older: no headers: "
                            "install linux-headers-6.1.0-40-amd64, then run: dkms autoinstall -k "
                            "6.1.0-40-amd64).")


def test_an_older_kernel_without_a_module_is_only_warned_about():
    v = role_vars(**guard_run(
        no_headers("6.1.0-40-amd64", "older"),
        f"{RUNNING} ok running module updates/dkms/nvidia-current.ko",
    ))
    assert value(v, "guard_refusal") == ""
    assert value(v, "guard_missing_text").startswith("6.1.0-40-amd64 (older: no headers")


def test_a_container_kernel_that_is_not_installed_is_no_refusal():
    # The sandbox: the running kernel is its host's; an installed Debian kernel is "older" but boots.
    v = role_vars(**guard_run(no_headers("6.1.0-50-amd64", "older")))
    refusal = value(v, "guard_refusal")
    assert refusal.startswith("kernel 6.1.0-50-amd64, which rig1 boots by default")
    assert refusal.endswith("and run again.")  # no other kernel to name
    assert value(role_vars(**guard_run()), "guard_refusal") == ""
    assert value(role_vars(), "guard_rows") == []


@pytest.mark.parametrize(("fake", "extra", "wanted"), [
    ({"distribution": "Debian", "distribution_version": "12.8", "kernel": RUNNING}, {}, True),
    ({"distribution": "Debian", "distribution_version": "12.8", "kernel": RUNNING},
     {"nvidia_driver_source": "cuda-repo", "nvidia_driver_branch": "580"}, True),
    ({"distribution": "Ubuntu", "distribution_version": "24.04", "kernel": "6.8.0-45-generic"},
     {"__nvidia_driver_policy": {"stdout": "linux-modules-nvidia-580-server-open-6.8.0-45-generic:\n"
                                           "  Installed: (none)\n  Candidate: 6.8.0-45.45+1\n"}}, False),
    # No signed module for the running kernel: Ubuntu falls back to DKMS, and the guard is wanted.
    ({"distribution": "Ubuntu", "distribution_version": "24.04", "kernel": "6.8.0-45-generic"}, {}, True),
])
def test_the_guard_is_installed_for_dkms_sources_only(fake, extra, wanted):
    v = role_vars(fake, **extra)
    assert value(v, "guard_wanted") is wanted
    assert value(v, "kernel_updates_managed") is (not wanted and fake["distribution"] == "Ubuntu")


# --- Ubuntu: the kernel metapackages ----------------------------------------------------------

NOBLE = {"distribution": "Ubuntu", "distribution_version": "24.04", "kernel": "6.8.0-45-generic"}
SIGNED = {"__nvidia_driver_policy": {"stdout": "linux-modules-nvidia-580-server-open-6.8.0-45-generic:\n"
                                               "  Installed: (none)\n  Candidate: 6.8.0-45.45+1\n"}}
# `dpkg-query -W -f='${Package} ${db:Status-Status} ${db:Status-Want}\n' 'linux-generic*'
# 'linux-image-generic*' 'linux-headers-generic*'` on a jammy host with the HWE kernel.
DPKG_QUERY = """linux-generic-hwe-22.04 installed install
linux-generic-hwe-22.04-edge not-installed unknown
linux-generic installed hold
linux-image-generic-hwe-22.04 installed install
linux-image-generic config-files deinstall
linux-headers-generic-hwe-22.04 installed install
linux-headers-generic-hwe-22.04-edge not-installed unknown
linux-image-generic-lts-xenial not-installed unknown
"""


def metas(text: str = DPKG_QUERY, **more) -> dict:
    probe = {"stdout_lines": text.splitlines(), "rc": 0}
    return role_vars(NOBLE, **SIGNED, __nvidia_driver_kernel_metas=probe, **more)


def test_the_installed_kernel_metapackages():
    v = metas()
    assert value(v, "kernel_meta_installed") == [
        "linux-generic", "linux-generic-hwe-22.04", "linux-headers-generic-hwe-22.04",
        "linux-image-generic-hwe-22.04"]
    assert value(v, "kernel_meta_held") == ["linux-generic"]
    assert value(v, "kernel_updates_managed") is True
    assert value(metas(""), "kernel_meta_installed") == []


def test_together_blacklists_exactly_those_for_unattended_upgrades(tmp_path):
    v = metas()
    assert value(v, "kernel_updates_blacklist") == [
        "linux-generic$", "linux-generic-hwe-22\\.04$", "linux-headers-generic-hwe-22\\.04$",
        "linux-image-generic-hwe-22\\.04$"]
    conf = tmp_path / "52rigforge-kernel-updates"
    conf.write_text(_template(v, (ROLE / "templates" / "52rigforge-kernel-updates.j2").read_text()))
    dump = subprocess.run(["apt-config", "-c", str(conf), "dump", "Unattended-Upgrade::Package-Blacklist"],
                          capture_output=True, text=True, check=True).stdout
    patterns = re.findall(r'^Unattended-Upgrade::Package-Blacklist:: "(.*)";$', dump, re.M)
    # unattended-upgrades matches each entry with re.match.
    def blocked(name: str) -> bool:
        return any(re.match(p, name) for p in patterns)
    assert all(blocked(n) for n in value(v, "kernel_meta_installed"))
    for free in ("linux-generic-hwe-22.04-edge", "linux-image-6.8.0-51-generic", "linux-headers-6.8.0-51",
                 "linux-modules-nvidia-580-server-open-generic-hwe-22.04", "linux-generic-hwe-22x04"):
        assert not blocked(free), free


def test_the_setting_is_documented_and_checked():
    assert _load("defaults/main.yml")["nvidia_driver_kernel_updates"] == "together"
    options = _load("meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    spec = options["nvidia_driver_kernel_updates"]
    assert (spec["default"], spec["choices"]) == ("together", ["together", "hold"])
    readme = (ROLE / "README.md").read_text()
    assert "nvidia_driver_kernel_updates" in readme
