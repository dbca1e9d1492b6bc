"""What ``mokutil`` says of Secure Boot (``--sb-state``) and of a signing key (``--test-key FILE``)."""

import re
from dataclasses import dataclass

from provision.gpu.parsing import output_lines


@dataclass(frozen=True)
class SecureBoot:
    """Secure Boot as mokutil reports it.

    state is "enabled", "disabled", "unsupported" (no EFI variables: legacy BIOS, so no
    Secure Boot) or "unknown" (mokutil absent or its answer not understood).
    """

    state: str
    setup_mode: bool = False
    validation_disabled: bool = False

    @property
    def enforcing(self) -> bool:
        """Unsigned kernel modules are refused: enabled, and shim still validates."""
        return self.state == "enabled" and not self.validation_disabled


def parse_mokutil_sb_state(stdout: str, stderr: str = "", rc: int = 0) -> SecureBoot:
    """Read ``mokutil --sb-state``; mokutil exits 0 for both enabled and disabled."""
    out = [line.strip() for line in output_lines(stdout)]
    both = "\n".join(out + output_lines(stderr))
    if rc == 127 or "command not found" in both or "mokutil: not found" in both:
        return SecureBoot("unknown")
    if "EFI variables are not supported" in both or "doesn't support Secure Boot" in both:
        return SecureBoot("unsupported")
    setup_mode = "Platform is in Setup Mode" in out
    validation_disabled = "SecureBoot validation is disabled in shim" in out
    if "SecureBoot enabled" in out:
        return SecureBoot("enabled", setup_mode, validation_disabled)
    if "SecureBoot disabled" in out:
        return SecureBoot("disabled", setup_mode, validation_disabled)
    return SecureBoot("unknown", setup_mode, validation_disabled)


# --- mokutil --test-key FILE ------------------------------------------------------------

MOK_KEY_STATES = ("enrolled", "not-enrolled", "pending", "blocked", "no-key", "unknown")

#: What mokutil (0.3 to 0.7.2 and its git head, lcp/mokutil src/mokutil.c, test_key and
#: print_skip_message) prints for a certificate, matched after the file name. Its exit status
#: cannot be trusted: 0.7.2 and older exit 0 for "not enrolled" and 1 for "already enrolled",
#: newer builds (after 0.7.2) exit 1 and 0. So only the text decides.
_MOK_MESSAGES = (
    # Shim trusts it (MokListRT), the firmware does (db), or the kernel's built-in keyring has it.
    ("is already enrolled", "enrolled", "MokList"),
    ("is already in db", "enrolled", "db"),
    ("is already in the built-in trusted keyring", "enrolled", "built-in keyring"),
    # Imported with `mokutil --import`, waiting for the confirmation at the next boot's console.
    ("is already in the enrollment request", "pending", "MokNew"),
    ("is blocked in dbx", "blocked", "dbx"),
    ("is blocked in MokListX", "blocked", "MokListX"),  # 0.7.0 and newer
    ("is blocked in MokListXRT", "blocked", "MokListX"),  # 0.5.0 to 0.6.0
    ("is not enrolled", "not-enrolled", None),
)


@dataclass(frozen=True)
class MokKey:
    """Whether a module-signing certificate is enrolled, as ``mokutil --test-key FILE`` says.

    state is "enrolled" (trusted: in shim's MokList, the firmware's db or the kernel's
    built-in keyring, named by ``where``), "not-enrolled", "pending" (imported, to be
    confirmed at the console at the next boot), "blocked" (in dbx or MokListX), "no-key"
    (the file does not exist) or "unknown" (no mokutil, no EFI, not a certificate, ...).
    """

    state: str
    key: str | None = None
    where: str | None = None

    @property
    def enrolled(self) -> bool:
        return self.state == "enrolled"


def parse_mokutil_test_key(stdout: str, stderr: str = "", rc: int = 0) -> MokKey:
    """Read ``mokutil --test-key FILE`` (stdout and stderr; the exit status is not used,
    except 127 for a missing mokutil)."""
    lines = [line.strip() for line in output_lines(stdout) + output_lines(stderr) if line.strip()]
    both = "\n".join(lines)
    if rc == 127 or "command not found" in both or "mokutil: not found" in both:
        return MokKey("unknown")
    for line in lines:
        for message, state, where in _MOK_MESSAGES:
            if line.endswith(" " + message) and not line.startswith("CA of "):
                return MokKey(state, line[: -len(message) - 1].strip(), where)
        missing = re.match(r"^Failed to (?:open|get file status,?) (?P<key>\S.*?)(?::.*)?$", line)
        if missing:
            return MokKey("no-key", missing["key"])
    return MokKey("unknown")
