"""cgroup v1 discovery and path resolution (cgroups.py), from fixture files."""

from __future__ import annotations

import builtins
import errno
from pathlib import Path

import pytest

from navio.runtime import cgroups
from navio.runtime.protocol import Resources

MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


def test_discover_finds_v1_controllers_including_comounted_ones(tmp_path: Path) -> None:
    (tmp_path / "mountinfo").write_text(MOUNTINFO)
    found = cgroups.discover(str(tmp_path / "mountinfo"))
    assert found == {"cpu": Path("/sys/fs/cgroup/cpu,cpuacct"),
                     "cpuacct": Path("/sys/fs/cgroup/cpu,cpuacct"),
                     "memory": Path("/sys/fs/cgroup/memory"),
                     "pids": Path("/sys/fs/cgroup/pids")}


def test_an_absolute_parent_starts_at_each_hierarchys_root() -> None:
    mounts = {"memory": Path("/cg/memory"), "pids": Path("/cg/pids")}
    assert cgroups.resolve("/navio", "podX", "c1", mounts=mounts) == {
        "memory": "/cg/memory/navio/podX/c1", "pids": "/cg/pids/navio/podX/c1"}


def test_limits_are_written_as_the_kubelet_computes_them(tmp_path: Path) -> None:
    group = {c: str(tmp_path / c) for c in ("memory", "cpu", "pids")}
    for d in group.values():
        Path(d).mkdir()
    cgroups.apply_limits(group, Resources(memory_limit=32 << 20, cpu_limit_millis=1,
                                          cpu_request_millis=None, pids_limit=10))
    read = lambda c, f: (tmp_path / c / f).read_text()   # noqa: E731
    assert read("memory", "memory.limit_in_bytes") == str(32 << 20)
    assert read("cpu", "cpu.cfs_quota_us") == "1000"      # the kernel's minimum quota
    assert read("cpu", "cpu.cfs_period_us") == "100000"
    assert read("cpu", "cpu.shares") == "2"               # MilliCPUToShares' minimum
    assert read("pids", "pids.max") == "10"


def test_oom_kills_are_read_from_oom_control(tmp_path: Path) -> None:
    (tmp_path / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert cgroups.oom_kills({"memory": str(tmp_path)}) == 2
    assert cgroups.oom_kills({}) == 0



def test_a_cgroup_being_removed_reads_as_gone(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    """A cgroup directory being removed answers reads with ENODEV: that is "gone", not an
    error that would fail the container's stop or its stats."""
    real_open = builtins.open

    def enodev_open(path: object, *args: object, **kwargs: object) -> object:
        if str(path).startswith(str(tmp_path)):
            raise OSError(errno.ENODEV, "No such device")
        return real_open(path, *args, **kwargs)   # type: ignore[call-overload]

    monkeypatch.setattr(builtins, "open", enodev_open)
    group = {"memory": str(tmp_path), "pids": str(tmp_path), "cpuacct": str(tmp_path)}
    assert cgroups.procs(group) == set()
    assert cgroups.oom_kills(group) == 0
    assert cgroups.usage(group) == (0, 0, 0, 0)
