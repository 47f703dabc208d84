"""The scheduling framework's values: Status and its Code, CycleState, FitError.

Why: plugins report with kube-scheduler's vocabulary (framework/interface.go, types.go) so
that a rejection reads the same in `kubectl describe`: each node's status carries reasons
such as "Insufficient cpu", and a pod that fits nowhere gets one FitError whose message
counts the reasons over all nodes: "0/3 nodes are available: 1 node(s) had untolerated taint
{k: v}, 2 Insufficient cpu." — reasons sorted as strings, as upstream sorts them.

Guarantees: `Status` is immutable; `Code` values and order are upstream's. `CycleState` is a
per-cycle dict whose values with a `clone()` method are copied by `CycleState.clone()`
(preemption simulates on a copy). A `Diagnosis` records, per node row, whether it failed with
UnschedulableAndUnresolvable (preemption cannot help there).
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from navio.scheduler.podinfo import PodInfo

__all__ = [
    "Code", "Status", "SUCCESS", "SKIP", "CycleState", "Diagnosis", "FitError", "NoNodesAvailable",
    "NodeMask", "MAX_NODE_SCORE", "NO_NODE_AVAILABLE_MSG",
    "EVENT_NODE_ADD", "EVENT_NODE_UPDATE", "EVENT_NODE_DELETE", "EVENT_POD_ADD",
    "EVENT_POD_UPDATE", "EVENT_POD_DELETE", "EVENT_POD_GROUP", "ALL_EVENTS",
    "default_normalize",
]

MAX_NODE_SCORE = 100
NO_NODE_AVAILABLE_MSG = "0/{} nodes are available"

# Cluster events that may make a rejected pod schedulable (framework.ClusterEvent, coarse).
EVENT_NODE_ADD, EVENT_NODE_UPDATE, EVENT_NODE_DELETE = "NodeAdd", "NodeUpdate", "NodeDelete"
EVENT_POD_ADD, EVENT_POD_UPDATE, EVENT_POD_DELETE = "AssignedPodAdd", "AssignedPodUpdate", \
    "AssignedPodDelete"
EVENT_POD_GROUP = "PodGroupChange"
ALL_EVENTS = frozenset({EVENT_NODE_ADD, EVENT_NODE_UPDATE, EVENT_NODE_DELETE, EVENT_POD_ADD,
                        EVENT_POD_UPDATE, EVENT_POD_DELETE, EVENT_POD_GROUP})


class Code(enum.IntEnum):
    SUCCESS = 0
    ERROR = 1
    UNSCHEDULABLE = 2
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3
    WAIT = 4
    SKIP = 5
    PENDING = 6


@dataclass(frozen=True, slots=True)
class Status:
    code: Code = Code.SUCCESS
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @classmethod
    def unschedulable(cls, *reasons: str, plugin: str = "") -> "Status":
        return cls(Code.UNSCHEDULABLE, reasons, plugin)

    @classmethod
    def unresolvable(cls, *reasons: str, plugin: str = "") -> "Status":
        return cls(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, reasons, plugin)

    @classmethod
    def error(cls, message: str, plugin: str = "") -> "Status":
        return cls(Code.ERROR, (message,), plugin)

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)

    def is_success(self) -> bool:
        return self.code == Code.SUCCESS

    def is_rejected(self) -> bool:
        return self.code in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE)

    def with_plugin(self, plugin: str) -> "Status":
        return self if self.plugin == plugin else Status(self.code, self.reasons, plugin)


SUCCESS = Status()
SKIP = Status(Code.SKIP)


class CycleState(dict[str, Any]):
    """Per-cycle plugin data (framework.CycleState), keyed "PreFilter<Name>" etc."""

    __slots__ = ("skip_filter", "skip_score", "node_names", "node_names_plugins")

    def __init__(self) -> None:
        super().__init__()
        self.skip_filter: set[str] = set()
        self.skip_score: set[str] = set()
        self.node_names: set[str] | None = None      # PreFilterResult.NodeNames
        self.node_names_plugins: list[str] = []

    def restrict_nodes(self, names: set[str], plugin: str) -> None:
        """PreFilterResult: only `names` can fit (intersected across plugins)."""
        self.node_names = set(names) if self.node_names is None else self.node_names & names
        self.node_names_plugins.append(plugin)

    def clone(self) -> "CycleState":
        c = CycleState()
        for k, v in self.items():
            c[k] = v.clone() if hasattr(v, "clone") else v
        c.skip_filter = set(self.skip_filter)
        c.skip_score = set(self.skip_score)
        c.node_names = None if self.node_names is None else set(self.node_names)
        c.node_names_plugins = list(self.node_names_plugins)
        return c


@dataclass(slots=True)
class NodeMask:
    """A batched filter verdict over all node rows: `ok[i]` passes; each failure entry is
    (reason, rows it applies to, rows where it is unresolvable — an array or a bool)."""

    ok: Any
    failures: list[tuple[str, Any, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Diagnosis:
    reasons: Counter[str] = field(default_factory=Counter)
    failed: set[int] = field(default_factory=set)
    unresolvable: set[int] = field(default_factory=set)
    plugins: set[str] = field(default_factory=set)      # UnschedulablePlugins
    pre_filter_msg: str = ""
    post_filter_msg: str = ""

    def add(self, row: int, status: Status) -> None:
        self.failed.add(row)
        for r in status.reasons:
            self.reasons[r] += 1
        if status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
            self.unresolvable.add(row)
        if status.plugin:
            self.plugins.add(status.plugin)


class FitError(Exception):
    """The pod fits no node (framework.FitError); str() is the FailedScheduling message."""

    unresolvable_all = False

    def __init__(self, pod: PodInfo, num_all_nodes: int, diagnosis: Diagnosis) -> None:
        super().__init__()
        self.pod = pod
        self.num_all_nodes = num_all_nodes
        self.diagnosis = diagnosis

    def __str__(self) -> str:
        d = self.diagnosis
        msg = NO_NODE_AVAILABLE_MSG.format(self.num_all_nodes) + ":"
        if d.pre_filter_msg:
            msg += f" {d.pre_filter_msg}."
        else:
            hist = sorted(f"{n} {reason}" for reason, n in d.reasons.items())
            if hist:
                msg += f" {', '.join(hist)}."
        if d.post_filter_msg:
            msg += f" {d.post_filter_msg}."
        return msg


class NoNodesAvailable(FitError):
    """ErrNoNodesAvailable: the cluster has no nodes at all."""

    unresolvable_all = True

    def __str__(self) -> str:
        return "no nodes available to schedule pods"


def default_normalize(scores: Any, reverse: bool = False) -> Any:
    """helper.DefaultNormalizeScore over a list or a numpy array (integer division)."""
    if isinstance(scores, list):
        top = max(scores, default=0)
        if top == 0:
            return [MAX_NODE_SCORE] * len(scores) if reverse else scores
        out = [MAX_NODE_SCORE * s // top for s in scores]
        return [MAX_NODE_SCORE - s for s in out] if reverse else out
    top = int(scores.max()) if len(scores) else 0
    if top == 0:
        return scores * 0 + MAX_NODE_SCORE if reverse else scores
    out = MAX_NODE_SCORE * scores // top
    return MAX_NODE_SCORE - out if reverse else out
