"""The verify prefetch (provision/checks/prefetch.py): recorded commands answered from one
round trip, with real results; and the digest and purity of those answers, which verify's kept
results depend on (provision/verify/memo.py).

A testinfra ``local://`` host stands in for the ssh one (the prefetch only sees backend.run):
every command really runs, in a temporary directory of this machine.
"""

import json
import os
import shlex

import pytest
from testinfra.backend import get_backend
from testinfra.host import Host

from provision.checks import prefetch


@pytest.fixture
def local(tmp_path):
    host = Host(get_backend("local://"))  # not testinfra.get_host: that one is cached
    calls = []
    original = host.backend.run

    def counting(command, *args, **kwargs):
        calls.append(host.backend.get_command(command, *args))
        return original(command, *args, **kwargs)

    host.backend.run = counting
    return host, calls


def commands_in(tmp_path):
    counter = tmp_path / "counter"
    return [
        f"printf 'x\\n' >> {counter}; wc -l < {counter}",
        "printf 'out\\0bin\\377'; printf 'err' >&2; exit 3",
        "echo \"it's quoted\" '$HOME'",
    ]


def test_recorded_commands_come_back_from_one_round_trip_with_real_results(tmp_path, local):
    host, calls = local
    live = [host.run(c) for c in commands_in(tmp_path)]
    (tmp_path / "counter").unlink()
    directory = tmp_path / "rec"
    directory.mkdir()
    (directory / "local.json").write_text(json.dumps(commands_in(tmp_path)))
    host.backend.get_hostname = lambda: "local"
    calls.clear()
    fetcher = prefetch.Prefetcher(directory)
    fetcher.install(host)
    got = [host.run(c) for c in commands_in(tmp_path)]
    assert len(calls) == 1 and calls[0].startswith("/bin/sh -c ")
    assert [(r.rc, r.stdout_bytes, r.stderr_bytes) for r in got] == [
        (r.rc, r.stdout_bytes, r.stderr_bytes) for r in live]
    assert got[1].rc == 3 and got[1].stdout_bytes == b"out\0bin\377"
    assert fetcher.answered["local"] == 3


def test_a_command_asked_again_or_not_recorded_runs_live(tmp_path, local):
    host, calls = local
    host.backend.get_hostname = lambda: "local"
    counter = commands_in(tmp_path)[0]
    directory = tmp_path / "rec"
    directory.mkdir()
    (directory / "local.json").write_text(json.dumps([counter]))
    fetcher = prefetch.Prefetcher(directory)
    fetcher.install(host)
    assert host.run(counter).stdout.strip() == "1"     # from the prefetch
    assert host.run(counter).stdout.strip() == "2"     # asked again: live
    assert host.run("echo new").stdout == "new\n"      # not recorded: live
    assert len(calls) == 3 and fetcher.answered["local"] == 1
    fetcher.save()
    assert json.loads((directory / "local.json").read_text()) == [counter, counter, "echo new"]


def test_no_record_means_every_command_runs_live_and_is_recorded(tmp_path, local):
    host, calls = local
    host.backend.get_hostname = lambda: "rig-1"
    fetcher = prefetch.Prefetcher(tmp_path / "rec")
    fetcher.install(host)
    assert host.run("echo %s", "a b").stdout == "a b\n"
    assert calls == [f"echo {shlex.quote('a b')}"]
    fetcher.save()
    assert json.loads((tmp_path / "rec" / "rig-1.json").read_text()) == [calls[0]]


def test_a_broken_prefetch_falls_back_to_live_commands(tmp_path, local):
    host, calls = local
    host.backend.get_hostname = lambda: "local"
    directory = tmp_path / "rec"
    directory.mkdir()
    (directory / "local.json").write_text(json.dumps(["echo one", "kill -9 $PPID"]))
    fetcher = prefetch.Prefetcher(directory)
    fetcher.install(host)
    assert host.run("echo one").stdout == "one\n"
    assert fetcher.answered["local"] == 0 and len(calls) == 2  # the failed fetch, then live


def archive(files: dict[str, bytes]) -> bytes:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


WHOLE = {"1.r": b"0\n", "1.o": b"hi", "1.e": b""}


@pytest.mark.parametrize("garbage", [
    b"", b"motd only\n", f"{prefetch.MARK}\nnot a tar".encode(),
    f"{prefetch.MARK}\n".encode() + archive({"1.r": b"0\n", "1.o": b"hi"}),     # no stderr
    f"{prefetch.MARK}\n".encode() + archive({**WHOLE, "1.r": b"\n"}),           # killed
    f"{prefetch.MARK}\n".encode() + archive(WHOLE)[:700],                       # cut short
])
def test_parse_refuses_output_that_is_not_whole(garbage):
    assert prefetch.parse(garbage, 1) is None


def test_parse_skips_what_a_login_script_printed_first():
    out = f"Welcome\n{prefetch.MARK}\n".encode() + archive(WHOLE)
    assert prefetch.parse(out, 1) == [(0, b"hi", b"")]


def test_commands_beyond_the_argument_limit_are_left_to_run_live():
    big = ["echo " + "x" * 1000] * 200
    text, count = prefetch.script(big)
    assert 0 < count < len(big) and len(text) <= prefetch.MAX_SCRIPT


def test_an_unreadable_record_is_no_record(tmp_path):
    (tmp_path / "h.json").write_text("{not json")
    assert prefetch.load(tmp_path, "h") == []
    assert prefetch.record_path(tmp_path, "../etc/x").parent == tmp_path


def test_a_fleet_is_fetched_at_once_not_host_after_host(tmp_path):
    """Each host's recorded command waits for the other's: only a parallel fetch meets both."""
    directory = tmp_path / "rec"
    directory.mkdir()
    hosts = {}
    for me, other in (("a", "b"), ("b", "a")):
        command = (f"touch {tmp_path}/{me}; i=0; while [ ! -e {tmp_path}/{other} ] && [ $i -lt 100 ];"
                   f" do sleep 0.05; i=$((i+1)); done; [ -e {tmp_path}/{other} ] && echo met")
        (directory / f"{me}.json").write_text(json.dumps([command]))
        host = Host(get_backend("local://"))
        host.backend.get_hostname = lambda me=me: me
        hosts[me] = (host, command)
    fetcher = prefetch.Prefetcher(directory)
    for host, _ in hosts.values():
        fetcher.install(host)
    fetcher.prime(["a", "b"])
    for name, (host, command) in hosts.items():
        assert host.run(command).stdout == "met\n", name
    assert fetcher.answered == {"a": 1, "b": 1}


def test_under_sudo_the_whole_prefetch_takes_one_sudo_not_one_per_command(tmp_path, monkeypatch):
    """testinfra wraps each command in ``sudo /bin/sh -c``; the prefetch runs them all under
    one. A stand-in ``sudo`` on PATH (this machine has none) logs each call, then runs it."""
    bin_dir, log = tmp_path / "bin", tmp_path / "sudo.log"
    bin_dir.mkdir()
    (bin_dir / "sudo").write_text(f'#!/bin/sh\necho call >> {log}\nexec "$@"\n')
    (bin_dir / "sudo").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    # Beyond plain output: what a command could tell apart between a fresh `/bin/sh -c` and
    # the prefetch's subshell (arguments, $0, exit, state left by the command before, stdin,
    # its own EXIT trap).
    commands = ["id -u", "printf 'a\\nb'; exit 4", "echo err >&2", 'echo "$# [$1] $0"',
                "exit 5", "cd / && x=1 && pwd", 'pwd; echo "${x:-unset}"',
                'read line; echo "read $?"', "trap 'echo trapped' EXIT; echo set"]
    live_host = Host(get_backend("local://", sudo=True))
    live = [live_host.run(c) for c in commands]
    assert log.read_text().count("call") >= len(commands)
    log.unlink()
    directory = tmp_path / "rec"
    host = Host(get_backend("local://", sudo=True))
    host.backend.get_hostname = lambda: "rig"
    recorder = prefetch.Prefetcher(directory)
    recorder.install(host)
    recorder.prime(["rig"])
    for c in commands:
        host.run(c)
    recorder.save()
    assert json.loads((directory / "rig.json").read_text()) == commands  # recorded unwrapped
    log.unlink()
    host = Host(get_backend("local://", sudo=True))
    host.backend.get_hostname = lambda: "rig"
    fetcher = prefetch.Prefetcher(directory)
    fetcher.install(host)
    got = [host.run(c) for c in commands]
    assert log.read_text().count("call") == 1
    assert fetcher.answered["rig"] == len(commands)
    assert [(r.rc, r.stdout_bytes, r.stderr_bytes) for r in got] == [
        (r.rc, r.stdout_bytes, r.stderr_bytes) for r in live]
    assert got[0].command.startswith(b"sudo /bin/sh -c ")


# --- the answers' digest and purity: what verify's kept results depend on ----------------


@pytest.fixture
def state(tmp_path):
    """A file on "the host" whose content the recorded command reads."""
    state = tmp_path / "state"
    state.write_text("converged\n")
    directory = tmp_path / "rec"
    directory.mkdir()
    commands = [f"cat {state}", "printf 'bin\\0\\377'; echo err >&2; exit 3"]
    (directory / "local.json").write_text(json.dumps(commands))
    return state, directory, commands


def local_host(name="local"):
    host = Host(get_backend("local://"))  # not testinfra.get_host: that one is cached
    host.backend.get_hostname = lambda: name
    return host


def run_checks_of(directory, commands, given=None):
    """What the plugin sees when the checks run ``commands``: the prefetcher's probes."""
    host = local_host()
    fetcher = prefetch.Prefetcher(directory, given)
    fetcher.install(host)
    outputs = [host.run(c).stdout_bytes for c in commands]
    return fetcher.probes()["local"], outputs


def test_identical_answers_give_the_same_digest_and_one_changed_byte_another(state):
    path, directory, commands = state
    first, _ = run_checks_of(directory, commands)
    second, _ = run_checks_of(directory, commands)
    assert first["pure"] and second["pure"]
    assert first["digest"] == second["digest"]
    path.write_text("convergeD\n")
    third, outputs = run_checks_of(directory, commands)
    assert third["pure"] and third["digest"] != first["digest"]
    assert outputs[0] == b"convergeD\n"


def test_the_digest_tells_apart_where_bytes_sit_and_exit_statuses():
    d = prefetch.digest
    assert d("s", [(0, b"ab", b"c")]) != d("s", [(0, b"a", b"bc")])
    assert d("s", [(0, b"a", b"")]) != d("s", [(1, b"a", b"")])
    assert d("s", [(0, b"a", b"")]) != d("t", [(0, b"a", b"")])


def test_a_command_run_live_makes_the_run_impure(state):
    _, directory, commands = state
    probe, _ = run_checks_of(directory, [*commands, "echo not recorded"])
    assert not probe["pure"]
    probe, _ = run_checks_of(directory, commands[:1])  # the checks ran fewer commands
    assert not probe["pure"]
    probe, _ = run_checks_of(directory / "none", commands)  # no record: every command live
    assert not probe["pure"] and probe["digest"] is None


def test_answers_fetched_by_verify_are_used_instead_of_a_second_round_trip(state):
    path, directory, commands = state
    fetched = prefetch.fetch(local_host().backend.run, commands, sudo=False)
    carried = prefetch.Fetched.from_json(json.loads(json.dumps(fetched.to_json())))
    assert carried == fetched and carried.results[1] == (3, b"bin\0\377", b"err\n")
    path.write_text("changed after the round trip\n")
    probe, outputs = run_checks_of(directory, commands, {"local": carried})
    assert outputs[0] == b"converged\n"  # what the round trip saw, not a second look
    assert probe == {"digest": fetched.digest, "pure": True}


def test_answers_for_another_record_are_not_used(state):
    _, directory, commands = state
    stale = prefetch.fetch(local_host().backend.run, ["echo other"], sudo=False)
    probe, outputs = run_checks_of(directory, commands, {"local": stale})
    assert outputs[0] == b"converged\n" and probe["digest"] != stale.digest
