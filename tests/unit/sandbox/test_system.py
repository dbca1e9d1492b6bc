"""provision.sandbox.system: running tools, locks, atomic files, mount tables, careful deletes.

The tools run here are ``sh`` and ``python``; nothing is mounted and nothing needs root.
"""

import fcntl
import sys
from pathlib import Path

import pytest

from provision.errors import SandboxError, SandboxSetupError
from provision.sandbox.system import (
    APT_HINT,
    _last_line,
    _unescape_mountinfo,
    atomic_write,
    file_lock,
    mount_points,
    mounts_below,
    remove_tree,
    rmdir_quiet,
    run,
    tail,
    tool_env,
    write_in_root,
)


def test_mounts_below_are_deepest_first_and_unescaped():
    info = (
        "1 0 8:1 / / rw - ext4 /dev/vda rw\n"
        "2 1 0:9 / /srv/sb/hosts/a/merged rw - overlay overlay rw\n"
        "3 2 0:5 / /srv/sb/hosts/a/merged/dev rw - devtmpfs udev rw\n"
        "4 1 0:9 / /srv/sb/hosts/ab rw - overlay overlay rw\n"
        "5 1 0:9 / /srv/sb/hosts/a\\040b rw - overlay overlay rw\n"
    )
    assert mounts_below(Path("/srv/sb/hosts/a"), info) == [
        "/srv/sb/hosts/a/merged/dev",
        "/srv/sb/hosts/a/merged",
    ]
    assert mounts_below(Path("/srv/sb/hosts/a b"), info) == ["/srv/sb/hosts/a b"]


def test_mountinfo_escapes_and_short_lines():
    assert _unescape_mountinfo("/a\\040b\\011c\\012d\\134e") == "/a b\tc\nd\\e"
    assert mount_points("1 0 8:1 / / rw - ext4 /dev/vda rw\nshort line\n") == ["/"]


def test_the_system_directories_are_appended_to_path_once(monkeypatch):
    monkeypatch.setenv("PATH", "/opt/tool/bin::/usr/bin")
    parts = tool_env()["PATH"].split(":")
    assert parts[:2] == ["/opt/tool/bin", "/usr/bin"]
    assert parts.count("/usr/bin") == 1 and "/usr/sbin" in parts and "/sbin" in parts
    assert "" not in parts


def test_the_last_line_is_the_last_non_blank_one():
    assert _last_line("first\n  second  \n\n  \n") == "second"
    assert _last_line("") == "" and _last_line(None) == ""


def test_a_failing_tool_is_an_error_quoting_its_last_stderr_line():
    with pytest.raises(SandboxError) as err:
        run(["sh", "-c", "echo progress; echo 'warning' >&2; echo 'E: no bridge' >&2; exit 3"],
            what="creating the bridge")
    assert err.value.message == "creating the bridge failed (exit 3): E: no bridge"
    assert err.value.hint == (
        "the command was: sh -c echo progress; echo 'warning' >&2; echo 'E: no bridge' >&2; exit 3"
    )


def test_without_stderr_the_last_stdout_line_is_quoted_and_check_false_returns():
    with pytest.raises(SandboxError, match=r"failed \(exit 1\): said this"):
        run(["sh", "-c", "echo said this; exit 1"], hint="do that")
    cp = run(["sh", "-c", "cat; exit 4"], check=False, input="fed\n")
    assert (cp.returncode, cp.stdout) == (4, "fed\n")


def test_a_missing_tool_names_the_packages_and_a_hung_one_times_out():
    with pytest.raises(SandboxSetupError, match="no-such-tool-rigforge is not installed") as err:
        run(["no-such-tool-rigforge"])
    assert err.value.hint == APT_HINT
    with pytest.raises(SandboxError, match=r"waiting: no answer within 0\.3 s"):
        run([sys.executable, "-c", "import time; time.sleep(10)"], timeout=0.3, what="waiting")


def test_a_held_lock_is_waited_for_and_then_named(tmp_path):
    path = tmp_path / "locks" / ".hosts.lock"
    held = r"another rigforge process has been changing sandbox hosts for over 0\.3 s"
    # another open file description conflicts, as another process's would
    with (
        file_lock(path, 1, "changing sandbox hosts"),
        pytest.raises(SandboxError, match=held) as err,
        file_lock(path, 0.3, "changing sandbox hosts"),
    ):
        pass
    assert str(path) in err.value.hint
    # released at the end of the block, and taken again by the next one
    with file_lock(path, 0.3, "changing sandbox hosts"), open(path) as fh, pytest.raises(BlockingIOError):
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_an_atomic_write_leaves_no_temporary_file_and_sets_the_mode(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("old")
    atomic_write(path, "new\n", 0o600)
    assert path.read_text() == "new\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_writing_in_a_guest_root_replaces_a_symlink_instead_of_following_it(tmp_path):
    outside = tmp_path / "host-resolv.conf"
    outside.write_text("nameserver 192.0.2.1\n")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/resolv.conf").symlink_to(outside)
    write_in_root(root, "etc/resolv.conf", "nameserver 198.51.100.1\n")
    assert outside.read_text() == "nameserver 192.0.2.1\n"
    assert not (root / "etc/resolv.conf").is_symlink()
    assert (root / "etc/resolv.conf").read_text() == "nameserver 198.51.100.1\n"
    write_in_root(root, "etc/new/dir/file", "x")  # missing directories are made
    assert (root / "etc/new/dir/file").read_text() == "x"


def test_rmdir_quiet_says_whether_the_directory_is_gone(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("")
    (tmp_path / "empty").mkdir()
    assert rmdir_quiet(tmp_path / "missing") is True
    assert rmdir_quiet(tmp_path / "empty") is True and not (tmp_path / "empty").exists()
    assert rmdir_quiet(tmp_path / "full") is False
    with pytest.raises(NotADirectoryError):
        rmdir_quiet(tmp_path / "full" / "f")


def test_a_tree_without_mounts_is_removed_and_a_missing_one_is_fine(tmp_path):
    (tmp_path / "host" / "upper" / "etc").mkdir(parents=True)
    (tmp_path / "host" / "upper" / "etc" / "hostname").write_text("rig1\n")
    remove_tree(tmp_path / "host")
    remove_tree(tmp_path / "host")
    assert list(tmp_path.iterdir()) == []


def test_tail_gives_the_last_lines_or_nothing(tmp_path):
    log = tmp_path / "console.log"
    log.write_text("".join(f"line {i}\n" for i in range(20)))
    assert tail(log, 3) == "line 17\nline 18\nline 19"
    assert tail(tmp_path / "missing") == ""
    log.write_bytes(b"x" * 10000 + b"\nlast \xff\n")  # only the end is read, bad bytes replaced
    assert tail(log, 1) == "last \ufffd"
