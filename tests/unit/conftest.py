import socket
import threading
import time

import paramiko
import pytest
from click.testing import CliRunner

from provision import workspace as ws_mod
from tests.workspaces import select_base_only


@pytest.fixture
def workspace(tmp_path):
    ws, _ = ws_mod.init(tmp_path / "ws")
    select_base_only(ws.root)
    return ws


@pytest.fixture
def auto_workspace(tmp_path):
    """A workspace as ``rigforge init`` writes it: every host's components are ``auto``."""
    ws, _ = ws_mod.init(tmp_path / "ws")
    return ws


@pytest.fixture
def cli(workspace):
    """Run ``rigforge ARGS`` against the test workspace; returns click's Result."""
    from provision.cli import main

    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(main, ["--workspace", str(workspace.root), *args], input=input)

    return invoke


class KeyOnlySSHServer:
    """A real SSH server on loopback that completes key exchange and nothing more.

    Enough for host-key fetching; it never authenticates anyone.
    """

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        self.sock.settimeout(0.2)
        for _ in range(600):  # bounded: at most ~2 minutes
            if self._stop:
                return
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            transport = paramiko.Transport(conn)
            transport.add_server_key(self.host_key)
            try:
                transport.start_server(server=paramiko.ServerInterface())
                # Let the client finish the key exchange and hang up first.
                for _ in range(500):
                    if not transport.is_active():
                        break
                    time.sleep(0.01)
            except (paramiko.SSHException, EOFError, OSError):
                pass
            finally:
                transport.close()

    def close(self):
        self._stop = True
        self.thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def ssh_server(tmp_path):
    import subprocess

    key_file = tmp_path / "hostkey"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_file)], check=True
    )
    server = KeyOnlySSHServer()
    server.host_key = paramiko.Ed25519Key.from_private_key_file(str(key_file))
    server.pub_file = key_file.with_suffix(".pub")
    server.thread.start()
    yield server
    server.close()


@pytest.fixture
def two_rigs(workspace):
    """The workspace with hosts rig1 (10.0.0.5) and rig2 (10.0.0.6), never contacted, and an
    empty host_vars directory."""
    from provision.inventory import Host, Inventory

    inventory = Inventory(workspace.inventory)
    inventory.add(Host("rig1", "10.0.0.5"))
    inventory.add(Host("rig2", "10.0.0.6"))
    inventory.save()
    (workspace.root / "inventory" / "host_vars").mkdir(parents=True, exist_ok=True)
    return workspace
