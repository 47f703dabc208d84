"""Seccomp for containers: profiles (OCI `linux.seccomp` JSON), a pure-Python compiler to
classic BPF, and installation through prctl/seccomp.

Why: issue 3 — the 2019 audit found seccomp off by default; navio confines every container
with the RuntimeDefault profile unless its securityContext says otherwise.
"""

from __future__ import annotations

from navio.runtime.seccomp.compiler import Program, SeccompProfileError, compile_profile

__all__ = ["Program", "SeccompProfileError", "compile_profile"]
