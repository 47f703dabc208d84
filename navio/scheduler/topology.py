"""Topology pairs (label key, value) and their per-node-row projection.

InterPodAffinity and PodTopologySpread count pods per topology domain — a (key, value) pair
such as (topology.kubernetes.io/zone, a) — in dicts, which is the reference form both the
per-node and the batched filters read. `per_row` turns such a dict into one number per node
row (0 where the node lacks the key or its pair is absent), so a batched filter compares all
nodes at once; its cost is the number of pairs, plus one gather over the rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from navio.scheduler.nodearrays import np

if TYPE_CHECKING:
    from navio.scheduler.cache import Cache

__all__ = ["Pair", "per_row", "has_label"]

Pair = tuple[str, str]


def per_row(cache: "Cache", key: str, pairs: Mapping[Pair, Any], rows: Any = None,
            dtype: Any = None) -> Any:
    """For each node row (or each of `rows`), `pairs[(key, node's value of key)]`, else 0."""
    arrays = cache.arrays
    assert arrays is not None
    col = arrays.label(key)
    by_vid = np.zeros(len(col.values) + 1, dtype=dtype or np.int64)  # last slot: missing
    for (k, v), n in pairs.items():
        if k == key:
            vid = col.value_ids.get(v)
            if vid is not None:
                by_vid[vid] = n
    ids = col.ids[: len(cache.slots)] if rows is None else col.ids[rows]
    return by_vid[ids]


def has_label(cache: "Cache", key: str, rows: Any = None) -> Any:
    arrays = cache.arrays
    assert arrays is not None
    ids = arrays.label_ids(key)
    return (ids[: len(cache.slots)] if rows is None else ids[rows]) >= 0
