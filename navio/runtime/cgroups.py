"""cgroup v1 (cgroupfs driver) for pods and containers: memory, cpu, pids limits and usage.

Why: PLATFORM.md — this kind of machine has cgroup v1 only (the unified hierarchy is empty)
and no systemd, so limits are written straight into the v1 hierarchies, under a configurable
parent. A parent starting with "/" is taken from each hierarchy's root; a relative parent is
nested under the cgroup this process already runs in (what tests and nested agents use, since
their shell may already sit in a limited memory cgroup).

A cgroup is handled as a JSON-friendly dict {controller: absolute directory}, so the runtime
can persist it and the supervisor can use it without re-deriving anything.

Guarantees: limits are written before any process joins (a container's process joins its own
cgroup before exec). `oom_kills` counts kernel OOM kills inside the cgroup (memory.oom_control
`oom_kill`), the evidence for the "OOMKilled" reason. `remove` only removes empty cgroups and
reports whether everything is gone; it never touches a cgroup outside the given dirs.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path

from navio.runtime.protocol import Resources

__all__ = ["CONTROLLERS", "Cgroup", "apply_limits", "available", "create", "discover", "join",
           "oom_kills", "procs", "remove", "resolve", "signal_all", "usage"]

CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "freezer")
_CFS_PERIOD_US = 100_000
_MIN_QUOTA_US = 1_000
_MIN_SHARES = 2

Cgroup = dict[str, str]   # controller -> absolute cgroup directory


def discover(mountinfo: str = "/proc/self/mountinfo") -> dict[str, Path]:
    """The mount point of each v1 controller we use that is mounted."""
    found: dict[str, Path] = {}
    try:
        with open(mountinfo) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return found
    for line in lines:
        pre, _, post = line.partition(" - ")
        parts, post_parts = pre.split(), post.split()
        if len(parts) < 5 or len(post_parts) < 3 or post_parts[0] != "cgroup":
            continue
        options = set(post_parts[2].split(","))
        for controller in CONTROLLERS:
            if controller in options:
                found.setdefault(controller, Path(parts[4]))
    return found


def available(mounts: dict[str, Path] | None = None) -> bool:
    """Limits can be enforced: root, and the memory, cpu and pids hierarchies are mounted."""
    mounts = discover() if mounts is None else mounts
    return os.geteuid() == 0 and all(c in mounts for c in ("memory", "cpu", "pids"))


def _own_paths(proc_cgroup: str = "/proc/self/cgroup") -> dict[str, str]:
    paths: dict[str, str] = {}
    with open(proc_cgroup) as f:
        for line in f.read().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(","):
                if controller:
                    paths[controller] = path
    return paths


def resolve(parent: str, *names: str, mounts: dict[str, Path] | None = None) -> Cgroup:
    """The cgroup `parent/names...` in every mounted controller (see the module doc for how
    a relative parent is anchored)."""
    mounts = discover() if mounts is None else mounts
    own = _own_paths() if not parent.startswith("/") else {}
    out: Cgroup = {}
    for controller, mount in mounts.items():
        base = mount / own.get(controller, "/").lstrip("/") if own else mount
        out[controller] = str(base.joinpath(parent.lstrip("/"), *names))
    return out


def create(cgroup: Cgroup) -> None:
    for directory in cgroup.values():
        os.makedirs(directory, exist_ok=True)


def _write(directory: str, name: str, value: object) -> None:
    with open(os.path.join(directory, name), "w") as f:
        f.write(str(value))


def _read(directory: str, name: str) -> str | None:
    """The file's text, or None when the cgroup is gone — or going: a cgroup being removed
    answers reads with ENODEV before its directory disappears."""
    try:
        with open(os.path.join(directory, name)) as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno == errno.ENODEV:
            return None
        raise


def apply_limits(cgroup: Cgroup, resources: Resources) -> None:
    """Write the limits of `resources` (unset ones stay unlimited)."""
    if resources.memory_limit is not None and "memory" in cgroup:
        d = cgroup["memory"]
        _write(d, "memory.limit_in_bytes", resources.memory_limit)
        if os.path.exists(os.path.join(d, "memory.memsw.limit_in_bytes")):
            try:   # no swapping past the limit, as the kubelet asks of runc
                _write(d, "memory.memsw.limit_in_bytes", resources.memory_limit)
            except OSError:
                pass
    if "cpu" in cgroup:
        d = cgroup["cpu"]
        if resources.cpu_limit_millis is not None:
            quota = max(_MIN_QUOTA_US, resources.cpu_limit_millis * _CFS_PERIOD_US // 1000)
            _write(d, "cpu.cfs_period_us", _CFS_PERIOD_US)
            _write(d, "cpu.cfs_quota_us", quota)
        request = resources.cpu_request_millis
        if request is None:
            request = resources.cpu_limit_millis
        if request is not None:   # kubelet's MilliCPUToShares
            _write(d, "cpu.shares", max(_MIN_SHARES, request * 1024 // 1000))
    if resources.pids_limit is not None and "pids" in cgroup:
        _write(cgroup["pids"], "pids.max", resources.pids_limit)


def join(cgroup: Cgroup, pid: int = 0) -> None:
    """Move `pid` (0: the calling process) into every hierarchy of `cgroup`."""
    for directory in cgroup.values():
        _write(directory, "cgroup.procs", pid)


def procs(cgroup: Cgroup) -> set[int]:
    """Pids in the cgroup (and, for v1, only that exact cgroup), across hierarchies."""
    pids: set[int] = set()
    for directory in cgroup.values():
        text = _read(directory, "cgroup.procs")
        if text:
            pids.update(int(p) for p in text.split())
    return pids


def signal_all(cgroup: Cgroup, sig: int = signal.SIGKILL) -> int:
    """Send `sig` to every process in the cgroup; the number signalled."""
    count = 0
    for pid in procs(cgroup):
        try:
            os.kill(pid, sig)
            count += 1
        except ProcessLookupError:
            pass
    return count


def oom_kills(cgroup: Cgroup) -> int:
    text = _read(cgroup.get("memory", ""), "memory.oom_control") if "memory" in cgroup else None
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return 0


def usage(cgroup: Cgroup) -> tuple[int, int, int, int]:
    """(cpu ns, memory usage bytes, working set bytes, pids) as cadvisor computes them:
    working set = usage - inactive file pages."""
    cpu = int((_read(cgroup.get("cpuacct", ""), "cpuacct.usage") or "0").strip() or 0)
    mem = int((_read(cgroup.get("memory", ""), "memory.usage_in_bytes") or "0").strip() or 0)
    inactive = 0
    for line in (_read(cgroup.get("memory", ""), "memory.stat") or "").splitlines():
        key, _, value = line.partition(" ")
        if key == "total_inactive_file":
            inactive = int(value)
    pids = int((_read(cgroup.get("pids", ""), "pids.current") or "0").strip() or 0)
    return cpu, mem, max(0, mem - inactive), pids


def remove(cgroup: Cgroup, *, timeout: float = 5.0) -> bool:
    """Kill what is left and rmdir each directory; True when all are gone. Safe to repeat.
    Directories below (child cgroups) are removed first."""
    deadline = time.monotonic() + timeout
    remaining = [d for d in cgroup.values() if os.path.isdir(d)]
    while remaining:
        left = []
        for directory in remaining:
            for sub in sorted(Path(directory).glob("*/"), key=lambda p: -len(p.parts)):
                if sub.is_dir():
                    remove({"x": str(sub)}, timeout=max(0.0, deadline - time.monotonic()))
            try:
                os.rmdir(directory)
            except FileNotFoundError:
                pass
            except OSError:   # EBUSY: processes still exiting
                signal_all({"x": directory})
                left.append(directory)
        remaining = left
        if remaining:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
    return True
