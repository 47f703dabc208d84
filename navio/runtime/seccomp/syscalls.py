"""Syscall numbers and audit architectures, as data.

Why: a seccomp filter matches syscall *numbers*, a profile names syscalls; the numbers differ
per architecture (and per ABI on x86: x86_64, i386 and x32). syscalls.json was generated from
the kernel's uapi headers (asm/unistd_64.h, unistd_32.h, unistd_x32.h and asm-generic/unistd.h
for aarch64), so no libseccomp is needed.

Guarantees: `table(arch)` maps names to numbers for every architecture in `ARCHES`; x32
numbers include the x32 bit (0x40000000), as the kernel sees them.
"""

from __future__ import annotations

import functools
import json
import os
import platform

__all__ = ["ARCHES", "AUDIT_ARCH", "X32_SYSCALL_BIT", "native_arches", "table"]

X32_SYSCALL_BIT = 0x40000000

# OCI architecture name -> (table name, AUDIT_ARCH_* value from linux/audit.h)
ARCHES: dict[str, tuple[str, int]] = {
    "SCMP_ARCH_X86_64": ("x86_64", 0xC000003E),
    "SCMP_ARCH_X86": ("x86", 0x40000003),
    "SCMP_ARCH_X32": ("x32", 0xC000003E),   # x86_64's audit arch, with the x32 bit set
    "SCMP_ARCH_AARCH64": ("aarch64", 0xC00000B7),
}
AUDIT_ARCH = {table_name: audit for table_name, audit in ARCHES.values()}

_NATIVE = {"x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
           "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]}


@functools.cache
def _tables() -> dict[str, dict[str, int]]:
    with open(os.path.join(os.path.dirname(__file__), "syscalls.json")) as f:
        return json.load(f)


def table(arch: str) -> dict[str, int]:
    """Name -> number for a table name ("x86_64", "x86", "x32", "aarch64")."""
    return _tables()[arch]


def native_arches() -> list[str]:
    """The OCI architectures a profile for this machine lists (containerd's choice: the
    native one and the compat ABIs it can run)."""
    machine = platform.machine()
    return list(_NATIVE.get("aarch64" if machine == "arm64" else machine, ["SCMP_ARCH_X86_64"]))
