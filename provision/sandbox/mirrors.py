"""Where sandbox hosts get their packages and names from: this machine's own apt and DNS setup.

A sandbox host may reach exactly two kinds of places: the Debian archive that this machine's
apt already uses, and this machine's DNS resolvers. Both are read from the host's
configuration here, never hard-coded, so that the sandbox works behind whatever mirror or
proxy the user's network allows.

Two apt source formats exist:

* one-line ``sources.list`` entries: ``deb [options] URI SUITE COMPONENT...``
* deb822 ``*.sources`` stanzas with ``Types:``, ``URIs:``, ``Suites:`` fields.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from provision.errors import SandboxSetupError

ENV_MIRROR = "RIGFORGE_SANDBOX_MIRROR"
ENV_SECURITY_MIRROR = "RIGFORGE_SANDBOX_SECURITY_MIRROR"

_OPTIONS = re.compile(r"\[[^\]]*\]")


@dataclass(frozen=True)
class Mirrors:
    """The Debian archive (``.../debian``) and, if known, the security archive; ``extra``:
    the archives that container hosts made from a user's ``--image`` name in their own apt
    sources (an Ubuntu image's, say). ``debian`` is "" only where no host needs it."""

    debian: str
    security: str | None = None
    extra: tuple[str, ...] = ()

    def uris(self) -> tuple[str, ...]:
        return tuple(uri for uri in (self.debian, self.security, *self.extra) if uri)

    def sources_lines(self, suite: str, components: Iterable[str]) -> list[str]:
        """One-line apt sources for ``suite``, its updates and (if known) its security suite.

        Every release's suites come from the same two archives (``bookworm-security`` and
        ``trixie-security`` both live in the security archive), so these lines never name a
        host that ``endpoints`` (and with it the firewall) leaves out, whatever the suite.
        """
        comps = " ".join(components)
        lines = [f"deb {self.debian} {suite} {comps}", f"deb {self.debian} {suite}-updates {comps}"]
        if self.security:
            lines.append(f"deb {self.security} {suite}-security {comps}")
        return lines

    def endpoints(self) -> list[tuple[str, int | None]]:
        """(host, explicit port or None) of every archive, for the firewall (all releases)."""
        seen: list[tuple[str, int | None]] = []
        for uri in self.uris():
            parts = urlsplit(uri)
            item = (parts.hostname or "", parts.port)
            if item[0] and item not in seen:
                seen.append(item)
        return seen


def uris_from_one_line(text: str) -> list[str]:
    """The URIs of the ``deb`` and ``deb-src`` lines of a one-line ``sources.list``."""
    uris = []
    for raw in text.splitlines():
        line = _OPTIONS.sub(" ", raw.split("#", 1)[0]).split()
        if len(line) >= 2 and line[0] in ("deb", "deb-src"):
            uris.append(line[1])
    return uris


def _deb822_stanzas(text: str) -> list[dict[str, str]]:
    """Split deb822 text into stanzas of ``{lower-case field: value}``; continuation lines join."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = None
    for raw in [*text.splitlines(), ""]:
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if current:
                stanzas.append(current)
            current, key = {}, None
        elif raw[0] in " \t" and key:
            current[key] += " " + raw.strip()
        elif ":" in raw:
            key, value = raw.split(":", 1)
            key = key.strip().lower()
            current[key] = value.strip()
    return stanzas


def uris_from_deb822(text: str) -> list[str]:
    """The URIs of the enabled stanzas of a deb822 ``*.sources`` file."""
    uris = []
    for stanza in _deb822_stanzas(text):
        if stanza.get("enabled", "yes").lower() == "no":
            continue
        types = stanza.get("types", "").split()
        if "deb" in types or "deb-src" in types:
            uris.extend(stanza.get("uris", "").split())
    return uris


def pick_archive(uris: Iterable[str], archive: str) -> str | None:
    """The first http(s) URI whose last path part is ``archive`` ("debian", "debian-security")."""
    for uri in uris:
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            continue
        if parts.path.rstrip("/").rsplit("/", 1)[-1] == archive:
            return uri.rstrip("/")
    return None


def uris_of_files(files: Iterable[tuple[str, str]]) -> list[str]:
    """Every source URI in (file name, text) pairs: ``*.sources`` files are deb822, the rest
    (``sources.list``, ``*.list``) one-line."""
    uris: list[str] = []
    for name, text in files:
        if name.endswith(".sources"):
            uris += uris_from_deb822(text)
        elif name.endswith(".list"):
            uris += uris_from_one_line(text)
    return uris


def apt_source_uris(apt_dir: Path = Path("/etc/apt")) -> list[str]:
    """Every source URI in ``sources.list`` and ``sources.list.d/*.list`` / ``*.sources``."""
    paths = [apt_dir / "sources.list"]
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        paths += sorted(parts.iterdir())
    return uris_of_files((p.name, p.read_text(errors="replace")) for p in paths if p.is_file())


def archives(uris: Iterable[str]) -> list[str]:
    """The distinct http(s) archives among ``uris`` (what the sandbox firewall can allow)."""
    found: list[str] = []
    for uri in uris:
        parts = urlsplit(uri)
        if parts.scheme in ("http", "https") and parts.hostname and uri.rstrip("/") not in found:
            found.append(uri.rstrip("/"))
    return found


def _checked_uri(value: str, variable: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SandboxSetupError(
            f"{variable}={value!r} is not an http(s) URL",
            hint=f"set {variable} to the archive URL, e.g. http://MIRROR/debian",
        )
    return value.strip().rstrip("/")


def find_mirrors(apt_dir: Path = Path("/etc/apt"), env: Mapping[str, str] | None = None) -> Mirrors:
    """The archives sandbox hosts use: the environment's override, else this machine's apt.

    Raises ``SandboxSetupError`` when no Debian archive can be found.
    """
    env = os.environ if env is None else env
    uris = apt_source_uris(apt_dir)
    debian = env.get(ENV_MIRROR) and _checked_uri(env[ENV_MIRROR], ENV_MIRROR)
    debian = debian or pick_archive(uris, "debian")
    if not debian:
        raise SandboxSetupError(
            f"no Debian archive found in {apt_dir}/sources.list or {apt_dir}/sources.list.d/",
            hint=f"set {ENV_MIRROR} to a Debian mirror's URL (ending in /debian)",
        )
    security = env.get(ENV_SECURITY_MIRROR) and _checked_uri(env[ENV_SECURITY_MIRROR], ENV_SECURITY_MIRROR)
    return Mirrors(debian=debian, security=security or pick_archive(uris, "debian-security"))


def fence(find: Callable[[], Mirrors], image_archives: Iterable[Iterable[str]]) -> Mirrors:
    """What the sandbox firewall lets every host reach: this machine's Debian archives
    (``find``) and the archives that each --image host's own apt sources name."""
    extra = tuple(dict.fromkeys(uri for uris in image_archives for uri in uris))
    try:
        return replace(find(), extra=extra)
    except SandboxSetupError:
        if not extra:  # only hosts made from an --image may do without a Debian archive here
            raise
        return Mirrors("", extra=extra)


def nameservers_v4(resolv_conf: str) -> list[str]:
    """The IPv4 ``nameserver`` entries of a resolv.conf, without loopback ones.

    A loopback resolver (systemd-resolved's 127.0.0.53, a local dnsmasq) cannot be reached
    from inside a network namespace, so it is useless to a sandbox host.
    """
    found = []
    for line in resolv_conf.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            try:
                addr = ipaddress.ip_address(fields[1])
            except ValueError:
                continue
            if addr.version == 4 and not addr.is_loopback and str(addr) not in found:
                found.append(str(addr))
    return found


def host_nameservers(
    candidates: Iterable[Path] = (
        Path("/etc/resolv.conf"),
        Path("/run/systemd/resolve/resolv.conf"),
    ),
) -> list[str]:
    """This machine's usable IPv4 resolvers; systemd-resolved's upstream list as a fallback."""
    for path in candidates:
        try:
            servers = nameservers_v4(path.read_text(errors="replace"))
        except OSError:
            continue
        if servers:
            return servers
    return []
