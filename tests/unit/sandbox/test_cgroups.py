"""provision.sandbox.cgroups: which cgroup we are in, and the per-host cgroup trees.

The trees are plain directories under tmp_path: the logic tested is the walk, the order and
the file contents, not the kernel's cgroupfs.
"""

import os
from pathlib import Path

from provision.sandbox.cgroups import (
    GROUP,
    _copy_cpuset,
    current_cgroup_dirs,
    enter,
    kill_all,
    parse_cgroup_mounts,
    parse_proc_cgroup,
    pids_in,
    remove,
    remove_groups,
)

HYBRID_CGROUP = """\
9:name=systemd:/
4:memory:/jobs/42
3:cpu,cpuacct:/
0::/
"""
HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
"""


def test_cgroup_dirs_of_a_hybrid_layout():
    assert parse_proc_cgroup("3:cpu,cpuacct:/a\n") == [(frozenset({"cpu", "cpuacct"}), "/a")]
    assert current_cgroup_dirs(HYBRID_CGROUP, HYBRID_MOUNTINFO) == [
        Path("/sys/fs/cgroup/systemd"),
        Path("/sys/fs/cgroup/memory/jobs/42"),
        Path("/sys/fs/cgroup/cpu,cpuacct"),
        Path("/sys/fs/cgroup/unified"),
    ]


def test_cgroup_dirs_of_v2_and_of_a_container_view():
    v2 = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n"
    assert current_cgroup_dirs("0::/user.slice/x.scope\n", v2) == [Path("/sys/fs/cgroup/user.slice/x.scope")]
    boxed = "30 23 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    assert current_cgroup_dirs("0::/docker/abc/ci\n", boxed) == [Path("/sys/fs/cgroup/ci")]


def test_cgroup_mounts_are_only_cgroup_filesystems_with_their_options():
    assert parse_cgroup_mounts(HYBRID_MOUNTINFO + "garbage line\n50 1 0:1 / - short\n") == [
        (frozenset({"rw", "cpu", "cpuacct"}), "/", "/sys/fs/cgroup/cpu,cpuacct"),
        (frozenset({"rw", "memory"}), "/", "/sys/fs/cgroup/memory"),
        (frozenset({"rw", "xattr", "name=systemd"}), "/", "/sys/fs/cgroup/systemd"),
        (frozenset(), "/", "/sys/fs/cgroup/unified"),
    ]


def test_a_hierarchy_without_a_mount_is_left_out():
    only_memory = "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    assert current_cgroup_dirs("4:memory:/a\n3:pids:/b\n0::/c\n", only_memory) == [
        Path("/sys/fs/cgroup/memory/a")
    ]


def test_proc_cgroup_lines_that_are_not_entries_are_skipped():
    assert parse_proc_cgroup("\nnonsense\n12:pids:/a:b\n") == [(frozenset({"pids"}), "/a:b")]


def test_a_new_cpuset_gets_its_parents_cpus_and_memory_nodes_once(tmp_path):
    parent, child = tmp_path / "p", tmp_path / "p" / "c"
    child.mkdir(parents=True)
    (parent / "cpuset.cpus").write_text("0-3\n")
    (parent / "cpuset.mems").write_text("0\n")
    (child / "cpuset.cpus").write_text("\n")
    (child / "cpuset.mems").write_text("1\n")  # already set: left alone
    _copy_cpuset(parent, child)
    assert (child / "cpuset.cpus").read_text() == "0-3\n"
    assert (child / "cpuset.mems").read_text() == "1\n"


def test_entering_writes_our_pid_into_every_directory(tmp_path):
    dirs = [tmp_path / "a", tmp_path / "b"]
    for d in dirs:
        d.mkdir()
    enter([str(d) for d in dirs])
    assert [(d / "cgroup.procs").read_text() for d in dirs] == [str(os.getpid())] * 2


def test_pids_are_collected_from_the_whole_tree(tmp_path):
    top = tmp_path / GROUP / "rig1"
    (top / "payload" / "init.scope").mkdir(parents=True)
    (top / "cgroup.procs").write_text("10\n")
    (top / "payload" / "cgroup.procs").write_text("")
    (top / "payload" / "init.scope" / "cgroup.procs").write_text("11\n12\nx\n")
    assert pids_in([top, tmp_path / "missing"]) == {10, 11, 12}
    kill_all([tmp_path / "missing"])  # nothing left to kill: returns at once


def test_trees_are_removed_deepest_first_and_what_stays_is_reported(tmp_path):
    gone, busy = tmp_path / GROUP / "rig1", tmp_path / GROUP / "rig2"
    (gone / "payload" / "init.scope").mkdir(parents=True)
    (busy / "payload").mkdir(parents=True)
    (busy / "payload" / "cgroup.procs").write_text("7\n")  # cgroupfs would refuse: not empty
    assert remove([gone, busy, tmp_path / "missing"], timeout=0.2) == [busy / "payload", busy]
    assert not gone.exists()
    remove_groups([gone, busy])
    assert (tmp_path / GROUP).is_dir()  # rig2 is still there
    (busy / "payload" / "cgroup.procs").unlink()
    assert remove([busy]) == []
    remove_groups([busy, tmp_path / "other" / "rig3"])
    assert not (tmp_path / GROUP).exists() and tmp_path.is_dir()
