"""TaintToleration, per the taints-and-tolerations docs."""

from __future__ import annotations

import pytest
from sched_fakes import cache_with, info, node, pod, run_filter

from navio.scheduler.framework import Code, CycleState
from navio.scheduler.plugins.taint_toleration import TaintToleration

KEY1 = {"key": "key1", "value": "value1", "effect": "NoSchedule"}

CASES = [
    ("an untolerated NoSchedule taint rejects, naming the taint", [KEY1], [],
     "node(s) had untolerated taint {key1: value1}"),
    ("Equal with the same key, value and effect tolerates", [KEY1],
     [{"key": "key1", "operator": "Equal", "value": "value1", "effect": "NoSchedule"}], None),
    ("Exists with the key tolerates any value", [KEY1],
     [{"key": "key1", "operator": "Exists", "effect": "NoSchedule"}], None),
    ("an empty key with Exists tolerates everything", [KEY1], [{"operator": "Exists"}], None),
    ("an empty effect matches every effect", [KEY1],
     [{"key": "key1", "operator": "Equal", "value": "value1"}], None),
    ("a different value does not tolerate", [KEY1],
     [{"key": "key1", "operator": "Equal", "value": "other", "effect": "NoSchedule"}],
     "node(s) had untolerated taint {key1: value1}"),
    ("NoExecute taints reject too", [{"key": "k", "value": "", "effect": "NoExecute"}], [],
     "node(s) had untolerated taint {k: }"),
    ("PreferNoSchedule never rejects", [{"key": "k", "value": "v",
                                         "effect": "PreferNoSchedule"}], [], None),
    ("the first untolerated taint is named",
     [{"key": "a", "value": "1", "effect": "NoSchedule"}, KEY1],
     [{"key": "a", "operator": "Exists"}], "node(s) had untolerated taint {key1: value1}"),
]


@pytest.mark.parametrize("name,taints,tolerations,reason", CASES, ids=[c[0] for c in CASES])
def test_filter(name, taints, tolerations, reason):
    c = cache_with([node("n1", taints=taints)])
    st = run_filter(TaintToleration(), info(pod(tolerations=tolerations)), c.get("n1"))
    if reason is None:
        assert st is None
    else:
        assert st.reasons == (reason,)
        assert st.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE


def test_score_prefers_fewer_untolerated_prefer_no_schedule_taints():
    soft = [{"key": f"k{i}", "value": "v", "effect": "PreferNoSchedule"} for i in range(2)]
    c = cache_with([node("none"), node("one", taints=soft[:1]), node("two", taints=soft)])
    p = info(pod(tolerations=[{"key": "k1", "operator": "Exists", "effect": "NoSchedule"}]))
    plugin = TaintToleration()
    raw = [plugin.score(CycleState(), p, c.get(n)) for n in ("none", "one", "two")]
    assert raw == [0, 1, 2]      # a NoSchedule toleration does not count for PreferNoSchedule
    assert plugin.normalize(CycleState(), p, raw, None) == [100, 50, 0]
