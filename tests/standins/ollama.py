"""STAND-IN for the Ollama release archive: NOT Ollama, and no model ever runs.

The test machines cannot download Ollama. This module is two things:

* the builder, ``build_tarball(out_dir, version)``: an archive laid out like the real
  ``ollama-linux-amd64.tgz`` (``bin/ollama`` and ``lib/ollama/``), whose ``bin/ollama`` is
  this very file with the version baked in;
* that ``bin/ollama`` program (Python 3 standard library only, which every rig has): the parts
  of the real command and API that rigforge uses, in their real formats:
  ``ollama serve`` (``GET /``, ``GET /api/version``, ``GET /api/tags``, ``POST /api/pull``),
  ``ollama --version``, ``ollama list`` and ``ollama pull NAME``, with ``$OLLAMA_HOST`` and
  ``$OLLAMA_MODELS`` read as Ollama reads them. A "pulled" model is a small manifest and blob
  in Ollama's own directory layout under ``$OLLAMA_MODELS``.

>>> path, sha256 = build_tarball(tmp_path / "v0.17.1", "0.17.1")
"""

import contextlib
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from datetime import datetime
from pathlib import Path

VERSION = "0.0.0"  # replaced in the built bin/ollama
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 11434
REGISTRY, NAMESPACE = "registry.ollama.ai", "library"
STANDIN_NOTE = "STAND-IN for the Ollama release, built by rigforge's test suite; not Ollama.\n"

# --- builder (runs on the test machine) -------------------------------------------------------


def build_tarball(
    out_dir: Path, version: str, arch: str = "amd64", compression: str = "gz"
) -> tuple[Path, str]:
    """Write ``ollama-linux-<arch>.tgz`` (or ``.tar.zst`` with ``compression="zst"``) to ``out_dir``.

    Returns ``(path, sha256)``. The archive is reproducible: same version, same bytes.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    program = Path(__file__).read_text(encoding="utf-8")
    program = "#!/usr/bin/env python3\n" + program.replace('VERSION = "0.0.0"', f'VERSION = "{version}"', 1)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in ("bin", "lib", "lib/ollama"):
            _add(tar, name, None, 0o755)
        _add(tar, "bin/ollama", program.encode(), 0o755)
        _add(tar, "lib/ollama/STAND-IN.txt", STANDIN_NOTE.encode(), 0o644)
    if compression == "gz":
        path = out_dir / f"ollama-linux-{arch}.tgz"
        path.write_bytes(_gzip(raw.getvalue()))
    elif compression == "zst":
        path = out_dir / f"ollama-linux-{arch}.tar.zst"
        zstd = shutil.which("zstd")
        if not zstd:
            raise RuntimeError("building a .tar.zst stand-in needs the zstd command")
        path.write_bytes(subprocess.run([zstd, "-q", "-c"], input=raw.getvalue(), capture_output=True,
                                        check=True).stdout)
    else:
        raise ValueError(f"compression must be 'gz' or 'zst', got {compression!r}")
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _add(tar: tarfile.TarFile, name: str, data: bytes | None, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.mode, info.mtime, info.uname, info.gname = mode, 1700000000, "root", "root"
    if data is None:
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def _gzip(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data, mtime=0)


# --- the stand-in program (runs on the rig as bin/ollama) -------------------------------------


def parse_host(value: str | None) -> tuple[str, int]:
    """``$OLLAMA_HOST`` -> (address, port), as Ollama reads it (scheme optional, port 11434)."""
    value = (value or "").strip()
    for scheme in ("http://", "https://"):
        value = value.removeprefix(scheme)
    value = value.rstrip("/")
    if not value:
        return DEFAULT_HOST, DEFAULT_PORT
    if value.startswith("["):
        address, _, rest = value[1:].partition("]")
        return address, int(rest[1:]) if rest.startswith(":") else DEFAULT_PORT
    if value.count(":") == 1:
        address, port = value.split(":")
        return address or DEFAULT_HOST, int(port)
    return value, DEFAULT_PORT


def parse_model(name: str) -> tuple[str, str, str, str]:
    """``llama3.2`` -> (registry.ollama.ai, library, llama3.2, latest)."""
    parts = name.split("/")
    last = parts.pop()
    model, _, tag = last.partition(":")
    namespace = parts.pop() if parts else NAMESPACE
    registry = parts.pop() if parts else REGISTRY
    return registry, namespace, model, tag or "latest"


def models_dir() -> Path:
    return Path(os.environ.get("OLLAMA_MODELS") or Path.home() / ".ollama" / "models")


def display_name(registry: str, namespace: str, model: str, tag: str) -> str:
    if registry == REGISTRY and namespace == NAMESPACE:
        return f"{model}:{tag}"
    if registry == REGISTRY:
        return f"{namespace}/{model}:{tag}"
    return f"{registry}/{namespace}/{model}:{tag}"


def installed_models() -> list[dict]:
    """``/api/tags`` entries, read from the manifests as Ollama does."""
    root = models_dir() / "manifests"
    found = []
    for manifest in sorted(root.glob("*/*/*/*")) if root.is_dir() else []:
        registry, namespace, model, tag = manifest.relative_to(root).parts
        data = manifest.read_bytes()
        layers = json.loads(data)["layers"]
        stamp = datetime.fromtimestamp(manifest.stat().st_mtime).astimezone()
        name = display_name(registry, namespace, model, tag)
        found.append({
            "name": name,
            "model": name,
            "modified_at": stamp.isoformat(timespec="microseconds"),
            "size": sum(layer["size"] for layer in layers),
            "digest": hashlib.sha256(data).hexdigest(),
            "details": {
                "parent_model": "", "format": "gguf", "family": "stand-in", "families": ["stand-in"],
                "parameter_size": "0B", "quantization_level": "Q4_0",
            },
        })
    return found


def pull_steps(name: str):
    """Record the model and yield the status objects the real /api/pull streams."""
    registry, namespace, model, tag = parse_model(name)
    yield {"status": "pulling manifest"}
    blob = (STANDIN_NOTE + f"model {name}\n").encode()
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    blobs = models_dir() / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    yield {"status": f"pulling {digest[7:19]}", "digest": digest, "total": len(blob)}
    (blobs / digest.replace(":", "-")).write_bytes(blob)
    yield {"status": f"pulling {digest[7:19]}", "digest": digest, "total": len(blob), "completed": len(blob)}
    yield {"status": "verifying sha256 digest"}
    yield {"status": "writing manifest"}
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": digest,
                   "size": len(blob)},
        "layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": digest, "size": len(blob)}],
    }
    path = models_dir() / "manifests" / registry / namespace / model / tag
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest))
    yield {"status": "success"}


def log(message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    print(f'time={stamp} level=INFO source=standin msg="{message}"', file=sys.stderr, flush=True)


def serve() -> int:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        server_version, sys_version = "ollama-standin", ""

        def log_message(self, fmt, *args):
            # Ollama logs requests in gin's format; the tests count the POST "/api/pull" lines.
            print(f'[GIN] {time.strftime("%Y/%m/%d - %H:%M:%S")} | {args[1] if len(args) > 1 else "-"} | '
                  f'{self.client_address[0]} | {self.command} "{self.path}"', file=sys.stderr, flush=True)

        def _json(self, status: int, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()

        def do_GET(self):
            if self.path == "/":
                body = b"Ollama is running"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif self.path == "/api/version":
                self._json(200, {"version": VERSION})
            elif self.path == "/api/tags":
                self._json(200, {"models": installed_models()})
            else:
                self._json(404, {"error": "404 page not found"})

        def do_POST(self):
            if self.path != "/api/pull":
                self._json(404, {"error": "404 page not found"})
                return
            try:
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            except ValueError:
                self._json(400, {"error": "invalid request body"})
                return
            name = request.get("model") or request.get("name") or ""
            if not name:
                self._json(400, {"error": "model is required"})
                return
            steps = list(pull_steps(name))
            if request.get("stream", True) is False:
                self._json(200, steps[-1])
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.end_headers()
            for step in steps:
                self.wfile.write(json.dumps(step).encode() + b"\n")

    address, port = parse_host(os.environ.get("OLLAMA_HOST"))

    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
        daemon_threads = True

    server = Server((address, port), Handler)
    log(STANDIN_NOTE.strip())
    log(f"Listening on {address if ':' not in address else f'[{address}]'}:{port} (version {VERSION})")
    log("no compatible GPUs were discovered")
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


def request(method: str, path: str, payload: dict | None = None):
    from urllib.request import Request, urlopen

    address, port = parse_host(os.environ.get("OLLAMA_HOST"))
    if address in ("0.0.0.0", ""):
        address = "127.0.0.1"
    elif address == "::":
        address = "::1"
    host = f"[{address}]" if ":" in address else address
    data = json.dumps(payload).encode() if payload is not None else None
    return urlopen(Request(f"http://{host}:{port}{path}", data=data, method=method), timeout=30)


def human_bytes(size: int) -> str:
    for unit, scale in (("TB", 1000**4), ("GB", 1000**3), ("MB", 1000**2), ("KB", 1000)):
        if size >= scale:
            value = size / scale
            return f"{int(value)} {unit}" if value >= 10 or value == int(value) else f"{value:.1f} {unit}"
    return f"{size} B"


def human_time(stamp: str) -> str:
    seconds = int(time.time() - datetime.fromisoformat(stamp).timestamp())
    if seconds < 1:
        return "Less than a second ago"
    for unit, scale in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= scale:
            count = seconds // scale
            return f"About a {unit} ago" if count == 1 and unit != "second" else f"{count} {unit}s ago"
    return "Less than a second ago"


def table(rows: list[list[str]]) -> str:
    """Ollama's tablewriter layout: left-aligned columns, four spaces after every cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("".join(cell.ljust(width) + "    " for cell, width in zip(row, widths, strict=True))
                     for row in rows)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "help"
    if command in ("-v", "--version", "version"):
        try:
            server_version = json.load(request("GET", "/api/version"))["version"]
        except OSError:
            server_version = ""
            print("Warning: could not connect to a running Ollama instance")
        if server_version:
            print(f"ollama version is {server_version}")
        if server_version != VERSION:
            print(f"Warning: client version is {VERSION}")
        return 0
    if command == "serve":
        return serve()
    try:
        if command in ("list", "ls"):
            models = json.load(request("GET", "/api/tags"))["models"]
            rows = [["NAME", "ID", "SIZE", "MODIFIED"]] + [
                [m["name"], m["digest"][:12], human_bytes(m["size"]), human_time(m["modified_at"])]
                for m in models
            ]
            print(table(rows))
            return 0
        if command == "pull" and len(argv) == 2:
            with request("POST", "/api/pull", {"model": argv[1]}) as response:
                for line in response:
                    status = json.loads(line)
                    if "error" in status:
                        print(f"Error: {status['error']}", file=sys.stderr)
                        return 1
                    print(status["status"], file=sys.stderr)
            return 0
    except OSError as exc:
        print(f"Error: could not connect to ollama app, is it running? ({exc})", file=sys.stderr)
        return 1
    print(f"{STANDIN_NOTE}Usage: ollama serve | list | pull MODEL | --version", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
