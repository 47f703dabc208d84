"""PolicyRule matching and covering, with kube's RBAC semantics
(pkg/apis/rbac/v1/evaluation_helpers.go, pkg/registry/rbac/validation).

A rule allows a resource request when its verbs, apiGroups, resources and resourceNames all match
(`*` matches anything; `*/status` matches the status subresource of any resource; an empty
resourceNames matches every name), and a non-resource request when its verbs and
nonResourceURLs match (a URL ending in `*` matches by prefix). Rules are compiled once into
frozen sets so that a check costs a few set lookups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator

__all__ = ["Rule", "compile_rule", "compile_rules", "rule_allows", "covers", "compact_string",
           "to_policy_rule"]


@dataclass(frozen=True, slots=True)
class Rule:
    verbs: frozenset[str]
    groups: frozenset[str]
    resources: frozenset[str]
    names: frozenset[str]
    urls: tuple[str, ...]
    # The rule as written (order kept), for SelfSubjectRulesReview and messages.
    source: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...],
                  tuple[str, ...]]


def _strs(v: Any) -> tuple[str, ...]:
    return tuple(x for x in (v or ()) if isinstance(x, str))


def compile_rule(rule: dict[str, Any]) -> Rule:
    verbs, groups = _strs(rule.get("verbs")), _strs(rule.get("apiGroups"))
    resources, names = _strs(rule.get("resources")), _strs(rule.get("resourceNames"))
    urls = _strs(rule.get("nonResourceURLs"))
    return Rule(frozenset(verbs), frozenset(groups), frozenset(resources), frozenset(names),
                urls, (verbs, groups, resources, names, urls))


def compile_rules(rules: Any) -> tuple[Rule, ...]:
    return tuple(compile_rule(r) for r in (rules or ()) if isinstance(r, dict))


def to_policy_rule(rule: Rule) -> dict[str, Any]:
    verbs, groups, resources, names, urls = rule.source
    out: dict[str, Any] = {"verbs": list(verbs)}
    if groups:
        out["apiGroups"] = list(groups)
    if resources:
        out["resources"] = list(resources)
    if names:
        out["resourceNames"] = list(names)
    if urls:
        out["nonResourceURLs"] = list(urls)
    return out


def _resource_matches(rule: Rule, resource: str, subresource: str) -> bool:
    res = rule.resources
    if "*" in res:
        return True
    combined = f"{resource}/{subresource}" if subresource else resource
    if combined in res:
        return True
    return bool(subresource) and f"*/{subresource}" in res


def _url_matches(rule: Rule, path: str) -> bool:
    for u in rule.urls:
        if u == "*" or u == path or (u.endswith("*") and path.startswith(u[:-1])):
            return True
    return False


def rule_allows(rule: Rule, verb: str, is_resource: bool, group: str, resource: str,
                subresource: str, name: str, path: str) -> bool:
    if verb not in rule.verbs and "*" not in rule.verbs:
        return False
    if not is_resource:
        return _url_matches(rule, path)
    if group not in rule.groups and "*" not in rule.groups:
        return False
    if not _resource_matches(rule, resource, subresource):
        return False
    return not rule.names or name in rule.names


# -- covering (escalation checks) --------------------------------------------------------------
def _atoms(rule: Rule) -> Iterator[dict[str, Any]]:
    """A rule broken into one-verb, one-group, one-resource, one-name (or one-URL) rules, as
    kube's BreakdownRule does."""
    verbs, groups, resources, names, urls = rule.source
    for g in groups:
        for r in resources:
            for v in verbs:
                if names:
                    for n in names:
                        yield {"apiGroups": [g], "resources": [r], "resourceNames": [n],
                               "verbs": [v]}
                else:
                    yield {"apiGroups": [g], "resources": [r], "verbs": [v]}
    for u in urls:
        for v in verbs:
            yield {"nonResourceURLs": [u], "verbs": [v]}


def _resource_covers(owner: Rule, res: str) -> bool:
    if "*" in owner.resources or res in owner.resources:
        return True
    if "/" in res:
        return f"*/{res.split('/', 1)[1]}" in owner.resources
    return False


def _atom_covered(owner: Rule, atom: dict[str, Any]) -> bool:
    verb = atom["verbs"][0]
    if "*" not in owner.verbs and verb not in owner.verbs:
        return False
    if "nonResourceURLs" in atom:
        url = atom["nonResourceURLs"][0]
        for u in owner.urls:
            if u == "*" or u == url or (u.endswith("*") and url.startswith(u[:-1])):
                return True
        return False
    group = atom["apiGroups"][0]
    if "*" not in owner.groups and group not in owner.groups:
        return False
    if not _resource_covers(owner, atom["resources"][0]):
        return False
    names: list[str] = atom.get("resourceNames") or []
    if not owner.names:
        return True
    return bool(names) and names[0] in owner.names


def covers(owner: tuple[Rule, ...] | list[Rule], servant: Iterable[Rule]
           ) -> list[dict[str, Any]]:
    """The atomic parts of `servant` no rule of `owner` covers ([] when all are covered)."""
    missing: list[dict[str, Any]] = []
    for rule in servant:
        for atom in _atoms(rule):
            if not any(_atom_covered(o, atom) for o in owner):
                missing.append(atom)
    return missing


def _go_quoted_list(values: list[str]) -> str:
    import json
    return "[" + " ".join(json.dumps(v) for v in values) + "]"


def compact_string(rule: dict[str, Any]) -> str:
    """kube's PolicyRule.CompactString: `{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`."""
    parts = []
    for field, label in (("apiGroups", "APIGroups"), ("resources", "Resources"),
                         ("resourceNames", "ResourceNames"),
                         ("nonResourceURLs", "NonResourceURLs"), ("verbs", "Verbs")):
        if rule.get(field):
            parts.append(f"{label}:{_go_quoted_list(rule[field])}")
    return "{" + ", ".join(parts) + "}"
