"""Installing a compiled filter on the calling thread, through ctypes.

Why: the supervisor's container child and the exec helper install the container's filter
just before exec; Python has no seccomp binding, so this calls prctl(2) and seccomp(2) from
libc directly.

Guarantees: `install` either installs the filter or raises OSError (the filter is never half
applied). With `no_new_privs` (required when the caller lacks CAP_SYS_ADMIN, which `install`
detects and then sets it anyway) PR_SET_NO_NEW_PRIVS is set first, as the kernel demands.
Everything the caller does after `install` runs under the filter, so install as late as
possible (right before exec).
"""

from __future__ import annotations

import base64
import ctypes
import os
import platform
from typing import Any, Mapping

from navio.runtime.seccomp import syscalls
from navio.runtime.seccomp.compiler import Program

__all__ = ["install", "mode", "program_of", "set_no_new_privs"]

_PR_SET_NO_NEW_PRIVS = 38
_SECCOMP_SET_MODE_FILTER = 1
_CAP_SYS_ADMIN = 21


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _has_sys_admin() -> bool:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> _CAP_SYS_ADMIN & 1)
    except OSError:
        pass
    return os.geteuid() == 0


def program_of(cfg: Mapping[str, Any]) -> Program | None:
    """The compiled filter a container config carries (`seccomp_bpf`: base64 code and
    flags, written by the runtime), or None for an unconfined container."""
    bpf = cfg.get("seccomp_bpf")
    if bpf is None:
        return None
    code = base64.b64decode(bpf["code"], validate=True)
    if not code or len(code) % 8:
        raise ValueError("seccomp_bpf is not a sock_filter array")
    return Program(code, int(bpf.get("flags", 0)))


def set_no_new_privs() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), ctypes.c_ulong(0),
                  ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(err)}")


def install(program: Program, *, no_new_privs: bool = False) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if no_new_privs or not _has_sys_admin():
        set_no_new_privs()
    buf = ctypes.create_string_buffer(program.code, len(program.code))
    prog = _SockFprog(len(program), ctypes.cast(buf, ctypes.c_void_p))
    machine = "aarch64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
    nr = syscalls.table(machine)["seccomp"]
    if libc.syscall(ctypes.c_long(nr), ctypes.c_ulong(_SECCOMP_SET_MODE_FILTER),
                    ctypes.c_ulong(program.flags), ctypes.byref(prog)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp(SECCOMP_SET_MODE_FILTER): {os.strerror(err)}")


def mode(pid: int | str = "self") -> int:
    """The Seccomp: field of /proc/PID/status (0 none, 1 strict, 2 filter)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Seccomp:"):
                return int(line.split()[1])
    return 0
