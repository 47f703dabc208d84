"""The seccomp compiler, proved on the real kernel: each test forks a child, installs a
compiled filter there and reports what its syscalls returned (no root needed: the filter is
installed with no_new_privs)."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import struct
from typing import Any, Callable

import pytest

from navio.runtime.seccomp import syscalls
from navio.runtime.seccomp.bpf import MAX_INSNS
from navio.runtime.seccomp.compiler import (RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS,
                                            SeccompProfileError, compile_profile)
from navio.runtime.seccomp.install import install, mode
from navio.runtime.seccomp.profiles import runtime_default

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64", reason="x86_64 numbers below")

NR = syscalls.table("x86_64")
_libc = ctypes.CDLL(None, use_errno=True)
_NO_PID = 1_000_000_000   # above any pid_max: getpgid answers ESRCH


def _syscall(nr: int, *args: int) -> tuple[int, int]:
    ctypes.set_errno(0)
    rc = _libc.syscall(ctypes.c_long(nr), *(ctypes.c_ulong(a) for a in args))
    return rc, ctypes.get_errno()


def run_filtered(profile: dict[str, Any], probe: Callable[[], Any]) -> Any:
    """Fork; the child installs `profile` and sends back probe()'s JSON result (or the
    signal that killed it)."""
    program = compile_profile(profile)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            install(program, no_new_privs=True)
            os.write(w, json.dumps({"mode": mode(), "result": probe()}).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return {"signal": os.WTERMSIG(status)}
    out = json.loads(data)
    assert out["mode"] == 2
    return out["result"]


def _allow_all_but(*rules: dict[str, Any], default: str = "SCMP_ACT_ALLOW") -> dict[str, Any]:
    return {"defaultAction": default, "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": list(rules)}


def test_runtime_default_allows_ordinary_work_and_denies_with_eperm() -> None:
    def probe() -> dict[str, Any]:
        fd = os.open("/proc/self/status", os.O_RDONLY)
        os.close(fd)
        return {"getpid": _syscall(NR["getpid"])[0] == os.getpid(),
                "unshare": _syscall(NR["unshare"], 0x10000000),
                "keyctl": _syscall(NR["keyctl"], 0, 0, 0, 0),
                "mount": _syscall(NR["mount"], 0, 0, 0, 0, 0),
                "clone3": _syscall(NR["clone3"], 0, 0),
                "newer_than_table": _syscall(max(NR.values()) + 5)}
    out = run_filtered(runtime_default(), probe)
    assert out["getpid"] is True
    assert out["unshare"] == [-1, errno.EPERM]
    assert out["keyctl"] == [-1, errno.EPERM]
    assert out["mount"] == [-1, errno.EPERM]
    assert out["clone3"] == [-1, errno.ENOSYS]          # the profile's own errnoRet
    assert out["newer_than_table"] == [-1, errno.ENOSYS]  # unknown to us: fall back, not EPERM


def test_runtime_default_fork_works_but_clone_with_namespace_flags_is_denied() -> None:
    def probe() -> dict[str, Any]:
        child = os.fork()
        if child == 0:
            os._exit(7)
        _, status = os.waitpid(child, 0)
        # clone(CLONE_NEWUSER|SIGCHLD): masked by the rule, EPERM without running anything
        return {"fork_exit": os.waitstatus_to_exitcode(status),
                "clone_newuser": _syscall(NR["clone"], 0x10000000 | 17, 0, 0, 0, 0)}
    out = run_filtered(runtime_default(), probe)
    assert out == {"fork_exit": 7, "clone_newuser": [-1, errno.EPERM]}


def test_argument_conditions_both_ways() -> None:
    # personality: allowed for PER_LINUX (0) and the query value only (moby's rules)
    profile = runtime_default()

    def probe() -> dict[str, Any]:
        return {"query": _syscall(NR["personality"], 0xFFFFFFFF),
                "linux": _syscall(NR["personality"], 0),
                "other": _syscall(NR["personality"], 0x0040000),   # ADDR_COMPAT_LAYOUT
                "query_high_bits": _syscall(NR["personality"], 0x1FFFFFFFF)}
    out = run_filtered(profile, probe)
    assert out["query"][0] >= 0 and out["linux"][0] >= 0
    assert out["other"] == [-1, errno.EPERM]
    assert out["query_high_bits"] == [-1, errno.EPERM]   # the high half is compared too


@pytest.mark.parametrize("op,value,value_two,allowed,denied", [
    ("SCMP_CMP_EQ", 5, 0, [5], [4, 6, 5 | 1 << 32]),
    ("SCMP_CMP_NE", 5, 0, [4, 5 | 1 << 32], [5]),
    ("SCMP_CMP_GT", (1 << 32) + 8, 0, [(1 << 32) + 9, (2 << 32) + 5], [(1 << 32) + 8, 9]),
    ("SCMP_CMP_GE", (1 << 32) + 8, 0, [(1 << 32) + 8, (3 << 32) + 4], [(1 << 32) + 7, 9]),
    ("SCMP_CMP_LT", (1 << 32) + 3, 0, [3, (1 << 32) + 2], [(1 << 32) + 3, (2 << 32) + 3]),
    ("SCMP_CMP_LE", (1 << 32) + 3, 0, [(1 << 32) + 3, 0], [(1 << 32) + 4, (2 << 32) + 3]),
    ("SCMP_CMP_MASKED_EQ", 0xF0000000F, 0x100000003, [0x100000003, 0x1FFFFFF03],
     [0x3, 0x100000007]),
])
def test_each_operator_on_64_bit_values(op: str, value: int, value_two: int,
                                        allowed: list[int], denied: list[int]) -> None:
    # getpriority(which, who) with a bogus `which` (low word not 0-2) fails with EINVAL when
    # let through
    rule = {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES,
            "args": [{"index": 0, "value": value, "valueTwo": value_two, "op": op}]}
    profile = _allow_all_but(rule)

    def probe() -> dict[str, Any]:
        return {str(v): _syscall(NR["getpriority"], v, 0)[1] for v in allowed + denied}
    out = run_filtered(profile, probe)
    for v in allowed:   # the rule matches: its errno
        assert out[str(v)] == errno.EACCES, (op, hex(v))
    for v in denied:    # no match: the default (allow) lets the kernel answer EINVAL
        assert out[str(v)] == errno.EINVAL, (op, hex(v))


def test_repeated_argument_index_is_or_and_distinct_indexes_are_and() -> None:
    same = {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES,
            "args": [{"index": 0, "value": 100, "op": "SCMP_CMP_EQ"},
                     {"index": 0, "value": 200, "op": "SCMP_CMP_EQ"}]}
    both = {"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES,
            "args": [{"index": 0, "value": _NO_PID, "op": "SCMP_CMP_EQ"},
                     {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]}

    def probe() -> dict[str, Any]:
        return {"p100": _syscall(NR["getpriority"], 100, 0)[1],
                "p200": _syscall(NR["getpriority"], 200, 0)[1],
                "g_and": _syscall(NR["getpgid"], _NO_PID, 9)[1],
                "g_half": _syscall(NR["getpgid"], _NO_PID, 8)[1]}
    out = run_filtered(_allow_all_but(same, both), probe)
    assert out == {"p100": errno.EACCES, "p200": errno.EACCES, "g_and": errno.EACCES,
                   "g_half": errno.ESRCH}


def test_default_errno_and_kill_action() -> None:
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno.EROFS,
               "architectures": ["SCMP_ARCH_X86_64"],
               "syscalls": [{"names": ["write", "exit_group", "exit", "getpid", "read",
                                       "close", "openat", "fstat", "newfstatat", "lseek",
                                       "mmap", "munmap", "brk", "ioctl", "rt_sigaction",
                                       "rt_sigprocmask", "futex", "getrandom", "mprotect"],
                             "action": "SCMP_ACT_ALLOW"},
                            {"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]}
    out = run_filtered(profile, lambda: _syscall(NR["getuid"]))
    assert out == [-1, errno.EROFS]
    assert run_filtered(profile, lambda: _syscall(NR["getppid"])) == {"signal": 31}  # SIGSYS


def _run_bpf(code: bytes, nr: int, arch: int, args: tuple[int, ...] = ()) -> int:
    """A classic-BPF interpreter for the instructions the compiler emits, to check the
    architecture dispatch without a foreign-arch process."""
    data = struct.pack("<IIQ6Q", nr, arch, 0, *(list(args) + [0] * 6)[:6])
    insns = [struct.unpack_from("=HBBI", code, i) for i in range(0, len(code), 8)]
    pc, a = 0, 0
    while True:
        op, jt, jf, k = insns[pc]
        pc += 1
        if op == 0x20:
            a = struct.unpack_from("<I", data, k)[0]
        elif op == 0x54:
            a &= k
        elif op == 0x05:
            pc += k
        elif op == 0x06:
            return k
        else:
            cond = {0x15: a == k, 0x25: a > k, 0x35: a >= k, 0x45: bool(a & k)}[op]
            pc += jt if cond else jf


def test_architecture_check_and_x32_bit() -> None:
    x86_64, i386, aarch64 = 0xC000003E, 0x40000003, 0xC00000B7
    code = compile_profile(runtime_default()).code
    eperm = RET_ERRNO | errno.EPERM
    assert _run_bpf(code, NR["getpid"], x86_64) == RET_ALLOW
    assert _run_bpf(code, NR["getpid"], aarch64) == RET_KILL_PROCESS   # foreign arch
    assert _run_bpf(code, syscalls.table("x86")["getpid"], i386) == RET_ALLOW
    assert _run_bpf(code, syscalls.table("x86")["unshare"], i386) == eperm
    x32 = syscalls.table("x32")
    assert _run_bpf(code, x32["getpid"], x86_64) == RET_ALLOW
    assert _run_bpf(code, x32["unshare"], x86_64) == eperm
    only_64 = dict(runtime_default(), architectures=["SCMP_ARCH_X86_64"])
    code = compile_profile(only_64).code
    assert _run_bpf(code, x32["getpid"], x86_64) == RET_KILL_PROCESS   # x32 bit rejected
    assert _run_bpf(code, syscalls.table("x86")["getpid"], i386) == RET_KILL_PROCESS


def test_filter_is_small_and_bad_profiles_are_refused() -> None:
    assert len(compile_profile(runtime_default())) < MAX_INSNS // 2
    for bad in ({"defaultAction": "SCMP_ACT_NOPE"},
                {"defaultAction": "SCMP_ACT_NOTIFY"},
                {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_X"]},
                {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ERRNO",
                     "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
                {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ERRNO",
                     "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]},
                {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 5}]},
                []):
        with pytest.raises(SeccompProfileError):
            compile_profile(bad)   # type: ignore[arg-type]
