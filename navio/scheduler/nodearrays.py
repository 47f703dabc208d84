"""Per-node columns (numpy) mirroring the cache, so filters and scores run over all nodes at once.

Why: a cycle asks the same question of thousands of nodes ("is free cpu ≥ the request?");
one vectorised comparison over an int64 column costs microseconds where a Python loop over
5,000 NodeInfos costs milliseconds. Row `i` is the node whose `NodeInfo.idx == i`; rows are
reused after a node is deleted (`valid` is False meanwhile), so an index stays stable while a
node exists and the cache's pod indexes can key on it.

Guarantees: `sync(ni)` makes row `ni.idx` equal to the NodeInfo's totals; the cache calls it
after every change. Label columns hold, per label key, the id of each node's value (-1 when the
node lacks the label) and are built on first use, then kept current. numpy is optional: without
it `ARRAYS_AVAILABLE` is False and the framework evaluates nodes one by one.
"""

from __future__ import annotations

from typing import Any

from navio.api.selectors.labels import _parse_int64
from navio.scheduler.nodeinfo import NodeInfo

try:                                   # pragma: no cover - exercised by the environment
    import numpy as np
except ImportError:                    # pragma: no cover
    np = None                          # type: ignore[assignment]

__all__ = ["ARRAYS_AVAILABLE", "NodeArrays", "np"]

ARRAYS_AVAILABLE = np is not None

_INT_COLUMNS = ("alloc_cpu", "alloc_mem", "alloc_eph", "alloc_pods", "req_cpu", "req_mem",
                "req_eph", "pod_count", "non0_cpu", "non0_mem")


class _LabelColumn:
    __slots__ = ("ids", "values", "value_ids", "numeric", "numeric_len")

    def __init__(self, capacity: int) -> None:
        self.ids = np.full(capacity, -1, dtype=np.int32)
        self.values: list[str] = []
        self.value_ids: dict[str, int] = {}
        self.numeric: Any = None
        self.numeric_len = -1

    def id_for(self, value: str) -> int:
        vid = self.value_ids.get(value)
        if vid is None:
            vid = self.value_ids[value] = len(self.values)
            self.values.append(value)
        return vid


class NodeArrays:
    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        self.valid = np.zeros(capacity, dtype=bool)
        self.unschedulable = np.zeros(capacity, dtype=bool)
        self.taint_sig = np.zeros(capacity, dtype=np.int32)
        z = np.zeros
        self.alloc_cpu, self.alloc_mem, self.alloc_eph, self.alloc_pods = (
            z(capacity, dtype=np.int64) for _ in range(4))
        self.req_cpu, self.req_mem, self.req_eph, self.pod_count = (
            z(capacity, dtype=np.int64) for _ in range(4))
        self.non0_cpu, self.non0_mem = (z(capacity, dtype=np.int64) for _ in range(2))
        self.scalar_alloc: dict[str, Any] = {}
        self.scalar_req: dict[str, Any] = {}
        self._labels: dict[str, _LabelColumn] = {}
        self._nodes: list[NodeInfo | None] = []
        # Taint signatures: id 0 is "no taints"; equal taint lists share an id.
        self.taint_sigs: dict[tuple[Any, ...], int] = {(): 0}
        self.sig_taints: list[tuple[dict[str, Any], ...]] = [()]

    # ---- rows ----------------------------------------------------------------------------

    def _grow(self, need: int) -> None:
        cap = self.capacity
        while cap <= need:
            cap *= 2
        for name in ("valid", "unschedulable", "taint_sig", *_INT_COLUMNS):
            old = getattr(self, name)
            new = np.zeros(cap, dtype=old.dtype)
            new[: self.capacity] = old
            setattr(self, name, new)
        for table in (self.scalar_alloc, self.scalar_req):
            for key, old in table.items():
                new = np.zeros(cap, dtype=np.int64)
                new[: self.capacity] = old
                table[key] = new
        for col in self._labels.values():
            ids = np.full(cap, -1, dtype=np.int32)
            ids[: self.capacity] = col.ids
            col.ids = ids
        self.capacity = cap

    def _scalar(self, table: dict[str, Any], name: str) -> Any:
        col = table.get(name)
        if col is None:
            col = table[name] = np.zeros(self.capacity, dtype=np.int64)
        return col

    def _sig(self, taints: tuple[dict[str, Any], ...]) -> int:
        key = tuple((t.get("key") or "", t.get("value") or "", t.get("effect") or "")
                    for t in taints)
        sig = self.taint_sigs.get(key)
        if sig is None:
            sig = self.taint_sigs[key] = len(self.sig_taints)
            self.sig_taints.append(taints)
        return sig

    def sync(self, ni: NodeInfo) -> None:
        """Make row `ni.idx` equal to the NodeInfo (node fields and pod totals)."""
        i = ni.idx
        if i >= self.capacity:
            self._grow(i)
        while len(self._nodes) <= i:
            self._nodes.append(None)
        self._nodes[i] = ni
        self.valid[i] = ni.node is not None
        self.unschedulable[i] = ni.unschedulable
        self.taint_sig[i] = self._sig(ni.taints)
        a, r = ni.allocatable, ni.requested
        self.alloc_cpu[i], self.alloc_mem[i] = a.milli_cpu, a.memory
        self.alloc_eph[i], self.alloc_pods[i] = a.ephemeral_storage, a.allowed_pod_number
        self.req_cpu[i], self.req_mem[i], self.req_eph[i] = r.milli_cpu, r.memory, \
            r.ephemeral_storage
        self.pod_count[i] = len(ni.pods)
        self.non0_cpu[i], self.non0_mem[i] = ni.non0_cpu, ni.non0_mem
        for name in set(self.scalar_alloc) | set(a.scalar):
            self._scalar(self.scalar_alloc, name)[i] = a.scalar.get(name, 0)
        for name in set(self.scalar_req) | set(r.scalar):
            self._scalar(self.scalar_req, name)[i] = r.scalar.get(name, 0)
        for key, col in self._labels.items():
            value = ni.labels.get(key) if ni.node is not None else None
            col.ids[i] = -1 if value is None else col.id_for(value)

    def clear(self, idx: int) -> None:
        self.valid[idx] = False
        if idx < len(self._nodes):
            self._nodes[idx] = None
        for col in self._labels.values():
            col.ids[idx] = -1

    def scalar_alloc_col(self, name: str) -> Any:
        return self._scalar(self.scalar_alloc, name)

    def scalar_req_col(self, name: str) -> Any:
        return self._scalar(self.scalar_req, name)

    # ---- labels ----------------------------------------------------------------------------

    def label(self, key: str) -> _LabelColumn:
        """The column of value ids of label `key` (built on first use)."""
        col = self._labels.get(key)
        if col is None:
            col = self._labels[key] = _LabelColumn(self.capacity)
            for ni in self._nodes:
                if ni is not None and ni.node is not None:
                    value = ni.labels.get(key)
                    if value is not None:
                        col.ids[ni.idx] = col.id_for(value)
        return col

    def label_ids(self, key: str) -> Any:
        return self.label(key).ids

    def label_numeric(self, key: str) -> Any:
        """Per value id, the value as an int64-parsable number (nan when it is not one)."""
        col = self.label(key)
        if col.numeric_len != len(col.values):
            nums = [_parse_int64(v) for v in col.values]
            col.numeric = np.array([float("nan") if n is None else float(n) for n in nums],
                                   dtype=np.float64)
            col.numeric_len = len(col.values)
        return col.numeric
