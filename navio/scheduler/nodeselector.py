"""Node selectors (`nodeSelector`, nodeAffinity terms), per node and over all nodes at once.

The semantics are `navio.api.nodeaffinity`'s (the per-node reference, shared with the
DaemonSet controller). The batched forms return numpy bool arrays over node rows `[0, n)`; they agree with the
per-node forms (tests/unit/scheduler/test_batch_agreement.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from navio.api import nodeaffinity

if TYPE_CHECKING:
    from navio.scheduler.cache import Cache
    from navio.scheduler.nodeinfo import NodeInfo

__all__ = ["RequiredNodeAffinity", "term_matches", "term_mask", "preferred_score"]

def term_matches(term: Mapping[str, Any], node: NodeInfo) -> bool:
    """One NodeSelectorTerm against one node."""
    return nodeaffinity.term_matches(term, node.labels, node.name)


def term_mask(term: Mapping[str, Any], cache: Cache) -> Any:
    """`term_matches` for every node row."""
    arrays = cache.arrays
    assert arrays is not None
    np = _np()
    n = len(cache.slots)
    if not nodeaffinity.term_valid(term):
        return np.zeros(n, dtype=bool)
    mask = np.ones(n, dtype=bool)
    for expr in term.get("matchExpressions") or ():
        col = arrays.label(expr.get("key", ""))
        ids = col.ids[:n]
        op, values = expr["operator"], expr.get("values") or []
        if op in ("In", "NotIn"):
            known = [col.value_ids[v] for v in values if v in col.value_ids]
            hit = np.isin(ids, known) if known else np.zeros(n, dtype=bool)
            mask &= hit if op == "In" else ~hit
        elif op == "Exists":
            mask &= ids >= 0
        elif op == "DoesNotExist":
            mask &= ids < 0
        else:
            nums = arrays.label_numeric(expr.get("key", ""))
            want = float(values[0])
            have = np.where(ids >= 0, nums[np.maximum(ids, 0)] if len(nums) else 0.0,
                            np.nan)
            with np.errstate(invalid="ignore"):
                mask &= (have > want) if op == "Gt" else (have < want)
    for expr in term.get("matchFields") or ():
        ni = cache.get(expr["values"][0])
        hit = np.zeros(n, dtype=bool)
        if ni is not None and ni.idx < n:
            hit[ni.idx] = True
        mask &= hit if expr["operator"] == "In" else ~hit
    return mask


def _np() -> Any:
    from navio.scheduler.nodearrays import np
    return np


class RequiredNodeAffinity:
    """nodeaffinity.GetRequiredNodeAffinity(pod): nodeSelector AND required terms."""

    __slots__ = ("node_selector", "terms")

    def __init__(self, node_selector: Mapping[str, str] | None,
                 required: Mapping[str, Any] | None) -> None:
        self.node_selector = dict(node_selector) if node_selector else None
        self.terms: list[Mapping[str, Any]] | None = (
            list(required.get("nodeSelectorTerms") or []) if required is not None else None)

    @property
    def empty(self) -> bool:
        return self.node_selector is None and self.terms is None

    def matches(self, node: NodeInfo) -> bool:
        if self.node_selector is not None:
            labels = node.labels
            for k, v in self.node_selector.items():
                if labels.get(k) != v:
                    return False
        if self.terms is not None:
            return any(term_matches(t, node) for t in self.terms)
        return True

    def mask(self, cache: Cache) -> Any:
        np = _np()
        arrays = cache.arrays
        assert arrays is not None
        n = len(cache.slots)
        mask = np.ones(n, dtype=bool)
        if self.node_selector is not None:
            for k, v in self.node_selector.items():
                col = arrays.label(k)
                vid = col.value_ids.get(v)
                if vid is None:
                    return np.zeros(n, dtype=bool)
                mask &= col.ids[:n] == vid
        if self.terms is not None:
            any_term = np.zeros(n, dtype=bool)
            for t in self.terms:
                any_term |= term_mask(t, cache)
            mask &= any_term
        return mask


def preferred_score(preferred: tuple[Mapping[str, Any], ...], node: NodeInfo) -> int:
    """NodeAffinity's raw score: the summed weights of preferred terms the node matches."""
    total = 0
    for p in preferred:
        weight = int(p.get("weight") or 0)
        if weight and term_matches(p.get("preference") or {}, node):
            total += weight
    return total
