"""Compile an OCI `linux.seccomp` profile to a classic-BPF seccomp filter, in pure Python.

Why: the process runtime installs the container's profile itself (no runc, no libseccomp),
so it needs libseccomp's job done here: syscall names to numbers per architecture, rules with
argument conditions, actions to SECCOMP_RET_* values.

The filter, in order:
1. the architecture check: `seccomp_data.arch` selects a section per listed architecture;
   any other architecture is killed (SECCOMP_RET_KILL_PROCESS, as libseccomp's bad-arch
   action). On x86_64 the x32 ABI shares the audit arch and is told apart by the x32 bit of
   the syscall number: it goes to the x32 section when SCMP_ARCH_X32 is listed, else killed.
2. per section, a binary search over syscall-number ranges (about 2·log2(n) instructions per
   syscall instead of a linear scan); a range without rules returns the default action.
3. a syscall with rules: each rule's argument conditions (AND) in profile order, conditional
   rules before an unconditional one; the first rule that matches returns its action, none
   matching returns the default action. 64-bit arguments are compared as two 32-bit halves
   (classic BPF is 32-bit); on 32-bit x86 only the low half exists.
4. syscalls newer than the newest one in our table return ENOSYS when the default action
   denies (runc does the same), so programs fall back to older syscalls instead of failing
   with EPERM.

As runc does, names unknown on an architecture are skipped, and a rule whose conditions name
the same argument twice becomes one rule per condition (OR instead of AND).
Raises `SeccompProfileError` for anything it cannot honour (unknown action, operator, flag,
SCMP_ACT_NOTIFY, argument index > 5).
"""

from __future__ import annotations

import errno
import functools
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping

from navio.runtime.seccomp import syscalls
from navio.runtime.seccomp.bpf import JEQ, JGE, JGT, Asm, BPFError, Label

__all__ = ["Program", "SeccompProfileError", "compile_cached", "compile_profile", "action_value"]

RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000
_ACTIONS = {"SCMP_ACT_KILL": RET_KILL_THREAD, "SCMP_ACT_KILL_THREAD": RET_KILL_THREAD,
            "SCMP_ACT_KILL_PROCESS": RET_KILL_PROCESS, "SCMP_ACT_TRAP": RET_TRAP,
            "SCMP_ACT_ERRNO": RET_ERRNO, "SCMP_ACT_TRACE": RET_TRACE,
            "SCMP_ACT_LOG": RET_LOG, "SCMP_ACT_ALLOW": RET_ALLOW}
_FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2,
          "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32}
_OPS = {"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
        "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"}
_ARGS_OFFSET = 16   # struct seccomp_data: nr (u32), arch (u32), instruction_pointer (u64), args
_U64 = (1 << 64) - 1


class SeccompProfileError(ValueError):
    """The profile is not valid OCI seccomp, or asks for something this compiler lacks."""


@dataclass(frozen=True, slots=True)
class Program:
    """A compiled filter: `code` is the struct sock_filter array, `flags` for seccomp(2)."""

    code: bytes
    flags: int = 0

    def __len__(self) -> int:
        return len(self.code) // 8


@dataclass(frozen=True, slots=True)
class _Cond:
    index: int
    op: str
    value: int
    value_two: int


@dataclass(frozen=True, slots=True)
class _Rule:
    action: int
    conds: tuple[_Cond, ...]


def action_value(action: Any, errno_ret: Any = None) -> int:
    """The SECCOMP_RET_* value of an OCI action (ERRNO/TRACE carry errnoRet, EPERM if
    unset, as runc)."""
    if action == "SCMP_ACT_NOTIFY":
        raise SeccompProfileError("SCMP_ACT_NOTIFY needs a seccomp agent; not supported")
    if action not in _ACTIONS:
        raise SeccompProfileError(f"unknown seccomp action {action!r}")
    value = _ACTIONS[action]
    if value in (RET_ERRNO, RET_TRACE):
        data = errno.EPERM if errno_ret is None else errno_ret
        if not isinstance(data, int) or isinstance(data, bool) or not 0 <= data <= 0xFFFF:
            raise SeccompProfileError(f"errnoRet must be an integer 0..65535, not {data!r}")
        value |= data
    elif errno_ret is not None:
        raise SeccompProfileError(f"errnoRet is only valid with SCMP_ACT_ERRNO/TRACE, "
                                  f"not {action}")
    return value


def _u64(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _U64:
        raise SeccompProfileError(f"{what} must be an unsigned 64-bit integer, not {value!r}")
    return value


def _conds(args: Any) -> list[tuple[_Cond, ...]]:
    """The rule(s) one syscalls entry's `args` make: one AND-rule, or one rule per condition
    when an argument index repeats (runc's rule)."""
    if not args:
        return [()]
    if not isinstance(args, list):
        raise SeccompProfileError("args must be a list")
    conds = []
    for arg in args:
        if not isinstance(arg, Mapping):
            raise SeccompProfileError("each args entry must be an object")
        index = arg.get("index")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= 5:
            raise SeccompProfileError(f"argument index must be 0..5, not {index!r}")
        op = arg.get("op")
        if op not in _OPS:
            raise SeccompProfileError(f"unknown seccomp operator {op!r}")
        conds.append(_Cond(index, op, _u64(arg.get("value", 0), "value"),
                           _u64(arg.get("valueTwo", 0), "valueTwo")))
    if max(Counter(c.index for c in conds).values()) > 1:
        return [(c,) for c in conds]
    return [tuple(conds)]


def _rules(profile: Mapping[str, Any], names: dict[str, int]) -> dict[int, list[_Rule]]:
    by_nr: dict[int, list[_Rule]] = {}
    for entry in profile.get("syscalls") or ():
        if not isinstance(entry, Mapping):
            raise SeccompProfileError("each syscalls entry must be an object")
        action = action_value(entry.get("action"), entry.get("errnoRet"))
        alternatives = _conds(entry.get("args"))
        entry_names = entry.get("names") or ()
        if isinstance(entry_names, str) or not all(isinstance(n, str) for n in entry_names):
            raise SeccompProfileError("syscall names must be a list of strings")
        for name in entry_names:
            if name in names:
                by_nr.setdefault(names[name], []).extend(_Rule(action, c) for c in alternatives)
    for nr, found in by_nr.items():
        conditional = [r for r in found if r.conds]
        plain = [r for r in found if not r.conds]
        by_nr[nr] = conditional + plain[:1]
    return by_nr


def _segments(rules: dict[int, list[_Rule]], default: int, start: int, known_max: int,
              newer: int, end: int) -> list[tuple[int, Any]]:
    """[start, end) cut into (first number, leaf) ranges, adjacent equal leaves merged."""
    out: list[tuple[int, Any]] = []

    def add(first: int, leaf: Any) -> None:
        if out and out[-1][0] == first:   # an empty range: replaced
            out.pop()
        if not out or out[-1][1] != leaf:
            out.append((first, leaf))

    add(start, ("ret", default))
    for nr in sorted(rules):
        rs = rules[nr]
        add(nr, ("ret", rs[0].action) if len(rs) == 1 and not rs[0].conds else ("rules", nr))
        add(nr + 1, ("ret", default))
    if known_max + 1 < end:
        add(max(known_max + 1, start), ("ret", newer))
    return out


def _emit_cond(asm: Asm, c: _Cond, fail: Label, wide: bool) -> None:
    lo_off = _ARGS_OFFSET + 8 * c.index   # little-endian: low word first
    hi_off = lo_off + 4
    v_lo, v_hi = c.value & 0xFFFFFFFF, c.value >> 32
    passed = asm.label("pass")
    if c.op == "SCMP_CMP_MASKED_EQ":
        w_lo, w_hi = c.value_two & 0xFFFFFFFF, c.value_two >> 32
        if wide:
            asm.load(hi_off)
            asm.and_(v_hi)
            asm.jump(JEQ, w_hi, 0, fail)
        asm.load(lo_off)
        asm.and_(v_lo)
        asm.jump(JEQ, w_lo, 0, fail)
    elif c.op == "SCMP_CMP_EQ":
        if wide:
            asm.load(hi_off)
            asm.jump(JEQ, v_hi, 0, fail)
        asm.load(lo_off)
        asm.jump(JEQ, v_lo, 0, fail)
    elif c.op == "SCMP_CMP_NE":
        if wide:
            asm.load(hi_off)
            asm.jump(JEQ, v_hi, 0, passed)
        asm.load(lo_off)
        asm.jump(JEQ, v_lo, fail, 0)
    elif c.op in ("SCMP_CMP_GT", "SCMP_CMP_GE"):
        if wide:
            asm.load(hi_off)
            asm.jump(JGT, v_hi, passed, 0)
            asm.jump(JEQ, v_hi, 0, fail)
        asm.load(lo_off)
        asm.jump(JGT if c.op == "SCMP_CMP_GT" else JGE, v_lo, 0, fail)
    else:   # LT, LE
        if wide:
            asm.load(hi_off)
            asm.jump(JGT, v_hi, fail, 0)
            asm.jump(JEQ, v_hi, 0, passed)
        asm.load(lo_off)
        asm.jump(JGE if c.op == "SCMP_CMP_LT" else JGT, v_lo, fail, 0)
    asm.place(passed)


def _emit_leaf(asm: Asm, leaf: Any, rules: dict[int, list[_Rule]], default: int,
               wide: bool) -> None:
    kind, arg = leaf
    if kind == "ret":
        asm.ret(arg)
    elif kind == "goto":
        asm.goto(arg)
    else:
        for rule in rules[arg]:
            nxt = asm.label("next-rule")
            for cond in rule.conds:
                _emit_cond(asm, cond, nxt, wide)
            asm.ret(rule.action)
            asm.place(nxt)
        asm.ret(default)


def _emit_tree(asm: Asm, segs: list[tuple[int, Any]], rules: dict[int, list[_Rule]],
               default: int, wide: bool) -> None:
    """Binary search on the syscall number (in A); each level: `jge pivot` + `ja right`."""
    if len(segs) == 1:
        _emit_leaf(asm, segs[0][1], rules, default, wide)
        return
    mid = len(segs) // 2
    right = asm.label("right")
    asm.jump(JGE, segs[mid][0], 0, 1)
    asm.goto(right)
    _emit_tree(asm, segs[:mid], rules, default, wide)
    asm.place(right)
    _emit_tree(asm, segs[mid:], rules, default, wide)


def compile_profile(profile: Mapping[str, Any]) -> Program:
    """Compile an OCI `linux.seccomp` object for the architectures it lists (the machine's
    own when it lists none). Architectures without a syscall table here (e.g. SCMP_ARCH_ARM)
    get no section: their syscalls are killed like any foreign architecture's."""
    if not isinstance(profile, Mapping):
        raise SeccompProfileError("a seccomp profile must be a JSON object")
    default = action_value(profile.get("defaultAction"), profile.get("defaultErrnoRet"))
    flags = 0
    for flag in profile.get("flags") or ():
        if flag not in _FLAGS:
            raise SeccompProfileError(f"unknown seccomp flag {flag!r}")
        flags |= _FLAGS[flag]
    listed = profile.get("architectures") or syscalls.native_arches()[:1]
    if isinstance(listed, str) or not all(isinstance(a, str) for a in listed):
        raise SeccompProfileError("architectures must be a list of strings")
    tables = {syscalls.ARCHES[a][0] for a in listed if a in syscalls.ARCHES}
    denies = default not in (RET_ALLOW, RET_LOG)
    newer = (RET_ERRNO | errno.ENOSYS) if denies else default
    asm = Asm()
    asm.load(4)   # seccomp_data.arch
    sections: list[tuple[Label, str]] = []
    for audit in dict.fromkeys(syscalls.AUDIT_ARCH[t] for t in sorted(tables)):
        label = asm.label(hex(audit))
        asm.jump(JEQ, audit, 0, 1)
        asm.goto(label)
        sections.append((label, next(t for t in sorted(tables)
                                     if syscalls.AUDIT_ARCH[t] == audit)))
    asm.ret(RET_KILL_PROCESS)
    for label, name in sections:
        asm.place(label)
        asm.load(0)   # seccomp_data.nr
        if syscalls.AUDIT_ARCH[name] == syscalls.AUDIT_ARCH["x86_64"]:
            x32 = asm.label("x32")
            has_64, has_x32 = "x86_64" in tables, "x32" in tables
            top = syscalls.X32_SYSCALL_BIT
            segs = []
            rules_64: dict[int, list[_Rule]] = {}
            if has_64:
                rules_64 = _rules(profile, syscalls.table("x86_64"))
                segs = _segments(rules_64, default, 0, max(syscalls.table("x86_64").values()),
                                 newer, top)
            else:
                segs = [(0, ("ret", RET_KILL_PROCESS))]
            segs.append((top, ("goto", x32) if has_x32 else ("ret", RET_KILL_PROCESS)))
            _emit_tree(asm, segs, rules_64, default, wide=True)
            asm.place(x32)
            if has_x32:
                rules_x32 = _rules(profile, syscalls.table("x32"))
                segs = _segments(rules_x32, default, 0, max(syscalls.table("x32").values()),
                                 newer, 1 << 32)
                _emit_tree(asm, segs, rules_x32, default, wide=True)
            continue
        names = syscalls.table(name)
        rules = _rules(profile, names)
        segs = _segments(rules, default, 0, max(names.values()), newer, 1 << 32)
        _emit_tree(asm, segs, rules, default, wide=name != "x86")
    try:
        return Program(asm.assemble(), flags)
    except BPFError as exc:
        raise SeccompProfileError(f"cannot compile the profile: {exc}") from None


@functools.lru_cache(maxsize=64)
def _compile_text(text: str) -> Program:
    return compile_profile(json.loads(text))


def compile_cached(profile: Mapping[str, Any]) -> Program:
    """compile_profile, once per distinct profile (≈4 ms each; every container of a node
    usually has the same one)."""
    try:
        text = json.dumps(profile, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise SeccompProfileError(f"a seccomp profile must be JSON: {exc}") from None
    return _compile_text(text)
