"""Which seccomp profile a container gets, as the kubelet with `--seccomp-default=true`.

Why: the 2019 audit found seccomp off by default. navio applies the runtime's default
profile to every container that does not ask otherwise, as a kubelet started with
`--seccomp-default` over containerd does.

Rules (kubelet getSeccompProfile + containerd generateSeccompSpecOpts):
- a privileged container (securityContext.privileged) runs without a filter (containerd:
  "Do not set seccomp profile when container is privileged");
- the container's securityContext.seccompProfile wins over the pod's;
- neither set: RuntimeDefault;
- `Unconfined`: no filter (None);
- `RuntimeDefault`: runtime_default.json, for this machine's architectures;
- `Localhost`: the JSON file `<seccomp_root>/<localhostProfile>` (the kubelet's
  `<root-dir>/seccomp`); a path escaping the root, a missing file or invalid JSON raises
  `SeccompProfileError` and the kubelet fails the start with CreateContainerError (where
  containerd's CreateContainer fails reading the file).

The returned dict is an OCI runtime-spec `linux.seccomp` object: the process runtime
compiles it (compiler.py), the oci runtime hands it to runc.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from typing import Any, Mapping

from navio.runtime.seccomp import syscalls
from navio.runtime.seccomp.compiler import SeccompProfileError, compile_profile

__all__ = ["SeccompProfileError", "resolve_profile", "runtime_default"]


@functools.cache
def _runtime_default_template() -> dict[str, Any]:
    with open(os.path.join(os.path.dirname(__file__), "runtime_default.json")) as f:
        return json.load(f)


def runtime_default() -> dict[str, Any]:
    """The RuntimeDefault profile for this machine (a fresh copy)."""
    profile = copy.deepcopy(_runtime_default_template())
    profile["architectures"] = syscalls.native_arches()
    return profile


def _field(obj: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    ctx = (obj or {}).get("securityContext") or {}
    return ctx.get("seccompProfile") or None


def _localhost(seccomp_root: str, name: Any) -> dict[str, Any]:
    if not isinstance(name, str) or not name:
        raise SeccompProfileError("seccompProfile type Localhost needs localhostProfile")
    root = os.path.realpath(seccomp_root)
    path = os.path.realpath(os.path.join(root, name))
    if os.path.isabs(name) or os.path.commonpath([root, path]) != root:
        raise SeccompProfileError(f"localhostProfile {name!r} must be a relative path inside "
                                  f"{seccomp_root}")
    try:
        with open(path, encoding="utf-8") as f:
            profile = json.load(f)
    except OSError as exc:
        raise SeccompProfileError(f"cannot load seccomp profile {path!r}: "
                                  f"{exc.strerror or exc}") from None
    except ValueError as exc:
        raise SeccompProfileError(f"decoding seccomp profile {path!r} failed: {exc}") from None
    try:
        compile_profile(profile)
    except SeccompProfileError as exc:
        raise SeccompProfileError(f"invalid seccomp profile {path!r}: {exc}") from None
    return profile


def resolve_profile(pod: dict, container: dict, seccomp_root: str) -> dict | None:
    """The OCI `linux.seccomp` object for `container` of `pod`, or None for Unconfined.
    Raises SeccompProfileError when the profile asked for cannot be used."""
    if ((container or {}).get("securityContext") or {}).get("privileged"):
        return None
    chosen = _field(container) or _field((pod or {}).get("spec")) or {"type": "RuntimeDefault"}
    kind = chosen.get("type")
    if kind == "Unconfined":
        return None
    if kind == "RuntimeDefault":
        return runtime_default()
    if kind == "Localhost":
        return _localhost(seccomp_root, chosen.get("localhostProfile"))
    raise SeccompProfileError(f"unknown seccomp profile type {kind!r}")
