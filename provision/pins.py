"""``rigforge pins update``: checksums of the downloads a default needs, fetched from the
vendors' own checksum files, checked, shown, and written to ``inventory/group_vars/all.yml``
only once the user confirms.

Per component, the checksum file that the vendor publishes beside each download (Ollama's
``sha256sum.txt`` in every release, Miniforge's ``<installer>.sha256``), read over HTTPS from
where the workspace downloads the artifact (``ollama_url``, ``conda_installer_url``: a mirror
serves the same files). A second source must agree: for a GitHub release, GitHub's own digest
of the asset (the releases API); for a mirror, the artifact itself, hashed. A value that two
sources disagree on (the pins shipped with rigforge, roles/pins, count as one), an HTTP
error, a missing entry, or a version below the CVE floor is refused, and nothing is written.

NVIDIA's container-toolkit key is pinned by fingerprint: the key served at the workspace's key
URL must have it (``gpg --show-keys``), and its file's SHA-256 is then pinned as well.
"""

import itertools
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from provision.errors import UsageError
from provision.workspace import Workspace

#: Architectures each component publishes, as the role names them in its URL.
ARCHES = {"ollama": ("amd64", "arm64"), "conda": ("x86_64", "aarch64")}
#: Keys pinned by fingerprint: (URL variable, fingerprint variable, file checksum variable).
KEYS = {"nvidia_container_toolkit": ("nvidia_container_toolkit_repo_key_url",
                                     "nvidia_container_toolkit_repo_key_fingerprint",
                                     "nvidia_container_toolkit_repo_key_sha256")}
#: What ``pins update`` covers, in order; also the default.
COMPONENTS = (*ARCHES, *KEYS)
#: The entry of each component in the pins file that ships with rigforge (roles/pins).
SHIPPED = {"ollama": "ollama", "conda": "miniforge",
           "nvidia_container_toolkit": "nvidia_container_toolkit_key"}
#: The group_vars entry each component's checksums go into, and the version variable.
PIN_VARIABLE = {"ollama": "ollama_sha256_pins", "conda": "conda_installer_sha256_pins"}
VERSION_VARIABLE = {"ollama": "ollama_version", "conda": "conda_version"}

Fetch = Callable[[str], bytes]


class PinError(UsageError):
    pass


@dataclass
class Pin:
    component: str
    version: str
    arch: str
    artifact_url: str
    new: str
    old: str = ""
    sources: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def https_get(url: str, timeout: float = 30) -> bytes:
    """The body of ``url``; anything but HTTPS, or an HTTP error, is refused."""
    if not url.startswith("https://"):
        raise PinError(f"refusing to fetch {url}: checksums are read over HTTPS only",
                       hint="point the download URL at an https:// mirror; nothing was written")
    request = urllib.request.Request(url, headers={"User-Agent": "rigforge-pins"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise PinError(f"{url} answered HTTP {exc.code}",
                       hint="check the version and the URL; nothing was written") from None
    except (urllib.error.URLError, OSError) as exc:
        raise PinError(f"cannot fetch {url}: {getattr(exc, 'reason', exc)}",
                       hint="check the network and the URL; nothing was written") from None


def plan(workspace: Workspace, components: list[str], version: str | None = None,
         fetch: Fetch = https_get) -> list[Pin]:
    """The new pins, every one checked; raises :class:`PinError` and writes nothing."""
    variables = _variables(workspace)
    shipped = shipped_pins(workspace)
    pins: list[Pin] = []
    unknown = [c for c in components if c not in COMPONENTS]
    if unknown:
        raise PinError(f"rigforge has no pins for {unknown[0]!r}",
                       hint=f"pins exist for: {', '.join(COMPONENTS)}")
    for component in components:
        if component in KEYS:
            pins.append(_key_pin(variables, shipped, component, fetch))
            continue
        wanted = str(version or variables.get(VERSION_VARIABLE[component], ""))
        _check_floor(workspace, component, wanted)
        current = (variables.get(PIN_VARIABLE[component]) or {}).get(wanted) or {}
        ours = (shipped[SHIPPED[component]].get("sha256") or {}).get(wanted) or {}
        for arch in ARCHES[component]:
            url = _artifact_url(variables, component, wanted, arch)
            new, sources = _checksum(component, url, fetch)
            if ours.get(arch) and ours[arch] != new:
                raise PinError(
                    f"the checksum of {url} is {new}, but the pin shipped with rigforge for "
                    f"{component} {wanted} {arch} is {ours[arch]} (roles/pins, from published sources)",
                    hint="the server does not serve the release that was published: do not install "
                    "it; nothing was written")
            old = str(current.get(arch) or ours.get(arch) or "")
            pins.append(Pin(component, wanted, arch, url, new, old, sources))
    return pins


def shipped_pins(workspace: Workspace) -> dict:
    """``pins_shipped`` of the workspace's roles/pins (else the one shipped with rigforge)."""
    import yaml

    from provision import assets

    path = workspace.root / "roles" / "pins" / "vars" / "main.yml"
    if not path.is_file():
        path = assets.roles_dir() / "pins" / "vars" / "main.yml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))["pins_shipped"]


def key_fingerprints(data: bytes) -> list[str]:
    """The primary-key fingerprints in an OpenPGP key file, read by ``gpg --show-keys`` (which
    imports nothing), in a throwaway home so that no keyring of the user's is touched."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as home:
        proc = subprocess.run(["gpg", "--homedir", home, "--batch", "--with-colons", "--show-keys"],
                              input=data, capture_output=True, check=False, timeout=60)
    if proc.returncode != 0:
        raise PinError("the key file is not an OpenPGP key: "
                       + proc.stderr.decode("utf-8", "replace").strip()[-300:],
                       hint="check the key URL; nothing was written")
    lines = [line.split(":") for line in proc.stdout.decode().splitlines()]
    # "fpr" follows its key's "pub" (or "sub") line; only the primary keys' count.
    return [b[9] for a, b in itertools.pairwise(lines) if a[0] == "pub" and b[0] == "fpr"]


def _key_pin(variables: dict, shipped: dict, component: str, fetch: Fetch) -> Pin:
    """A key is pinned by fingerprint: the served key must be the pinned one (a rotated key
    needs a second source, which rigforge cannot be). What is written is the key file's own
    SHA-256, so that the role also notices other bytes."""
    import hashlib

    url_var, fingerprint_var, sha_var = KEYS[component]
    url = str(variables[url_var])
    wanted = str(variables.get(fingerprint_var) or "")
    if not wanted or "{{" in wanted:  # the role's default names the shipped pin
        wanted = shipped[SHIPPED[component]]["fingerprint"]
    wanted = wanted.replace(" ", "").upper()
    body = fetch(url)
    found = key_fingerprints(body)
    if wanted not in found:
        raise PinError(
            f"the key at {url} is {', '.join(found) or 'no key'}, not the pinned {wanted}",
            hint=f"a changed key needs a second source: confirm the new fingerprint from the vendor's "
            f"documentation, then set {fingerprint_var}; nothing was written")
    old = str(variables.get(sha_var) or "")
    return Pin(component, wanted, "key", url, hashlib.sha256(body).hexdigest(), old,
               [url, f"gpg --show-keys: fingerprint {wanted}, the pinned one"])


def _variables(workspace: Workspace) -> dict:
    """Role defaults overlaid with group_vars/all.yml: where the downloads come from."""
    import yaml

    from provision.hostvars import role_defaults

    path = _group_vars(workspace)
    mine = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.is_file() else {}
    return {**role_defaults(workspace), **mine}


def _group_vars(workspace: Workspace) -> Path:
    return workspace.root / "inventory" / "group_vars" / "all.yml"


def _check_floor(workspace: Workspace, component: str, version: str) -> None:
    pattern = r"^[0-9]+\.[0-9]+\.[0-9]+$" if component == "ollama" else r"^[0-9]+\.[0-9]+\.[0-9]+-[0-9]+$"
    if not re.match(pattern, version):
        raise PinError(f"{version!r} is not a {component} release number",
                       hint="give --version like 0.33.3 (ollama) or 26.3.2-3 (conda); nothing was written")
    if component == "ollama":
        import yaml

        role_vars = yaml.safe_load((workspace.root / "roles" / "ollama" / "vars" / "main.yml").read_text())
        floor = str(role_vars["__ollama_min_version"])
        if _numbers(version) < _numbers(floor):
            raise PinError(f"Ollama {version} is below {floor}, the floor for "
                           f"{role_vars['__ollama_min_version_cves']}",
                           hint=f"give --version {floor} or newer; nothing was written")


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"[0-9]+", version))


def _artifact_url(variables: dict, component: str, version: str, arch: str) -> str:
    """The workspace's download URL for one release and architecture, its Jinja filled in."""
    template = str(variables["ollama_url" if component == "ollama" else "conda_installer_url"])
    values = {"ollama_version": version, "conda_version": version, "__ollama_arch": arch,
              "ansible_facts.architecture": arch}

    def fill(match: re.Match) -> str:
        name = match.group(1).strip()
        if name not in values:
            raise PinError(f"cannot fill {{{{ {name} }}}} in the download URL {template}",
                           hint="write the URL with ollama_version/conda_version and the architecture only")
        return values[name]

    return re.sub(r"\{\{\s*([^}]+?)\s*\}\}", fill, template)


def _checksum(component: str, url: str, fetch: Fetch) -> tuple[str, list[str]]:
    name = url.rsplit("/", 1)[1]
    sums_url = url.rsplit("/", 1)[0] + "/sha256sum.txt" if component == "ollama" else url + ".sha256"
    found = _parse_sums(fetch(sums_url).decode("utf-8", "replace"), name)
    if not found:
        raise PinError(f"{sums_url} has no checksum for {name}",
                       hint="check the version and the architecture; nothing was written")
    second, what = _second_source(url, name, fetch)
    if second != found:
        raise PinError(f"the checksums of {name} disagree: {sums_url} says {found}, {what} says {second}",
                       hint="do not install this release until the two agree; nothing was written")
    return found, [sums_url, what]


def _second_source(url: str, name: str, fetch: Fetch) -> tuple[str, str]:
    """For a GitHub release, GitHub's own digest of the asset; for a mirror (or an asset GitHub
    records no digest for), the SHA-256 of the artifact itself, downloaded once."""
    github = _github_digest(url, name, fetch)
    if github is not None:
        return github, f"GitHub's release digest of {name}"
    import hashlib

    return hashlib.sha256(fetch(url)).hexdigest(), f"the SHA-256 of {url} itself"


def _parse_sums(text: str, name: str) -> str:
    """The SHA-256 of ``name`` in a checksum file (``<sha>  <name>``, ``<sha> *<name>``, or a bare sha)."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    for parts in lines:
        if len(parts) >= 2 and parts[1].lstrip("*").removeprefix("./") == name:
            return _sha(parts[0])
    if len(lines) == 1 and len(lines[0]) == 1:
        return _sha(lines[0][0])
    return ""


def _sha(text: str) -> str:
    value = text.lower().removeprefix("sha256:")
    if not re.match(r"^[0-9a-f]{64}$", value):
        raise PinError(f"not a SHA-256: {text!r}", hint="the checksum file is malformed; nothing was written")
    return value


_GITHUB = re.compile(r"^https://github\.com/([^/]+)/([^/]+)/releases/download/([^/]+)/([^/]+)$")


def _github_digest(url: str, name: str, fetch: Fetch) -> str | None:
    """GitHub's own SHA-256 of a release asset (the releases API's ``digest``), or None when the
    URL is not a GitHub release or GitHub records none for the asset."""
    match = _GITHUB.match(url)
    if not match:
        return None
    owner, repo, tag, _ = match.groups()
    release = json.loads(fetch(f"https://api.github.com/repos/{owner}/{repo}/releases/tags/{tag}"))
    for asset in release.get("assets") or []:
        if asset.get("name") == name and str(asset.get("digest", "")).startswith("sha256:"):
            return _sha(asset["digest"])
    return None


def write(workspace: Workspace, pins: list[Pin]) -> Path:
    """Put the pins (and each component's version) into group_vars/all.yml, comments kept."""
    from io import StringIO

    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    from provision import fsutil

    path = _group_vars(workspace)
    yaml = YAML()
    yaml.preserve_quotes = True
    data = yaml.load(path.read_text(encoding="utf-8")) if path.is_file() else None
    data = data if isinstance(data, dict) else CommentedMap()
    for pin in pins:
        if pin.component in KEYS:
            data[KEYS[pin.component][2]] = pin.new
            continue
        data[VERSION_VARIABLE[pin.component]] = pin.version
        table = data.setdefault(PIN_VARIABLE[pin.component], CommentedMap())
        table.setdefault(pin.version, CommentedMap())[pin.arch] = pin.new
    out = StringIO()
    yaml.dump(data, out)
    text = out.getvalue()
    if not text.startswith("---"):
        text = "---\n" + text
    fsutil.write_text(path, text)
    return path

