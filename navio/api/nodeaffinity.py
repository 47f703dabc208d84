"""Node selection terms: does a node satisfy a pod's nodeSelector and required node affinity.

component-helpers/scheduling/corev1/nodeaffinity semantics (v1.32), shared by the scheduler
and by the controllers that place pods themselves (DaemonSet):
- required affinity = `spec.nodeSelector` (every pair must match) AND, when set, the required
  NodeSelector: terms are ORed, a term's matchExpressions and matchFields ANDed; an empty term
  matches nothing; a term with an invalid requirement (bad operator, Gt/Lt without one
  integer) matches nothing. matchFields supports only `metadata.name`.
- Operators: In, NotIn (true when the label is absent), Exists, DoesNotExist, Gt, Lt (label
  value and operand both parse as int64).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from navio.api.selectors.labels import _parse_int64

__all__ = ["expr_valid", "field_valid", "expr_matches", "term_valid", "term_matches",
           "required_terms", "required_matches"]

_OPS = frozenset({"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"})


def expr_valid(expr: Mapping[str, Any]) -> bool:
    op = expr.get("operator")
    values = expr.get("values") or []
    if op not in _OPS:
        return False
    if op in ("In", "NotIn"):
        return len(values) > 0
    if op in ("Exists", "DoesNotExist"):
        return len(values) == 0
    return len(values) == 1 and _parse_int64(values[0]) is not None


def field_valid(expr: Mapping[str, Any]) -> bool:
    return (expr.get("key") == "metadata.name" and expr.get("operator") in ("In", "NotIn")
            and len(expr.get("values") or []) == 1)


def expr_matches(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """One (valid) matchExpressions requirement against a node's labels."""
    op, key = expr["operator"], expr.get("key", "")
    values = expr.get("values") or []
    present = key in labels
    if op == "In":
        return present and labels[key] in values
    if op == "NotIn":
        return not present or labels[key] not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if not present:
        return False
    have = _parse_int64(labels[key])
    if have is None:
        return False
    want = _parse_int64(values[0])
    assert want is not None
    return have > want if op == "Gt" else have < want


def term_valid(term: Mapping[str, Any]) -> bool:
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    return bool(exprs or fields) and all(map(expr_valid, exprs)) and \
        all(map(field_valid, fields))


def term_matches(term: Mapping[str, Any], labels: Mapping[str, str], name: str) -> bool:
    """One NodeSelectorTerm against one node (its labels and name)."""
    if not term_valid(term):
        return False
    for expr in term.get("matchExpressions") or ():
        if not expr_matches(expr, labels):
            return False
    for expr in term.get("matchFields") or ():
        if (name == expr["values"][0]) != (expr["operator"] == "In"):
            return False
    return True


def required_terms(spec: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    """The pod's required nodeSelectorTerms, None when it has no required node affinity."""
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    return None if required is None else list(required.get("nodeSelectorTerms") or [])


def required_matches(spec: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """nodeaffinity.GetRequiredNodeAffinity(pod).Match(node) for a pod spec and a Node."""
    meta = node.get("metadata") or {}
    labels = meta.get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    terms = required_terms(spec)
    if terms is None:
        return True
    return any(term_matches(t, labels, meta.get("name", "")) for t in terms)
