"""Linux namespace, mount and process-identity primitives (ctypes over libc).

Why: Python 3.11 has no `os.setns`/`os.unshare`/`mount`; the pause, supervisor and exec
helpers, the port-forwarder and the runtime all need them, plus one way to tell whether a
pid still names the process we started (pid + start time, so a recycled pid never matches).

Guarantees: every wrapper raises OSError with the errno on failure. `socket_in_netns` changes
namespaces only on a short-lived thread of its own, so no other thread ever runs in a pod's
network namespace.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
import sys
import threading
from typing import Callable, TypeVar

__all__ = [
    "CLONE_NEWIPC", "CLONE_NEWNET", "CLONE_NEWNS", "CLONE_NEWPID", "CLONE_NEWUTS", "MNT_DETACH",
    "MS_BIND", "MS_NODEV", "MS_NOEXEC", "MS_NOSUID", "MS_PRIVATE", "MS_RDONLY", "MS_REC",
    "MS_REMOUNT", "MS_SHARED", "MS_SLAVE", "NETNS_DIR", "available", "create_netns",
    "delete_netns", "mount", "process_alive", "proc_starttime", "run_in_netns",
    "set_child_subreaper", "set_parent_death_signal", "setns", "setns_path", "socket_in_netns",
    "umount", "unshare",
]

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MNT_DETACH = 2

NETNS_DIR = "/run/netns"   # where `ip netns` keeps named network namespaces

_LINUX = sys.platform.startswith("linux")
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36

_T = TypeVar("_T")
_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    return _libc


def _check(rc: int, what: str, arg: str = "") -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", arg or None)


def available() -> bool:
    """True when this process may create namespaces and mounts (root on Linux)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0 and os.path.isdir("/proc/self/ns")


def setns(fd: int, nstype: int) -> None:
    """Join the namespace `fd` refers to (a /proc/<pid>/ns/* or /run/netns/* file)."""
    _check(_lib().setns(fd, nstype), "setns")


def setns_path(path: str, nstype: int) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd, nstype)
    finally:
        os.close(fd)


def unshare(flags: int) -> None:
    _check(_lib().unshare(flags), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int,
          data: str | None = None) -> None:
    def enc(s: str | None) -> bytes | None:
        return None if s is None else os.fsencode(s)
    _check(_lib().mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags),
                        enc(data)), "mount", target)


def umount(target: str, flags: int = 0) -> None:
    _check(_lib().umount2(os.fsencode(target), flags), "umount", target)


def set_child_subreaper() -> None:
    """Orphaned descendants are re-parented to this process (which must reap them); a no-op
    off Linux."""
    if _LINUX:
        _check(_lib().prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl")


def set_parent_death_signal(sig: int) -> None:
    if _LINUX:
        _check(_lib().prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0), "prctl")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may contain spaces and parentheses; it ends at the last ")".
    return data[data.rfind(")") + 2:].split()


def proc_starttime(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (stat field 22), or None."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def process_alive(pid: int | None, starttime: int | None) -> bool:
    """Whether `pid` still names the live (not zombie) process that started at `starttime`.
    Without /proc (not Linux) only whether some process has that pid."""
    if not pid or pid <= 0:
        return False
    if not _LINUX:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
    fields = _stat_fields(pid)
    if not fields or len(fields) <= 19 or fields[0] in ("Z", "X", "x"):
        return False
    return starttime is None or int(fields[19]) == starttime


def run_in_netns(netns_path: str, fn: Callable[[], _T], *, timeout: float = 10.0) -> _T:
    """Run `fn` on a fresh thread that has joined `netns_path`; the thread ends afterwards,
    so the namespace switch can never leak into another thread. Blocking: call it through
    `asyncio.to_thread`."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            setns_path(netns_path, CLONE_NEWNET)
            box["value"] = fn()
        except BaseException as exc:  # handed back to the caller below
            box["error"] = exc

    thread = threading.Thread(target=target, name="navio-netns", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"no answer from netns {netns_path} within {timeout}s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def socket_in_netns(netns_path: str, family: int = socket.AF_INET,
                    kind: int = socket.SOCK_STREAM, proto: int = 0) -> socket.socket:
    """A socket created inside `netns_path`: it keeps that namespace for its whole life."""
    return run_in_netns(netns_path, lambda: socket.socket(family, kind, proto))


def _share_netns_dir() -> None:
    """Make NETNS_DIR a shared mount point, as `ip netns add` does, so a namespace bound
    there shows in every mount namespace created later (a pod's, a container's)."""
    os.makedirs(NETNS_DIR, mode=0o755, exist_ok=True)
    try:
        mount("none", NETNS_DIR, None, MS_SHARED | MS_REC)
    except OSError:   # not a mount point yet: bind it onto itself first
        mount(NETNS_DIR, NETNS_DIR, None, MS_BIND | MS_REC)
        mount("none", NETNS_DIR, None, MS_SHARED | MS_REC)


def create_netns(name: str, *, timeout: float = 10.0) -> str:
    """Create the named network namespace NETNS_DIR/`name` (`ip netns add`) and return its
    path. Nothing forks: a short-lived thread unshares its own network namespace and binds
    it at the path, then ends, so no other thread ever runs in the new namespace. Blocking:
    call it through `asyncio.to_thread`. FileExistsError when the name is taken."""
    _share_netns_dir()
    path = os.path.join(NETNS_DIR, name)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    box: dict[str, BaseException] = {}

    def target() -> None:
        try:
            unshare(CLONE_NEWNET)
            mount(f"/proc/self/task/{threading.get_native_id()}/ns/net", path, None, MS_BIND)
        except BaseException as exc:  # handed back to the caller below
            box["error"] = exc

    thread = threading.Thread(target=target, name="navio-netns-create", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive() or "error" in box:
        delete_netns(name)
        if "error" in box:
            raise box["error"]
        raise TimeoutError(f"creating netns {name} took over {timeout}s")
    return path


def delete_netns(name: str) -> bool:
    """Remove the named network namespace (`ip netns del`); False if it did not exist. The
    namespace itself lives on while a process or socket still holds it."""
    path = os.path.join(NETNS_DIR, name)
    if not os.path.lexists(path):
        return False
    try:
        umount(path, MNT_DETACH)
    except OSError:   # not mounted: a creation that failed half-way
        pass
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True
