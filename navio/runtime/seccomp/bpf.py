"""A tiny classic-BPF assembler: instructions with symbolic jump targets.

Why: the seccomp compiler emits blocks whose sizes are only known once emitted; writing jumps
to labels and resolving them at the end keeps it simple. Conditional jumps of classic BPF
reach only 255 instructions ahead, so the compiler keeps them local and uses `ja` (32-bit
offset) for anything far; `assemble` refuses an out-of-range jump instead of wrapping it.

Guarantees: `assemble` returns the `struct sock_filter` array as bytes (native byte order),
every jump forward and in range, at most 4096 instructions (BPF_MAXINSNS).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["Asm", "BPFError", "Label",
           "LD_W_ABS", "JEQ", "JGT", "JGE", "JSET", "JA", "RET", "AND", "MAX_INSNS"]

LD_W_ABS = 0x20      # BPF_LD | BPF_W | BPF_ABS
AND = 0x54           # BPF_ALU | BPF_AND | BPF_K
JA = 0x05            # BPF_JMP | BPF_JA
JEQ = 0x15           # BPF_JMP | BPF_JEQ | BPF_K
JGT = 0x25           # BPF_JMP | BPF_JGT | BPF_K
JGE = 0x35           # BPF_JMP | BPF_JGE | BPF_K
JSET = 0x45          # BPF_JMP | BPF_JSET | BPF_K
RET = 0x06           # BPF_RET | BPF_K
MAX_INSNS = 4096
_FILTER = struct.Struct("=HBBI")


class BPFError(ValueError):
    """The program cannot be assembled (too long, or a jump out of reach)."""


@dataclass(frozen=True, slots=True, eq=False)
class Label:
    name: str


Target = Label | int   # a label, or a relative offset (0 = the next instruction)


class Asm:
    def __init__(self) -> None:
        self._insns: list[tuple[int, Target, Target, int | Label]] = []
        self._where: dict[Label, int] = {}

    def __len__(self) -> int:
        return len(self._insns)

    def label(self, name: str = "") -> Label:
        return Label(name)

    def place(self, label: Label) -> None:
        if label in self._where:
            raise BPFError(f"label {label.name!r} placed twice")
        self._where[label] = len(self._insns)

    def load(self, offset: int) -> None:
        self._insns.append((LD_W_ABS, 0, 0, offset))

    def and_(self, mask: int) -> None:
        self._insns.append((AND, 0, 0, mask & 0xFFFFFFFF))

    def jump(self, op: int, k: int, jt: Target, jf: Target) -> None:
        self._insns.append((op, jt, jf, k & 0xFFFFFFFF))

    def goto(self, target: Label) -> None:
        self._insns.append((JA, 0, 0, target))

    def ret(self, value: int) -> None:
        self._insns.append((RET, 0, 0, value & 0xFFFFFFFF))

    def _offset(self, at: int, target: Target, limit: int) -> int:
        if isinstance(target, int):
            off = target
        else:
            if target not in self._where:
                raise BPFError(f"label {target.name!r} never placed")
            off = self._where[target] - at - 1
        if not 0 <= off <= limit:
            raise BPFError(f"jump at {at} to offset {off} out of range")
        return off

    def assemble(self) -> bytes:
        if len(self._insns) > MAX_INSNS:
            raise BPFError(f"filter has {len(self._insns)} instructions, the kernel takes "
                           f"at most {MAX_INSNS}")
        out = bytearray()
        for at, (code, jt, jf, k) in enumerate(self._insns):
            if code == JA:
                k = self._offset(at, k, 0xFFFFFFFF) if isinstance(k, Label) else k
                out += _FILTER.pack(code, 0, 0, k)
            else:
                assert isinstance(k, int)
                out += _FILTER.pack(code, self._offset(at, jt, 255), self._offset(at, jf, 255), k)
        return bytes(out)
