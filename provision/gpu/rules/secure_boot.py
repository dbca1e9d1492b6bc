"""Whether an enforcing Secure Boot will load the driver's DKMS modules.

DKMS signs every module it builds with one key (Ubuntu: update-secureboot-policy's
/var/lib/shim-signed/mok/MOK.der; Debian and upstream DKMS: /var/lib/dkms/mok.pub, made at
the first build). `rigforge probe` asks ``mokutil --test-key`` about it; once it is enrolled
(one console visit), the DKMS sources work under Secure Boot.
"""

from provision.gpu.rules.context import Checker

#: How the enrollment ends, whichever way it starts: only the firmware's console confirms it.
CONSOLE = (
    "reboot with a keyboard and screen attached and confirm the key in the blue MokManager "
    "screen (this needs the console; it cannot be done over SSH), then run again."
)

#: How Debian 12's dkms 3.0, which has no generate_mok, would make its key at the first build.
DKMS_MAKE_KEY = (
    "install dkms and make its key (dkms 3.1 and newer, Debian 13: `sudo dkms "
    "generate_mok`; Debian 12's dkms 3.0 makes it only at its first module build, so run "
    "the command it would: `sudo openssl req -new -x509 -nodes -days 36500 -subj "
    "\"/CN=DKMS module signing key\" -newkey rsa:2048 -keyout /var/lib/dkms/mok.key "
    "-outform DER -out /var/lib/dkms/mok.pub`), then "
)


def check_secure_boot(checker: Checker) -> None:
    """DKMS modules under an enforcing Secure Boot load only when their signing key is enrolled."""
    source = checker.stack.nvidia_driver_source
    if source == "ubuntu":
        return
    key_state = checker.facts.secure_boot_key
    ubuntu = checker.key is not None and checker.key[0] == "ubuntu"
    key = "/var/lib/shim-signed/mok/MOK.der" if ubuntu else "/var/lib/dkms/mok.pub"
    if checker.facts.secure_boot_enforcing:
        if key_state == "enrolled":
            checker.notes.append(
                f"Secure Boot is enforcing; DKMS signs the {source} driver's modules with {key}, which "
                "is enrolled (mokutil --test-key), so the kernel will load them."
            )
            return
        checker.problem(
            f"Secure Boot is enforcing on this host and nvidia_driver_source is {source}, whose DKMS "
            f"modules are not signed by a key the firmware trusts: the kernel will refuse them "
            f"({_why(key_state, key)}). {_steps(key_state, key, ubuntu)}",
            "nvidia_driver_source",
        )
    elif checker.facts.secure_boot == "unknown":
        checker.notes.append(
            "The Secure Boot state is unknown (mokutil is missing or unclear); if Secure Boot is "
            f"enforcing, the {source} driver's DKMS modules will be refused until a MOK is enrolled."
        )


def _why(key_state: str | None, key: str) -> str:
    """Why the kernel will refuse the modules, from what the last probe said of the key."""
    return {
        "not-enrolled": f"DKMS's signing key {key} is not enrolled",
        "no-key": f"DKMS's signing key {key} does not exist yet",
        "pending": f"DKMS's signing key {key} is imported but not yet confirmed at the console",
        "blocked": f"DKMS's signing key {key} is blocked, in dbx or MokListX",
        "unknown": f"mokutil could not tell whether DKMS's signing key {key} is enrolled",
    }.get(key_state or "", f"the last probe did not test DKMS's signing key {key}: probe again")


def _steps(key_state: str | None, key: str, ubuntu: bool) -> str:
    """What to do about it, for the key's state and the OS's tools."""
    if key_state == "pending":
        return "R" + CONSOLE[1:]
    if key_state == "unknown":
        return (f"Check with `sudo mokutil --test-key {key}` (package mokutil); to enroll it, "
                + ("`sudo update-secureboot-policy --enroll-key`" if ubuntu
                   else f"`sudo mokutil --import {key}`") + ", then " + CONSOLE)
    if ubuntu:
        return ("Use nvidia_driver_source: ubuntu (Canonical-signed prebuilt modules via "
                "ubuntu-drivers), or enroll a MOK at the console: "
                + ({"no-key": "`sudo update-secureboot-policy --new-key` (the key is missing), ",
                    "blocked": "`sudo update-secureboot-policy --new-key` (a new key), "}
                   .get(key_state or "", ""))
                + "`sudo update-secureboot-policy --enroll-key`, then " + CONSOLE)
    make = "" if key_state in ("not-enrolled", "unknown") else DKMS_MAKE_KEY
    if key_state == "blocked":
        make = f"move {key} and its private key away so that DKMS makes a new pair at the next build, then "
    return (f"Enroll a MOK at the console: {make}`sudo mokutil --import {key}`, {CONSOLE} "
            "Or turn Secure Boot off in the firmware.")
