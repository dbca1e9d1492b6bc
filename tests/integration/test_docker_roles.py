"""The docker and nvidia_container_toolkit roles on real sandbox hosts, with plain ansible-playbook.

Docker is real: Debian 12's docker.io (docker_source: distro) runs inside the session's sandbox
host and runs a container from an image built there without a registry. Docker's and NVIDIA's
apt repositories cannot be reached from here, so they are STAND-INs (tests/standins/
docker_repos.py): the toolkit's stand-in goes onto the session host next to the real Docker;
the docker-ce stand-in conflicts with docker.io and gets a sandbox host of its own.

The tests share the hosts and run in file order.
"""

import base64
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import Rig, new_rig, rigforge
from tests.standins import docker_repos
from tests.standins.apt_repo import RepoServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    """A host of its own: its stand-in repositories' sources would outlive their server on a shared host."""
    yield from new_rig(tmp_path_factory, "dk")

REPO = Path(__file__).resolve().parents[2]
DAEMON_JSON = "/etc/docker/daemon.json"
USER_KEY = {"log-level": "warn"}  # written by "the user" before provisioning
OPTIONS = {"log-driver": "json-file"}
DOCKER_USERS = ["alice", "ghost"]  # ghost does not exist: reported, not added
NCT_SOURCE = "/etc/apt/sources.list.d/nvidia-container-toolkit.sources"
NCT_KEYRING = "/etc/apt/keyrings/nvidia-container-toolkit.asc"
DOCKER_SOURCE = "/etc/apt/sources.list.d/docker.sources"
DOCKER_KEYRING = "/etc/apt/keyrings/docker.asc"
WRONG_SHA = "0" * 64
CDI_STATIC = "/etc/cdi/nvidia.yaml"
CDI_RECORD = "/var/lib/rigforge/nvidia-cdi-spec.sha256"  # how the role marks the static spec it wrote


@dataclass
class Play:
    rc: int
    out: str
    changed: int
    failed: int


def play(workspace: Path, host: str, *playbooks: str, extra: dict | None = None,
         check: bool = False) -> Play:
    """Plain ``ansible-playbook`` from the workspace, as a user without rigforge would run it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "RIGFORGE_"))}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    argv = ["ansible-playbook", *playbooks, "--limit", host] + (["--check"] if check else [])
    if extra:
        argv += ["-e", json.dumps(extra)]
    proc = subprocess.run(argv, cwd=workspace, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=1500, check=False)
    recaps = re.findall(rf"^{host}\s+: ok=\d+\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)",
                        proc.stdout, re.MULTILINE)
    return Play(proc.returncode, proc.stdout + proc.stderr,
                sum(int(c) for c, _ in recaps), sum(int(f) for _, f in recaps))


def converged(result: Play) -> Play:
    assert result.rc == 0 and result.failed == 0, result.out[-4000:]
    return result


def sudo(host: Rig, command: str, check: bool = True) -> str:
    return host.ssh(f"sudo -n sh -c {shlex.quote(command)}", check=check).stdout


def write_file(host: Rig, path: str, text: str) -> None:
    sudo(host, f"echo {base64.b64encode(text.encode()).decode()} | base64 -d > {path}")


def daemon_json(host: Rig) -> dict:
    return json.loads(sudo(host, f"cat {DAEMON_JSON}"))


def docker_process(host: Rig) -> str:
    """MainPID and start time of docker.service: they change only when Docker restarts."""
    return sudo(host, "systemctl show docker -p MainPID -p ActiveEnterTimestamp").strip()


def exists(host: Rig, path: str) -> bool:
    return host.ssh(f"sudo -n test -e {path}", check=False).returncode == 0


def package_states(host: Rig, names) -> dict[str, str]:
    out = host.ssh("dpkg-query -W -f='${db:Status-Abbrev}|${Package}|${Version}\\n' " + " ".join(names),
                   check=False).stdout
    states = {}
    for line in out.splitlines():
        status, name, version = line.split("|")
        if status.strip() not in ("un", "") and version:
            states[name] = f"{status.strip()} {version}"
    return states


def install_shipped(workspace: Path) -> None:
    """The workspace holds copies made at init time: bring in the current roles (init
    rendered the playbooks)."""
    for role in ("docker", "nvidia_container_toolkit"):
        dest = workspace / "roles" / role
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(REPO / "roles" / role, dest)


@pytest.fixture(scope="module")
def standins(rig, tmp_path_factory):
    """Both stand-in repositories, served on the bridge address (the rig keeps the bridge up)."""
    work = tmp_path_factory.mktemp("docker-standins")
    with RepoServer(work / "serve") as server:
        yield {
            "docker": docker_repos.docker_ce_standin(work / "serve", work, server.url),
            "nvidia": docker_repos.nvidia_toolkit_standin(work / "serve", work, server.url),
        }


@pytest.fixture(scope="module")
def host(rig, standins):
    """The session host, set up for docker (distro) and the toolkit stand-in; restored afterwards."""
    install_shipped(rig.workspace)
    host_vars = rig.workspace / "inventory" / "host_vars" / rig.name
    host_vars.mkdir(parents=True, exist_ok=True)
    components = host_vars / "components.yml"
    saved = components.read_text() if components.exists() else None
    nvidia = standins["nvidia"]
    components.write_text(yaml.safe_dump(
        {"rigforge_components": ["base", "docker", "nvidia_container_toolkit"]}))
    (host_vars / "docker_roles.yml").write_text(yaml.safe_dump({
        "docker_source": "distro",
        "docker_daemon_options": OPTIONS,
        "docker_users": DOCKER_USERS,
        "nvidia_container_toolkit_version": "1.17.8",
        "nvidia_container_toolkit_repo_url": nvidia.url,
        "nvidia_container_toolkit_repo_key_url": nvidia.key_url,
        # Pinned the way the default pins NVIDIA's key: by fingerprint only.
        "nvidia_container_toolkit_repo_key_fingerprint": nvidia.fingerprint,
    }))
    sudo(rig, "id alice >/dev/null 2>&1 || useradd --create-home alice")
    try:
        yield rig
    finally:
        (host_vars / "docker_roles.yml").unlink(missing_ok=True)
        if saved is None:
            components.unlink(missing_ok=True)
        else:
            components.write_text(saved)


def test_toolkit_below_the_nvidiascape_fix_is_refused_before_any_change(host):
    result = play(host.workspace, host.name, "playbooks/nvidia_container_toolkit.yml",
                  extra={"nvidia_container_toolkit_version": "1.17.3"})
    assert result.rc != 0 and result.changed == 0
    assert "CVE-2025-23266" in result.out and "1.17.8 or newer" in result.out
    assert not exists(host, NCT_SOURCE) and not exists(host, NCT_KEYRING)
    assert package_states(host, docker_repos.NVIDIA_TOOLKIT_PACKAGES) == {}


def test_toolkit_key_with_a_wrong_sha256_writes_no_source(host):
    result = play(host.workspace, host.name, "playbooks/nvidia_container_toolkit.yml",
                  extra={"nvidia_container_toolkit_repo_key_sha256": WRONG_SHA})
    assert result.rc != 0 and result.changed == 0
    assert f"did not match {WRONG_SHA}" in result.out
    assert "The key and the apt source were left as they were" in result.out
    assert not exists(host, NCT_SOURCE) and not exists(host, NCT_KEYRING)


def test_toolkit_key_that_is_not_the_pinned_one_writes_no_source(host, standins):
    wrong = "0123456789ABCDEF0123456789ABCDEF01234567"
    result = play(host.workspace, host.name, "playbooks/nvidia_container_toolkit.yml",
                  extra={"nvidia_container_toolkit_repo_key_fingerprint": wrong})
    assert result.rc != 0
    out = " ".join(result.out.split())
    assert f"has the fingerprint {standins['nvidia'].fingerprint}, not the pinned {wrong}" in out
    assert "the keyring and the apt source were left as they were" in out
    assert not exists(host, NCT_SOURCE) and not exists(host, NCT_KEYRING)
    assert not exists(host, "/etc/apt/keyrings/nvidia-container-toolkit.download")  # not kept either


def test_docker_from_debian_merges_daemon_json_and_warns_about_the_group(host):
    sudo(host, "mkdir -p /etc/docker")
    write_file(host, DAEMON_JSON, json.dumps(USER_KEY) + "\n")
    converged(play(host.workspace, host.name, "playbooks/base.yml"))
    result = converged(play(host.workspace, host.name, "playbooks/docker.yml",
                            extra={"rigforge_components": ["base", "docker"]}))
    assert result.changed > 0
    assert daemon_json(host) == {**USER_KEY, **OPTIONS}
    assert "docker" in host.ssh("id -nG alice").stdout.split()
    assert "WARNING: alice is in the docker group" in result.out and "root-equivalent" in result.out
    assert "WARNING: docker_users lists ghost" in result.out
    assert sudo(host, "docker info --format '{{.ServerVersion}}'").startswith("20.10")


def test_docker_runs_an_image_built_on_the_host_without_a_registry(host):
    sudo(host, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >/dev/null")
    sudo(host, "rm -rf /tmp/tiny && mkdir -p /tmp/tiny/bin && cp /bin/busybox /tmp/tiny/bin/"
               " && tar -C /tmp/tiny -c . | docker import - rigforge/tiny >/dev/null")
    assert sudo(host, "docker run --rm rigforge/tiny /bin/busybox echo ok").strip() == "ok"


def test_docker_second_run_changes_nothing_and_keeps_the_daemon(host):
    before = docker_process(host)
    assert converged(play(host.workspace, host.name, "playbooks/docker.yml")).changed == 0
    assert docker_process(host) == before


def test_a_changed_daemon_option_restarts_docker_once(host):
    options = {**OPTIONS, "log-opts": {"max-size": "10m"}}
    before = docker_process(host)
    first = converged(play(host.workspace, host.name, "playbooks/docker.yml",
                           extra={"docker_daemon_options": options}))
    after = docker_process(host)
    assert first.changed > 0 and after != before
    assert daemon_json(host) == {**USER_KEY, **options}
    again = converged(play(host.workspace, host.name, "playbooks/docker.yml",
                           extra={"docker_daemon_options": options}))
    assert again.changed == 0 and docker_process(host) == after


def test_a_restart_after_dockers_start_rate_limit_was_hit_still_succeeds(host):
    # docker.service allows StartLimitBurst starts per interval; a first provision (install,
    # daemon.json merge, nvidia runtime) restarts it several times in a row. CI once failed
    # exactly so: "start of the service was attempted too often".
    limited = False
    for _ in range(8):
        if "too often" in sudo(host, "systemctl restart docker 2>&1", check=False):
            limited = True
            break
    assert limited, "the test could not reach docker.service's start-rate limit"
    options = {**OPTIONS, "log-opts": {"max-size": "20m"}}
    result = converged(play(host.workspace, host.name, "playbooks/docker.yml",
                            extra={"docker_daemon_options": options}))
    assert result.changed > 0
    assert sudo(host, "systemctl is-active docker").strip() == "active"
    assert daemon_json(host) == {**USER_KEY, **options}


def test_invalid_daemon_json_fails_clearly_and_is_left_untouched(host):
    good = sudo(host, f"cat {DAEMON_JSON}")
    write_file(host, DAEMON_JSON, '{"log-level": "warn",')
    digest, process = sudo(host, f"sha256sum {DAEMON_JSON}"), docker_process(host)
    try:
        result = play(host.workspace, host.name, "playbooks/docker.yml")
        assert result.rc != 0 and result.changed == 0
        assert f"{DAEMON_JSON} on {host.name} is not a valid JSON object" in result.out
        assert "nothing was changed" in result.out
        assert sudo(host, f"sha256sum {DAEMON_JSON}") == digest
        assert docker_process(host) == process
    finally:
        write_file(host, DAEMON_JSON, good)


def test_toolkit_in_check_mode_reports_changes_and_makes_none(host):
    before, config = docker_process(host), daemon_json(host)
    result = converged(play(host.workspace, host.name, "playbooks/nvidia_container_toolkit.yml", check=True))
    assert result.changed > 0
    assert not exists(host, NCT_SOURCE) and not exists(host, NCT_KEYRING)
    assert package_states(host, docker_repos.NVIDIA_TOOLKIT_PACKAGES) == {}
    assert daemon_json(host) == config and docker_process(host) == before


def test_toolkit_installs_pinned_and_held_and_registers_the_runtime(host):
    before, config = docker_process(host), daemon_json(host)
    result = converged(play(host.workspace, host.name, "playbooks/nvidia_container_toolkit.yml"))
    states = package_states(host, docker_repos.NVIDIA_TOOLKIT_PACKAGES)
    assert states == {name: "hi 1.17.8-1" for name in docker_repos.NVIDIA_TOOLKIT_PACKAGES}
    merged = daemon_json(host)
    assert merged == {**config, "runtimes": {"nvidia": docker_repos.NVIDIA_RUNTIME}}
    assert docker_process(host) != before, "daemon.json changed, so Docker must have restarted"
    assert "nvidia" in json.loads(sudo(host, "docker info --format '{{json .Runtimes}}'"))
    assert "WARNING: no CDI specification generated" in result.out and "no NVIDIA GPU" in result.out
    assert not exists(host, "/etc/cdi/nvidia.yaml")
    # The runtime works end to end: Docker runs a container through the (stand-in) shim.
    assert sudo(host, "docker run --rm --runtime=nvidia rigforge/tiny /bin/busybox echo ok").strip() == "ok"


def test_second_run_and_check_mode_change_nothing_and_keep_the_daemon(host):
    before = docker_process(host)
    result = converged(play(host.workspace, host.name, "playbooks/docker.yml",
                            "playbooks/nvidia_container_toolkit.yml"))
    assert result.changed == 0 and docker_process(host) == before
    planned = converged(play(host.workspace, host.name, "playbooks/docker.yml",
                             "playbooks/nvidia_container_toolkit.yml", check=True))
    assert planned.changed == 0, "check mode on a converged host must report no change"


def test_toolkit_moves_between_pinned_versions_without_restarting_docker(host):
    before = docker_process(host)
    up = converged(play(host.workspace, host.name, "playbooks/nvidia_container_toolkit.yml",
                        extra={"nvidia_container_toolkit_version": "1.17.9"}))
    assert up.changed > 0
    assert set(package_states(host, docker_repos.NVIDIA_TOOLKIT_PACKAGES).values()) == {"hi 1.17.9-1"}
    down = converged(play(host.workspace, host.name, "playbooks/nvidia_container_toolkit.yml"))
    assert down.changed > 0
    assert set(package_states(host, docker_repos.NVIDIA_TOOLKIT_PACKAGES).values()) == {"hi 1.17.8-1"}
    assert docker_process(host) == before, "daemon.json did not change: no restart"


def unit_states(host: Rig, unit: str) -> tuple[str, str]:
    """``systemctl is-enabled`` and ``is-active`` of ``unit``."""
    out = sudo(host, f"systemctl is-enabled {unit}; systemctl is-active {unit}", check=False)
    enabled, active = [*out.split(), "", ""][:2]
    return enabled, active


def toolkit(host: Rig, check: bool = False) -> Play:
    return converged(play(host.workspace, host.name, "playbooks/nvidia_container_toolkit.yml", check=check))


def test_toolkit_with_cdi_refresh_enables_it_and_removes_only_rigforges_static_spec(host):
    host_vars = host.workspace / "inventory" / "host_vars" / host.name / "docker_roles.yml"
    saved = host_vars.read_text()
    # What the role's static path leaves on a GPU host with a toolkit before 1.18: the spec
    # and its recorded SHA-256.
    sudo(host, f"mkdir -p /etc/cdi {CDI_RECORD.rsplit('/', 1)[0]}")
    write_file(host, CDI_STATIC, "---\ncdiVersion: 0.5.0\nkind: nvidia.com/gpu\n# toolkit 1.17.8\n")
    sudo(host, f"sha256sum {CDI_STATIC} | cut -d' ' -f1 > {CDI_RECORD}")
    before = docker_process(host)
    try:
        host_vars.write_text(yaml.safe_dump(
            {**yaml.safe_load(saved), "nvidia_container_toolkit_version": "1.18.0"}))
        up = toolkit(host)
        assert up.changed > 0
        assert set(package_states(host, docker_repos.NVIDIA_TOOLKIT_PACKAGES).values()) == {"hi 1.18.0-1"}
        assert unit_states(host, "nvidia-cdi-refresh.path") == ("enabled", "active")
        assert unit_states(host, "nvidia-cdi-refresh.service")[0] == "enabled"
        assert not exists(host, CDI_STATIC) and not exists(host, CDI_RECORD)
        assert "WARNING: no CDI specification generated" in up.out and "no NVIDIA GPU" in up.out
        assert f"generates {docker_repos.NVIDIA_CDI_REFRESH_SPEC} on a host with an NVIDIA GPU" in up.out
        assert docker_process(host) == before, "daemon.json did not change: no restart"

        sudo(host, "systemctl disable --now nvidia-cdi-refresh.path 2>/dev/null")
        assert toolkit(host).changed > 0
        assert unit_states(host, "nvidia-cdi-refresh.path") == ("enabled", "active")
        assert toolkit(host).changed == 0
        assert toolkit(host, check=True).changed == 0, "check mode on a converged host must report no change"

        report = verify(host, "nvidia_container_toolkit")
        outcomes = {c["check"]: (c["outcome"], c["message"]) for c in report["checks"]}
        assert report["rc"] == 0 and report["status"] == "passed", outcomes
        assert outcomes["test_cdi_refresh_units_are_enabled"][0] == "passed"

        # A static spec that rigforge did not record stays, with a warning.
        write_file(host, CDI_STATIC, "# the user's own CDI specification\n")
        kept = toolkit(host)
        assert kept.changed == 0 and exists(host, CDI_STATIC)
        assert f"WARNING: {CDI_STATIC} on {host.name} is not a CDI specification that rigforge" in kept.out
    finally:
        sudo(host, f"rm -f {CDI_STATIC} {CDI_RECORD}")
        host_vars.write_text(saved)
    # Back to 1.17.8: the units stay behind (obsolete conffiles), and the role goes back to
    # the static way, which needs a GPU.
    down = toolkit(host)
    assert set(package_states(host, docker_repos.NVIDIA_TOOLKIT_PACKAGES).values()) == {"hi 1.17.8-1"}
    assert f"generates {CDI_STATIC} on a host with an NVIDIA GPU" in down.out
    assert docker_process(host) == before


def verify(host: Rig, components: str) -> dict:
    proc = rigforge(host.workspace, "verify", "--limit", host.name, "--components", components,
                    "--format", "json", check=False)
    if not proc.stdout.strip():
        pytest.fail(f"rigforge verify printed no report (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return {"rc": proc.returncode, **json.loads(proc.stdout)}


def test_checks_pass_on_the_converged_host(host):
    report = verify(host, "docker,nvidia_container_toolkit")
    outcomes = {c["check"]: (c["outcome"], c["message"]) for c in report["checks"]}
    assert report["rc"] == 0 and report["status"] == "passed", outcomes
    for check in ("test_docker_service_is_running_and_enabled", "test_docker_daemon_answers",
                  "test_daemon_options_are_in_daemon_json", "test_docker_group_holds_only_docker_users",
                  "test_toolkit_packages_are_pinned_and_held", "test_toolkit_has_the_nvidiascape_fix",
                  "test_docker_lists_the_nvidia_runtime", "test_toolkit_sources_are_deb822_and_signed"):
        assert outcomes[check][0] == "passed", (check, outcomes[check])
    assert outcomes["test_toolkit_sources_use_https"][0] == "skipped"
    assert outcomes["test_toolkit_sources_use_https"][1].startswith("local mirror")
    # The workload tier (issue #15): skipped with its reason, never passed, without a GPU.
    assert outcomes["test_gpu_container_runs_nvidia_smi"][0] == "skipped"
    assert outcomes["test_gpu_container_runs_nvidia_smi"][1].endswith("no NVIDIA GPU on this host")


def test_checks_fail_when_another_user_joins_the_docker_group(host):
    sudo(host, "id bob >/dev/null 2>&1 || useradd bob; usermod -aG docker bob")
    try:
        report = verify(host, "docker")
    finally:
        sudo(host, "gpasswd -d bob docker >/dev/null")
    failed = {c["check"]: c["message"] for c in report["checks"] if c["outcome"] == "failed"}
    assert report["rc"] == 1
    assert "bob" in failed["test_docker_group_holds_only_docker_users"]


@pytest.fixture(scope="module")
def ce_host(host, standins):
    """A second sandbox host for the docker-ce stand-in, which conflicts with docker.io."""
    name = f"dce{os.getpid() % 100000}"
    rigforge(host.workspace, "sandbox", "up", name, timeout=600)
    host_vars = host.workspace / "inventory" / "host_vars" / name
    try:
        host_vars.mkdir(parents=True, exist_ok=True)
        docker = standins["docker"]
        (host_vars / "docker_roles.yml").write_text(yaml.safe_dump({
            "rigforge_components": ["base", "docker"],
            "docker_source": "docker-ce",
            "docker_repo_url": docker.url,
            "docker_repo_suite": "/",
            "docker_repo_components": [],
            "docker_repo_key_url": docker.key_url,
            "docker_repo_key_sha256": docker.key_sha256,
        }))
        yield Rig(host.workspace, name)
    finally:
        rigforge(host.workspace, "sandbox", "down", name, check=False)
        shutil.rmtree(host_vars, ignore_errors=True)


def test_docker_ce_key_with_a_wrong_sha256_writes_no_source(ce_host):
    result = play(ce_host.workspace, ce_host.name, "playbooks/docker.yml",
                  extra={"docker_repo_key_sha256": WRONG_SHA})
    assert result.rc != 0 and result.changed == 0
    assert f"did not match {WRONG_SHA}" in result.out
    assert not exists(ce_host, DOCKER_SOURCE) and not exists(ce_host, DOCKER_KEYRING)


def test_docker_ce_is_refused_while_the_distributions_runc_is_installed(ce_host):
    # Docker's install guide removes runc (and containerd, podman-docker, ...) before docker-ce.
    sudo(ce_host, "apt-get update -q >/dev/null"
                  " && DEBIAN_FRONTEND=noninteractive apt-get install -y -q runc >/dev/null")
    try:
        result = play(ce_host.workspace, ce_host.name, "playbooks/docker.yml")
        assert result.rc != 0 and result.changed == 0
        assert (f"runc is installed on {ce_host.name}, but docker_source is 'docker-ce', whose packages "
                "conflict with it. Either set docker_source to 'distro', or remove it first "
                "(apt-get remove runc;") in result.out
        assert not exists(ce_host, DOCKER_SOURCE) and not exists(ce_host, DOCKER_KEYRING)
        assert "runc" in package_states(ce_host, ["runc"])
    finally:
        sudo(ce_host, "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q runc >/dev/null")


def test_docker_ce_in_check_mode_on_a_fresh_host_makes_no_change(ce_host):
    result = converged(play(ce_host.workspace, ce_host.name, "playbooks/docker.yml", check=True))
    assert result.changed > 0
    assert not exists(ce_host, DOCKER_SOURCE) and not exists(ce_host, DOCKER_KEYRING)
    assert package_states(ce_host, docker_repos.DOCKER_CE_PACKAGES) == {}


def test_docker_ce_comes_from_a_signed_deb822_source(ce_host, standins):
    docker = standins["docker"]
    converged(play(ce_host.workspace, ce_host.name, "playbooks/docker.yml"))
    source = sudo(ce_host, f"cat {DOCKER_SOURCE}")
    fields = dict(line.split(": ", 1) for line in source.splitlines() if ": " in line)
    assert fields["Types"] == "deb" and fields["URIs"] == docker.url and fields["Suites"] == "/"
    assert fields["Signed-By"] == DOCKER_KEYRING
    assert sudo(ce_host, f"sha256sum {DOCKER_KEYRING}").split()[0] == docker.key_sha256
    states = package_states(ce_host, docker_repos.DOCKER_CE_PACKAGES)
    assert states == {n: f"ii {docker_repos.DOCKER_DEB_VERSION}" for n in docker_repos.DOCKER_CE_PACKAGES}
    assert docker.url in ce_host.ssh("apt-cache policy docker-ce").stdout
    assert sudo(ce_host, "docker info --format '{{.ServerVersion}}'").strip() == docker_repos.DOCKER_VERSION


def test_docker_ce_second_run_changes_nothing(ce_host):
    before = docker_process(ce_host)
    assert converged(play(ce_host.workspace, ce_host.name, "playbooks/docker.yml")).changed == 0
    assert docker_process(ce_host) == before


def test_docker_ce_checks_pass(ce_host):
    report = verify(ce_host, "docker")
    outcomes = {c["check"]: (c["outcome"], c["message"]) for c in report["checks"]}
    assert report["rc"] == 0 and report["status"] == "passed", outcomes
    assert outcomes["test_docker_sources_are_deb822_and_signed"][0] == "passed"
    assert outcomes["test_docker_sources_use_https"][0] == "skipped"
    assert outcomes["test_docker_sources_use_https"][1].startswith("local mirror")
