"""provision.sandbox.container: the Podman and Docker command lines and what they report."""

import subprocess
from pathlib import Path

import pytest

from provision.errors import EXIT_USAGE, SandboxSetupError
from provision.sandbox import container
from provision.sandbox.container import LABEL, Engine, engine


def _run(eng, **kw):
    args = {"netns": "rigforge-rig1", "port": None, "dns": "192.0.2.53", "docker_dir": Path("/s/rig1/docker")}
    args.update(kw)
    return eng.run_argv("rig1", "localhost/rigforge-sandbox:bookworm-abc", **args)


def test_podman_on_a_hybrid_cgroup_layout_uses_runc_and_cgroupfs():
    assert Engine("podman", "/usr/bin/podman", cgroup_v2=False).base() == [
        "/usr/bin/podman", "--cgroup-manager", "cgroupfs", "--runtime", "runc"]
    assert Engine("podman", "/usr/bin/podman", cgroup_v2=True).base() == [
        "/usr/bin/podman", "--cgroup-manager", "cgroupfs"]
    assert Engine("docker", "/usr/bin/docker").base() == ["/usr/bin/docker"]


def test_a_podman_host_joins_its_own_namespace_and_boots_systemd():
    argv = _run(Engine("podman", "podman", cgroup_v2=False))
    joined = " ".join(argv)
    assert argv[-2:] == ["localhost/rigforge-sandbox:bookworm-abc", "/sbin/init"]
    assert "--network ns:/run/netns/rigforge-rig1" in joined and "--publish" not in joined
    assert "--systemd always" in joined and "--privileged" in joined
    assert f"--label {LABEL}=rig1" in joined and "--name rigforge-rig1" in joined
    assert "--ulimit nofile=20000:20000" in joined and "--stop-signal SIGRTMIN+3" in joined
    assert "--add-host rig1:127.0.1.1" in joined and "--dns 192.0.2.53" in joined
    assert "--volume /s/rig1/docker:/var/lib/docker" in joined


def test_a_docker_host_publishes_ssh_on_loopback_and_shares_the_cgroup_tree():
    argv = _run(Engine("docker", "docker"), netns=None, port=40022)
    joined = " ".join(argv)
    published = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--publish"]
    assert published == ["127.0.0.1:40022:22"]  # never on every address of the machine
    assert "--network" not in joined and "ns:" not in joined and "--add-host" not in joined
    assert "--cgroupns host --volume /sys/fs/cgroup:/sys/fs/cgroup:rw" in joined
    assert "--systemd" not in joined and "--privileged" in joined and "--cap-add" not in joined
    assert f"--label {LABEL}=rig1" in joined and "--name rigforge-rig1 --hostname rig1" in joined
    assert "--stop-signal SIGRTMIN+3" in joined and "--tmpfs /run --tmpfs /run/lock" in joined
    assert "--ulimit nofile=20000:20000 --ulimit nproc=32768:32768" in joined
    assert "--volume /s/rig1/docker:/var/lib/docker" in joined and "--dns 192.0.2.53" in joined
    assert argv[:3] == ["docker", "run", "--detach"]
    assert argv[-2:] == ["localhost/rigforge-sandbox:bookworm-abc", "/sbin/init"]


def test_docker_where_the_bounding_set_lacks_a_capability_spells_out_privileged_without_it():
    # --privileged makes runc ask for every capability: "unable to apply caps" on such a machine
    argv = _run(Engine("docker", "docker", lacking_caps=("SYS_RESOURCE",)), netns=None, port=40022)
    joined = " ".join(argv)
    assert "--privileged" not in argv
    assert "--cap-add ALL --cap-drop SYS_RESOURCE" in joined
    for opt in ("seccomp=unconfined", "apparmor=unconfined", "label=disable", "systempaths=unconfined"):
        assert f"--security-opt {opt}" in joined
    assert argv[argv.index("--device-cgroup-rule") + 1] == "a *:* rwm"
    assert "--publish 127.0.0.1:40022:22" in joined and "--cgroupns host" in joined
    # podman leaves out what the machine lacks by itself
    assert "--privileged" in _run(Engine("podman", "podman", lacking_caps=("SYS_RESOURCE",)))


def _proc(tmp_path, last_cap: str, bounding: str):
    (tmp_path / "sys/kernel").mkdir(parents=True)
    (tmp_path / "self").mkdir()
    (tmp_path / "sys/kernel/cap_last_cap").write_text(f"{last_cap}\n")
    (tmp_path / "self/status").write_text(f"Name:\tpython\nCapPrm:\t0\nCapBnd:\t{bounding}\nCapAmb:\t0\n")
    return tmp_path


def test_the_capabilities_a_machine_lacks_are_read_from_the_bounding_set(tmp_path):
    lacking = container.lacking_capabilities
    assert lacking(_proc(tmp_path / "a", "40", "000001fffeffffff")) == ("SYS_RESOURCE",)  # this VM
    assert lacking(_proc(tmp_path / "b", "40", "000001ffffffffff")) == ()
    # capabilities newer than the kernel are not lacking: --privileged does not ask for them
    assert lacking(_proc(tmp_path / "c", "37", "0000003fffffffff")) == ()
    assert lacking(_proc(tmp_path / "d", "40", "000001fffefffffe")) == ("CHOWN", "SYS_RESOURCE")
    assert container.lacking_capabilities(tmp_path / "absent") == ()
    assert len(container.CAPABILITIES) == 41 and container.CAPABILITIES[24] == "SYS_RESOURCE"


def test_only_a_docker_engine_is_given_what_the_machine_lacks(monkeypatch):
    monkeypatch.setattr(container, "which", lambda tool: f"/opt/{tool}")
    monkeypatch.setattr(container, "_WORKS", {"/opt/docker": True, "/opt/podman": True})
    monkeypatch.setattr(container, "lacking_capabilities", lambda: ("SYS_RESOURCE",))
    assert engine("docker").lacking_caps == ("SYS_RESOURCE",)
    assert engine("podman").lacking_caps == ()


def test_stop_gives_the_grace_with_the_short_flag_both_docker_generations_take(monkeypatch):
    eng = Engine("docker", "docker")
    monkeypatch.setattr(Engine, "state", lambda self, name: (True, 42))
    calls = []
    monkeypatch.setattr(container, "run", lambda argv, **kw: calls.append(argv))
    eng.stop("rigforge-rig1", grace=7)
    assert calls == [["docker", "stop", "-t", "7", "rigforge-rig1"]]


def test_an_absent_engine_is_bad_input_that_names_the_install(monkeypatch):
    monkeypatch.setattr(container, "which", lambda tool: None)
    with pytest.raises(SandboxSetupError) as err:
        engine("podman")
    assert err.value.exit_code == EXIT_USAGE
    assert "needs `podman`" in err.value.message and "apt-get install podman" in err.value.hint
    with pytest.raises(SandboxSetupError, match="unknown container engine 'lxc'"):
        engine("lxc")


def _answering(monkeypatch, replies):
    """subprocess.run that answers each command by its first matching word."""
    calls = []

    def fake(argv, **kw):
        calls.append(argv)
        for word, (rc, out) in replies.items():
            if word in argv:
                return subprocess.CompletedProcess(argv, rc, out, "")
        return subprocess.CompletedProcess(argv, 1, "", "no such thing")

    monkeypatch.setattr(container.subprocess, "run", fake)
    return calls


def test_the_state_of_a_container_is_running_and_its_pid(monkeypatch):
    eng = Engine("podman", "podman")
    _answering(monkeypatch, {"inspect": (0, "true 4242\n")})
    assert eng.state("rigforge-rig1") == (True, 4242)
    _answering(monkeypatch, {"inspect": (0, "false 0\n")})
    assert eng.state("rigforge-rig1") == (False, None)
    _answering(monkeypatch, {})
    assert eng.state("rigforge-rig1") == (False, None) and not eng.exists("rigforge-rig1")


def test_host_keys_are_read_from_inside_the_container_strongest_first(monkeypatch):
    eng = Engine("podman", "podman")
    calls = []

    def fake(argv, **kw):
        calls.append(argv)
        # the shell's cat prints the files that exist, in the order asked (ecdsa's is missing)
        out = "ssh-ed25519 AAAAC3 root@rig1\nssh-rsa AAAAB3 root@rig1\n"
        return subprocess.CompletedProcess(argv, 0, out, "")

    monkeypatch.setattr(container.subprocess, "run", fake)
    assert eng.host_keys("rigforge-rig1") == ("ssh-ed25519 AAAAC3", "ssh-rsa AAAAB3")
    assert len(calls) == 1 and calls[0][-3:-1] == ["sh", "-c"]
    assert calls[0][-1].split()[1:4] == [f"/etc/ssh/{name}" for name in container.HOSTKEY_FILES]


def test_with_the_init_pid_host_keys_are_read_through_its_root_without_a_process(tmp_path, monkeypatch):
    eng = Engine("podman", "podman")
    ssh = tmp_path / "proc" / "4242" / "root" / "etc" / "ssh"
    ssh.mkdir(parents=True)
    (ssh / "ssh_host_rsa_key.pub").write_text("ssh-rsa AAAAB3 root@rig1\n")
    (ssh / "ssh_host_ed25519_key.pub").write_text("ssh-ed25519 AAAAC3 root@rig1\n")
    real_path = container.Path
    monkeypatch.setattr(container, "Path", lambda p: real_path(str(tmp_path) + p))
    monkeypatch.setattr(container.subprocess, "run", lambda *a, **k: pytest.fail("a process was started"))
    assert eng.host_keys("rigforge-rig1", 4242) == ("ssh-ed25519 AAAAC3", "ssh-rsa AAAAB3")


def test_what_an_image_lacks_is_named_and_an_image_that_cannot_start_says_so(monkeypatch):
    eng = Engine("podman", "podman")
    calls = _answering(monkeypatch, {"run": (0, "sshd\npython3\n")})
    assert eng.missing_in_image("ubuntu:24.04") == ["sshd", "python3"]
    assert "--rm" in calls[0] and "ubuntu:24.04" in calls[0]
    _answering(monkeypatch, {})
    assert eng.missing_in_image("nothing:here") is None


def test_containers_using_an_image_are_found_by_rigforges_label(monkeypatch):
    eng = Engine("podman", "podman")
    calls = _answering(monkeypatch, {"ps": (0, "rigforge-a localhost/x:1\nrigforge-b localhost/y:2\n")})
    assert eng.containers_using("localhost/x:1") == ["rigforge-a"]
    assert f"label={LABEL}" in calls[0]


def test_an_engine_that_does_not_answer_is_refused_with_how_to_start_it(monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(container, "which", lambda tool: f"/opt/{tool}")
    monkeypatch.setattr(container, "_WORKS", {})
    _answering(monkeypatch, {})  # `docker info`: cannot connect to the daemon
    with pytest.raises(SandboxSetupError) as err:
        engine("docker")
    assert err.value.exit_code == EXIT_USAGE
    assert "`/opt/docker info` fails" in err.value.message and "systemctl start docker" in err.value.hint
    assert "DOCKER_HOST" not in err.value.hint
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/elsewhere.sock")
    monkeypatch.setattr(container, "_WORKS", {})
    with pytest.raises(SandboxSetupError) as err:
        engine("docker")
    assert "check DOCKER_HOST (unix:///run/elsewhere.sock)" in err.value.hint
    _answering(monkeypatch, {"info": (0, "amd64\n")})
    monkeypatch.setattr(container, "_WORKS", {})
    assert engine("podman").binary == "/opt/podman"
