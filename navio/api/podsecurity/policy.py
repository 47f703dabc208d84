"""Pod Security levels, namespace labels and the evaluation of a pod against a level.

A namespace's `pod-security.kubernetes.io/<mode>` labels (modes enforce, audit, warn) name a
level (privileged, baseline, restricted) and `<mode>-version` a version ("latest" or
"v1.N"); navio implements the v1.32 ("latest") policy for every version, as kube does for
versions past its own. Namespaces without a label get navio's defaults. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from navio.api.podsecurity.checks import CHECKS, Violation

__all__ = ["LEVELS", "MODES", "LABEL_PREFIX", "LevelVersion", "Policy", "PolicyError",
           "DEFAULT_POLICY", "parse_policy", "evaluate", "pod_spec_of", "describe",
           "forbidden_message", "warning_message", "TEMPLATE_KINDS"]

LEVELS = ("privileged", "baseline", "restricted")
MODES = ("enforce", "audit", "warn")
LABEL_PREFIX = "pod-security.kubernetes.io/"


class PolicyError(ValueError):
    """A namespace label holds a level or version kube would reject."""


@dataclass(frozen=True, slots=True)
class LevelVersion:
    level: str
    version: str = "latest"

    def __str__(self) -> str:
        return f"{self.level}:{self.version}"


@dataclass(frozen=True, slots=True)
class Policy:
    enforce: LevelVersion
    audit: LevelVersion
    warn: LevelVersion


# navio's default for a namespace that names no level (SECURITY.md).
DEFAULT_POLICY = Policy(enforce=LevelVersion("baseline"), audit=LevelVersion("privileged"),
                        warn=LevelVersion("restricted"))


def _version_ok(v: str) -> bool:
    if v == "latest":
        return True
    if not v.startswith("v1."):
        return False
    return v[3:].isdigit() and not (len(v) > 4 and v[3] == "0")


def parse_policy(labels: dict[str, str] | None, default: Policy = DEFAULT_POLICY) -> Policy:
    """The namespace's policy; a mode without a label keeps the default's level. A bad
    value raises PolicyError with kube's validation wording."""
    labels = labels or {}
    out = {}
    for mode in MODES:
        base: LevelVersion = getattr(default, mode)
        level = labels.get(LABEL_PREFIX + mode)
        version = labels.get(f"{LABEL_PREFIX}{mode}-version")
        if level is not None and level not in LEVELS:
            raise PolicyError(f'must be one of {", ".join(LEVELS)}',
                              f"metadata.labels[{LABEL_PREFIX}{mode}]", level)
        if version is not None and not _version_ok(version):
            raise PolicyError('must be "latest" or "v1.x"',
                              f"metadata.labels[{LABEL_PREFIX}{mode}-version]", version)
        out[mode] = LevelVersion(level or base.level, version or base.version)
    return Policy(**out)


def evaluate(level: str, meta: dict[str, Any], spec: dict[str, Any]) -> list[Violation]:
    """The violations of `level` by a pod (or pod template) with this metadata and spec."""
    if level == "privileged":
        return []
    wanted = ("baseline",) if level == "baseline" else ("baseline", "restricted")
    active = [c for c in CHECKS if c.level in wanted]
    overridden = {o for c in active for o in c.overrides}
    found = []
    for check in active:
        if check.id in overridden:
            continue
        v = check.fn(meta or {}, spec or {})
        if v is not None:
            found.append(v)
    return found


def describe(violations: list[Violation]) -> str:
    return ", ".join(f"{v.reason} ({v.detail})" if v.detail else v.reason for v in violations)


def forbidden_message(lv: LevelVersion, violations: list[Violation]) -> str:
    """The text after `pods "x" is forbidden: `."""
    return f'violates PodSecurity "{lv}": {describe(violations)}'


def warning_message(lv: LevelVersion, violations: list[Violation]) -> str:
    return f'would violate PodSecurity "{lv}": {describe(violations)}'


# Kinds whose pod template pod security warns and audits about (kube never enforces them).
TEMPLATE_KINDS = {
    ("", "Pod"): ("spec",),
    ("", "PodTemplate"): ("template",),
    ("", "ReplicationController"): ("spec", "template"),
    ("apps", "Deployment"): ("spec", "template"),
    ("apps", "ReplicaSet"): ("spec", "template"),
    ("apps", "DaemonSet"): ("spec", "template"),
    ("apps", "StatefulSet"): ("spec", "template"),
    ("batch", "Job"): ("spec", "template"),
    ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template"),
}


def pod_spec_of(group: str, kind: str,
                obj: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(metadata, spec) of a pod or of a workload's pod template; None for other kinds or a
    workload without a template."""
    path = TEMPLATE_KINDS.get((group, kind))
    if path is None:
        return None
    if kind == "Pod":
        return obj.get("metadata") or {}, obj.get("spec") or {}
    node: Any = obj
    for p in path:
        node = (node or {}).get(p) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return None
    return node.get("metadata") or {}, node.get("spec") or {}
