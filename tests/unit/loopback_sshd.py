"""A real SSH server on loopback for the unit tests of rigforge's own SSH (provision/remote.py).

The ``ssh`` client under test talks to it as to any host: key exchange, the host key checked
against the workspace's known_hosts, public-key authentication, one ``exec`` channel per
session (several on one connection when ssh multiplexes). Each command runs on this machine
under ``/bin/sh -c``, as sshd would run it under the user's shell, with its stdin, stdout,
stderr and exit status carried over the channel.
"""

import contextlib
import socket
import subprocess
import threading
from pathlib import Path

import paramiko


def keygen(path: Path) -> Path:
    """A fresh ed25519 key pair at ``path`` (and ``path.pub``), as ssh-keygen writes it."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True, timeout=30)
    return path


def public_line(path: Path) -> str:
    """``TYPE BASE64`` of a key pair's public half."""
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


class _Server(paramiko.ServerInterface):
    def __init__(self, sshd: "LoopbackSSHD"):
        self.sshd = sshd

    def get_allowed_auths(self, username):
        return "publickey"

    def check_auth_publickey(self, username, key):
        self.sshd.users.append(username)
        if f"{key.get_name()} {key.get_base64()}" in self.sshd.authorized:
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED if kind == "session" else (
            paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED)

    def check_channel_exec_request(self, channel, command):
        self.sshd.commands.append(command.decode())
        threading.Thread(target=self.sshd.execute, args=(channel, command), daemon=True).start()
        return True


class LoopbackSSHD:
    """Accepts connections on 127.0.0.1 until :meth:`close`; counts them in ``connections``."""

    def __init__(self, host_key: Path, authorized: list[str], delay: float = 0.0):
        self.host_key = paramiko.Ed25519Key.from_private_key_file(str(host_key))
        self.authorized = set(authorized)
        self.delay = delay  # seconds each command waits before it runs: a slow host
        self.connections = 0
        self.commands: list[str] = []
        self.users: list[str] = []
        self._transports: list[paramiko.Transport] = []
        self._channels: list[paramiko.Channel] = []
        self._stopped = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            transport = paramiko.Transport(conn)
            transport.add_server_key(self.host_key)
            self._transports.append(transport)
            try:
                transport.start_server(server=_Server(self))
            except (paramiko.SSHException, EOFError, OSError):
                transport.close()
                continue
            threading.Thread(target=self._accept_channels, args=(transport,), daemon=True).start()

    def _accept_channels(self, transport: paramiko.Transport):
        while transport.is_active() and not self._stopped.is_set():
            channel = transport.accept(timeout=0.2)  # its exec request starts a thread
            if channel is not None:
                self._channels.append(channel)  # a dropped Channel closes itself

    def execute(self, channel: paramiko.Channel, command: bytes):
        if self.delay:
            self._stopped.wait(self.delay)
        proc = subprocess.Popen(["/bin/sh", "-c", command.decode()], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def feed():
            try:
                while data := channel.recv(65536):
                    proc.stdin.write(data)
                    proc.stdin.flush()
            except (OSError, ValueError):
                pass
            finally:
                with contextlib.suppress(OSError):
                    proc.stdin.close()

        def drain(source, send):
            while data := source.read1(65536):
                send(data)

        threads = [threading.Thread(target=feed, daemon=True),
                   threading.Thread(target=drain, args=(proc.stderr, channel.sendall_stderr),
                                    daemon=True)]
        for t in threads:
            t.start()
        try:
            drain(proc.stdout, channel.sendall)
            threads[1].join()
            channel.send_exit_status(proc.wait())
        except OSError:
            proc.kill()
        finally:
            channel.close()

    def close(self):
        self._stopped.set()
        self._thread.join(timeout=5)
        for transport in self._transports:
            transport.close()
        self.sock.close()


def host_in(workspace, tmp_path: Path, name: str = "rig1", user: str = "rig", **server):
    """A host ``name`` in ``workspace``, served by a fresh :class:`LoopbackSSHD` on this
    machine: registered as ``rigforge sandbox up`` registers one (its key read out of band),
    which writes its known_hosts line and the ssh_config. Returns the server; stop it with
    :meth:`LoopbackSSHD.close`."""
    from provision import hosts
    from provision.inventory import Host
    from provision.known_hosts import HostKey

    host_key = keygen(tmp_path / f"{name}-hostkey")
    client_key = keygen(tmp_path / f"{name}-client")
    sshd = LoopbackSSHD(host_key, [public_line(client_key)], **server)
    sshd.host_key_file, sshd.client_key_file = host_key, client_key
    hosts.register(workspace, Host(name, "127.0.0.1", user, sshd.port, str(client_key)),
                   [HostKey.parse(public_line(host_key))])
    return sshd
