"""audit.k8s.io/v1 Policy: which requests are recorded, and how much of each.

Follows kube-apiserver's policy checker (staging/src/k8s.io/apiserver/pkg/audit/policy): rules
are tried in order and the first that matches decides the level; no match means `None`. A rule
matches when every field it sets matches (users, userGroups, verbs, resources with group /
resources (`pods`, `pods/log`, `pods/*`, `*/scale`) / resourceNames, namespaces,
nonResourceURLs with a trailing `*`). omitStages of the policy and the rule add up.

navio's own guard on top: requests for secrets, tokens and token reviews are never recorded
above Metadata, whatever the policy says (kube's recommendation; their bodies are credentials).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from navio.apiserver.requestinfo import RequestInfo

__all__ = ["LEVELS", "AuditPolicy", "PolicyRule", "load_policy", "default_policy",
           "CAPPED_RESOURCES"]

LEVELS = ("None", "Metadata", "Request", "RequestResponse")
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
# (group, resource, subresource): bodies that carry credentials; "*" any subresource.
CAPPED_RESOURCES = frozenset({("", "secrets", "*"), ("", "serviceaccounts", "token"),
                              ("authentication.k8s.io", "tokenreviews", "*"),
                              ("certificates.k8s.io", "certificatesigningrequests", "*")})


@dataclass(frozen=True, slots=True)
class GroupResources:
    group: str
    resources: tuple[str, ...]
    resource_names: tuple[str, ...]

    def matches(self, info: RequestInfo) -> bool:
        if self.group != info.group:
            return False
        if self.resources:
            full = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
            if not any(r == full or r == "*" or (r.endswith("/*") and info.subresource
                                                 and r[:-2] == info.resource)
                       or (r.startswith("*/") and r[2:] == info.subresource)
                       for r in self.resources):
                return False
        return not self.resource_names or info.name in self.resource_names


@dataclass(frozen=True, slots=True)
class PolicyRule:
    level: str
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[GroupResources, ...] = ()
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: tuple[str, ...] = ()

    def matches(self, user: str, groups: tuple[str, ...], info: RequestInfo) -> bool:
        if self.users and user not in self.users:
            return False
        if self.user_groups and not set(groups) & set(self.user_groups):
            return False
        if self.verbs and info.verb not in self.verbs:
            return False
        if self.resources or self.namespaces:
            if not info.is_resource:
                return False
            if self.resources and not any(g.matches(info) for g in self.resources):
                return False
            if self.namespaces and info.namespace not in self.namespaces:
                return False
        if self.non_resource_urls:
            if info.is_resource:
                return False
            return any(info.path == u or (u.endswith("*") and info.path.startswith(u[:-1]))
                       for u in self.non_resource_urls)
        return True


@dataclass(frozen=True, slots=True)
class AuditPolicy:
    rules: tuple[PolicyRule, ...]
    omit_stages: tuple[str, ...] = ()

    def evaluate(self, user: str, groups: tuple[str, ...], info: RequestInfo
                 ) -> tuple[str, frozenset[str]]:
        """(level, stages to omit) for a request."""
        for rule in self.rules:
            if rule.matches(user, groups, info):
                level = rule.level
                if level in ("Request", "RequestResponse") and _capped(info):
                    level = "Metadata"
                return level, frozenset(self.omit_stages) | frozenset(rule.omit_stages)
        return "None", frozenset()

    @property
    def records_bodies(self) -> bool:
        return any(r.level in ("Request", "RequestResponse") for r in self.rules)


def _capped(info: RequestInfo) -> bool:
    return info.is_resource and any(
        g == info.group and r == info.resource and (s == "*" or s == info.subresource)
        for g, r, s in CAPPED_RESOURCES)


def default_policy() -> AuditPolicy:
    """Everything at Metadata: who did what to which object, never a body. RequestReceived is
    omitted, as in kube's documented example policy: ResponseComplete (and ResponseStarted of
    long-running requests) carry the same facts, at half the writes per request."""
    return AuditPolicy((PolicyRule("Metadata"),), omit_stages=("RequestReceived",))


def _strs(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what}: want a list of strings")
    return tuple(value)


def _stages(value: Any, what: str) -> tuple[str, ...]:
    stages = _strs(value, what)
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise ValueError(f"{what}: unknown stage {bad[0]!r}")
    return stages


def parse_policy(doc: Any) -> AuditPolicy:
    if not isinstance(doc, dict) or doc.get("kind") != "Policy" or \
            doc.get("apiVersion") not in ("audit.k8s.io/v1", "audit.k8s.io/v1beta1"):
        raise ValueError("not an audit.k8s.io/v1 Policy")
    rules = []
    for i, raw in enumerate(doc.get("rules") or ()):
        where = f"rules[{i}]"
        if not isinstance(raw, dict) or raw.get("level") not in LEVELS:
            raise ValueError(f"{where}.level: want one of {', '.join(LEVELS)}")
        resources = tuple(GroupResources(str(g.get("group", "")),
                                         _strs(g.get("resources"), f"{where}.resources"),
                                         _strs(g.get("resourceNames"), f"{where}.resources"))
                          for g in raw.get("resources") or ())
        rule = PolicyRule(raw["level"], _strs(raw.get("users"), f"{where}.users"),
                          _strs(raw.get("userGroups"), f"{where}.userGroups"),
                          _strs(raw.get("verbs"), f"{where}.verbs"), resources,
                          _strs(raw.get("namespaces"), f"{where}.namespaces"),
                          _strs(raw.get("nonResourceURLs"), f"{where}.nonResourceURLs"),
                          _stages(raw.get("omitStages"), f"{where}.omitStages"))
        if rule.non_resource_urls and (rule.resources or rule.namespaces):
            raise ValueError(f"{where}: nonResourceURLs cannot be combined with resources "
                             "or namespaces")
        rules.append(rule)
    return AuditPolicy(tuple(rules), _stages(doc.get("omitStages"), "omitStages"))


def load_policy(path: Path) -> AuditPolicy:
    try:
        return parse_policy(yaml.safe_load(path.read_text()))
    except (OSError, yaml.YAMLError, ValueError, AttributeError) as exc:
        raise ValueError(f"--audit-policy-file {path}: {exc}") from None
