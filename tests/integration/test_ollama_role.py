"""The ollama role on a real sandbox host, with STAND-IN Ollama releases (tests/standins/ollama.py).

The tests share one host and run in file order: the refusals on the still untouched host,
then install, idempotence, the checks, and upgrades. The role and playbook are copied into the
session's workspace and run with plain ``ansible-playbook``, settings in the inventory's
host_vars (where the checks read them too).
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tests.standins.apt_repo import RepoServer
from tests.standins.ollama import build_tarball

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
PIN, NEXT, LATER = "0.17.1", "0.18.0", "0.18.1"
VULNERABLE = "0.17.0"
MODEL = "tinyllama"
USER_LINE = 'Environment="OLLAMA_ORIGINS=http://rig.example"'
OVERRIDE = "/etc/systemd/system/ollama.service.d/override.conf"
# Everything the role could change, listed so that "nothing changed" can be compared.
FOOTPRINT = (
    "ls -l --time-style=full-iso /opt /var/cache /usr/local/bin /etc/systemd/system 2>&1;"
    " getent passwd ollama; getent group ollama; dpkg-query -W -f='${Status}\\n' zstd 2>&1;"
    " systemctl is-active ollama; true"
)


@pytest.fixture(scope="module")
def releases(rig, tmp_path_factory):
    """Stand-in releases laid out like GitHub's download URLs, served to the sandbox."""
    root = tmp_path_factory.mktemp("ollama-releases")
    builds = {}
    for version, compression in ((PIN, "gz"), (NEXT, "zst"), (LATER, "gz")):
        path, sha256 = build_tarball(root / "download" / f"v{version}", version, compression=compression)
        builds[version] = (path.relative_to(root).as_posix(), sha256)
    with RepoServer(root) as server:
        yield SimpleNamespace(
            server=server,
            url={v: server.url + rel for v, (rel, _) in builds.items()},
            sha256={v: sha for v, (_, sha) in builds.items()},
        )


@pytest.fixture(scope="module")
def ws(rig, releases):
    """The session's workspace with this role in it and the host selecting ollama."""
    shutil.copytree(REPO / "roles" / "ollama", rig.workspace / "roles" / "ollama", dirs_exist_ok=True)
    host_vars = rig.workspace / "inventory" / "host_vars" / rig.name
    host_vars.mkdir(parents=True, exist_ok=True)
    (host_vars / "components.yml").write_text("rigforge_components: [base, ollama]\n")
    ns = SimpleNamespace(rig=rig, releases=releases, settings=host_vars / "ollama.yml")
    pin(ns, PIN)
    play(rig.workspace, playbook="playbooks/base.yml")
    yield ns
    # The host stays for the session's other tests, which do not select ollama.
    for path in (host_vars / "components.yml", ns.settings):
        path.unlink(missing_ok=True)


def pin(ws, version: str) -> None:
    ws.settings.write_text(yaml.safe_dump({
        "ollama_version": version,
        "ollama_url": ws.releases.url[version],
        "ollama_sha256": ws.releases.sha256[version],
        "ollama_models": [MODEL],
    }))


def play(workspace: Path, *extra: str, playbook: str = "playbooks/ollama.yml", ok: bool = True):
    """Plain ansible-playbook from the workspace; returns (recap of the host, output)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "RIGFORGE_"))}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    proc = subprocess.run(
        ["ansible-playbook", playbook, *extra], cwd=workspace, env=env,
        capture_output=True, text=True, timeout=1200, check=False,
    )
    output = proc.stdout + proc.stderr
    assert (proc.returncode == 0) == ok, f"ansible-playbook exited {proc.returncode}\n{output[-4000:]}"
    stats = re.search(r"^\S+\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output, re.M)
    recap = dict(zip(("ok", "changed", "unreachable", "failed"), map(int, stats.groups()), strict=True))
    return recap, output


def sh(ws, command: str) -> str:
    return ws.rig.ssh(f"sudo -n sh -c {shlex.quote(command)}").stdout.strip()


def main_pid(ws) -> str:
    return sh(ws, "systemctl show --property=MainPID --value ollama")


def api_version(ws) -> str:
    out = sh(ws, "python3 -c 'import urllib.request; "
                 "print(urllib.request.urlopen(\"http://127.0.0.1:11434/api/version\").read().decode())'")
    return json.loads(out)["version"]


def journal_count(ws, text: str) -> int:
    return sh(ws, "journalctl -u ollama --no-pager -o cat").count(text)


def downloads(ws, version: str) -> int:
    name = ws.releases.url[version].removeprefix(ws.releases.server.url)
    return sum(1 for line in ws.releases.server.requests if line.startswith(f"GET /{name} "))


def refused(ws, *extra: str) -> str:
    """Run with bad settings; the host's footprint must not change. Returns the output."""
    before = sh(ws, FOOTPRINT)
    recap, output = play(ws.rig.workspace, *extra, ok=False)
    assert recap["failed"] == 1 and recap["changed"] == 0, output[-3000:]
    assert sh(ws, FOOTPRINT) == before
    return output


def test_vulnerable_version_is_refused_before_any_change(ws):
    output = refused(ws, "-e", f"ollama_version={VULNERABLE}")
    assert "Refusing Ollama 0.17.0" in output and "CVE-2026-7482" in output and "0.17.1" in output


def test_network_bind_without_opt_in_is_refused(ws):
    output = refused(ws, "-e", "ollama_host=0.0.0.0:11434")
    assert "ollama_allow_network" in output and "no authentication" in output


def test_missing_checksum_is_refused(ws):
    output = refused(ws, "-e", "ollama_sha256=")
    assert "ollama_sha256 is required" in output


def test_wrong_checksum_fails_before_any_change(ws):
    output = refused(ws, "-e", "ollama_sha256=" + "0" * 64)
    assert "did not match" in output and "Nothing was installed" in output
    assert sh(ws, "test -e /opt/ollama && echo present || echo absent") == "absent"


def test_check_mode_on_the_fresh_host_changes_nothing(ws):
    before = sh(ws, FOOTPRINT)
    recap, output = play(ws.rig.workspace, "--check", "--diff")
    assert recap["changed"] > 0 and recap["failed"] == 0, output[-3000:]
    assert sh(ws, FOOTPRINT) == before


def test_install_serves_the_pin_on_loopback_and_pulls_the_model(ws):
    fetched = downloads(ws, PIN)
    recap, output = play(ws.rig.workspace)
    assert recap["changed"] > 0 and recap["failed"] == 0, output[-3000:]
    assert sh(ws, "systemctl is-active ollama; systemctl is-enabled ollama").split() == ["active", "enabled"]
    assert api_version(ws) == PIN
    listening = sh(ws, "ss -ltnH 'sport = :11434'").splitlines()
    assert [line.split()[3] for line in listening] == ["127.0.0.1:11434"]
    assert sh(ws, "readlink /usr/local/bin/ollama; readlink /opt/ollama/current") == \
        f"/opt/ollama/current/bin/ollama\n{PIN}"
    assert sh(ws, "id -nG ollama").split()[0] == "ollama"
    assert "rigforge-ollama" not in sh(ws, "ls /var/cache"), "the downloaded archive was kept"
    assert journal_count(ws, 'POST "/api/pull"') == 1
    assert downloads(ws, PIN) == fetched + 1


def test_second_run_changes_nothing_and_keeps_the_service(ws):
    pid, fetched = main_pid(ws), downloads(ws, PIN)
    recap, output = play(ws.rig.workspace)
    assert recap["changed"] == 0, output[-3000:]
    recap, output = play(ws.rig.workspace, "--check")
    assert recap["changed"] == 0, output[-3000:]
    assert main_pid(ws) == pid, "a converged run restarted Ollama"
    assert journal_count(ws, 'POST "/api/pull"') == 1, "the model was pulled again"
    assert downloads(ws, PIN) == fetched, "a converged run downloaded the release again"


def test_checks_pass(ws, tmp_path):
    workspace, name, report = ws.rig.workspace, ws.rig.name, tmp_path / "checks.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(REPO / "provision" / "checks" / "test_ollama.py"), "-p",
         "no:cacheprovider", "--ssh-config=.rigforge/ssh_config", f"--hosts=ssh://{name}?sudo=true",
         f"--rigforge-workspace={workspace}", f"--rigforge-report={report}"],
        cwd=workspace, capture_output=True, text=True, timeout=300, check=False,
    )
    outcomes = {r["check"]: (r["outcome"], r["message"]) for r in json.loads(report.read_text())}
    gpu, message = outcomes.pop("test_ollama_reports_the_gpu")
    if sh(ws, "lspci -nn -d 10de: | grep -cE '\\[030[02]\\]' || true") == "0":
        assert (gpu, message) == ("skipped", "no NVIDIA GPU on this host (lspci)")
    else:  # the container sees this machine's NVIDIA GPU, which the stand-in never uses
        assert gpu == "failed" and "does not use the NVIDIA GPU" in message, message
    assert len(outcomes) >= 6 and {o for o, _ in outcomes.values()} == {"passed"}, proc.stdout[-4000:]
    assert proc.returncode == (0 if gpu == "skipped" else 1), proc.stdout[-4000:] + proc.stderr[-2000:]


def test_upgrade_restarts_once_and_keeps_the_users_override(ws):
    sh(ws, f"printf '[Service]\\n%s\\n' '{USER_LINE}' > {OVERRIDE} && systemctl daemon-reload")
    override = sh(ws, f"sha256sum {OVERRIDE}")
    starts = journal_count(ws, "Listening on")
    pin(ws, NEXT)
    recap, output = play(ws.rig.workspace)
    assert recap["changed"] > 0 and recap["failed"] == 0
    assert api_version(ws) == NEXT
    assert journal_count(ws, "Listening on") == starts + 1, "the upgrade did not restart Ollama exactly once"
    assert sh(ws, f"sha256sum {OVERRIDE}") == override
    environ = sh(ws, f"tr '\\0' '\\n' < /proc/{main_pid(ws)}/environ")
    assert "OLLAMA_ORIGINS=http://rig.example" in environ.splitlines()
    assert "OLLAMA_HOST=127.0.0.1:11434" in environ.splitlines()
    assert sh(ws, "ls /opt/ollama; readlink /opt/ollama/previous").split() == \
        [PIN, NEXT, "current", "previous", PIN]
    assert journal_count(ws, 'POST "/api/pull"') == 1, "the upgrade pulled the model again"
    recap, output = play(ws.rig.workspace)
    assert recap["changed"] == 0, output[-3000:]


def test_second_upgrade_keeps_only_one_previous_version(ws):
    pin(ws, LATER)
    play(ws.rig.workspace)
    assert api_version(ws) == LATER
    assert sh(ws, "ls /opt/ollama; readlink /opt/ollama/previous").split() == \
        [NEXT, LATER, "current", "previous", NEXT]
    assert USER_LINE in sh(ws, f"cat {OVERRIDE}")


def test_override_of_the_listen_address_is_refused(ws):
    sh(ws, f"printf '%s\\n' 'Environment=\"OLLAMA_HOST=0.0.0.0:11434\"' >> {OVERRIDE}")
    try:
        _, output = play(ws.rig.workspace, ok=False)
        assert "sets OLLAMA_HOST=0.0.0.0:11434" in output
    finally:
        sh(ws, f"sed -i '/OLLAMA_HOST/d' {OVERRIDE} && systemctl daemon-reload")
