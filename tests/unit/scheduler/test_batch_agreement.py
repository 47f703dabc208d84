"""The batched (numpy) forms agree with the per-node forms: plugin by plugin, and for whole
cycles (chosen node, FailedScheduling message, unresolvable nodes), on random clusters."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sched_fakes import HOSTNAME, ZONE, algorithm, cache_with, container, info, node, pod

from navio.scheduler.framework import Code, CycleState, FitError
from navio.scheduler.nodearrays import ARRAYS_AVAILABLE, np
from navio.scheduler.plugins import default_profile

pytestmark = pytest.mark.skipif(not ARRAYS_AVAILABLE, reason="numpy is not installed")

TAINTS = [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
          {"key": "spot", "value": "", "effect": "PreferNoSchedule"},
          {"key": "drain", "value": "now", "effect": "NoExecute"}]
APPS = ["a", "b", "c"]


def _maybe(r: random.Random, p: float) -> bool:
    return r.random() < p


def _term(r: random.Random, key: str | None = None) -> dict[str, Any]:
    t: dict[str, Any] = {"labelSelector": {"matchLabels": {"app": r.choice(APPS)}},
                         "topologyKey": key or r.choice([HOSTNAME, ZONE])}
    if _maybe(r, 0.2):
        t["namespaces"] = ["default", "other"]
    return t


def random_node(r: random.Random, i: int) -> dict[str, Any]:
    labels = {}
    if _maybe(r, 0.9):
        labels[ZONE] = f"z{r.randrange(4)}"
    if _maybe(r, 0.5):
        labels["disktype"] = r.choice(["ssd", "hdd"])
    labels["cores"] = str(r.choice([2, 4, 8, 16]))
    extra = {"example.com/gpu": str(r.randrange(3))} if _maybe(r, 0.2) else {}
    return node(f"n{i:03d}", cpu=str(r.choice([1, 2, 4, 8])),
                memory=f"{r.choice([1, 2, 4, 8])}Gi", pods=str(r.choice([3, 5, 10, 30])),
                labels=labels, taints=[t for t in TAINTS if _maybe(r, 0.12)],
                unschedulable=_maybe(r, 0.05), **extra)


def random_existing(r: random.Random, i: int, nodes: int) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if _maybe(r, 0.15):
        spec["affinity"] = {"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [_term(r)]}}
    elif _maybe(r, 0.15):
        spec["affinity"] = {"podAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": r.randrange(1, 100), "podAffinityTerm": _term(r)}]}}
    ports = [{"containerPort": 80, "hostPort": 8080}] if _maybe(r, 0.1) else None
    return pod(f"e{i}", ns=r.choice(["default", "other"]),
               labels={"app": r.choice(APPS)} if _maybe(r, 0.8) else {},
               containers=[container(cpu=f"{r.choice([100, 250, 500])}m",
                                     memory=f"{r.choice([64, 256, 512])}Mi", ports=ports)],
               node_name=f"n{r.randrange(nodes):03d}", **spec)


def random_pod(r: random.Random, i: int) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if _maybe(r, 0.2):
        spec["nodeSelector"] = {"disktype": r.choice(["ssd", "hdd"])}
    aff: dict[str, Any] = {}
    if _maybe(r, 0.2):
        aff["nodeAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": "cores", "operator": r.choice(["Gt", "Lt"]),
                 "values": [str(r.choice([2, 4, 8]))]}]},
                {"matchExpressions": [{"key": ZONE, "operator": "In",
                                       "values": ["z0", "z1"]}]}]}}
    if _maybe(r, 0.3):
        aff.setdefault("nodeAffinity", {})["preferredDuringSchedulingIgnoredDuringExecution"] \
            = [{"weight": r.randrange(1, 100), "preference": {"matchExpressions": [
                {"key": "disktype", "operator": "In", "values": ["ssd"]}]}}]
    if _maybe(r, 0.25):
        aff["podAntiAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": [_term(r)]}
    if _maybe(r, 0.2):
        aff["podAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": [_term(r)]}
    if _maybe(r, 0.25):
        aff.setdefault("podAntiAffinity", {})[
            "preferredDuringSchedulingIgnoredDuringExecution"] = [
            {"weight": r.randrange(1, 100), "podAffinityTerm": _term(r)}]
    if aff:
        spec["affinity"] = aff
    if _maybe(r, 0.35):
        spec["topologySpreadConstraints"] = [{
            "maxSkew": r.choice([1, 2]), "topologyKey": r.choice([ZONE, HOSTNAME]),
            "whenUnsatisfiable": r.choice(["DoNotSchedule", "ScheduleAnyway"]),
            "labelSelector": {"matchLabels": {"app": r.choice(APPS)}},
            "minDomains": r.choice([1, 1, 3]) if _maybe(r, 0.3) else None}]
        spec["topologySpreadConstraints"][0] = {
            k: v for k, v in spec["topologySpreadConstraints"][0].items() if v is not None}
    if _maybe(r, 0.3):
        spec["tolerations"] = [{"key": t["key"], "operator": "Exists"}
                               for t in TAINTS if _maybe(r, 0.5)]
    more = {"example.com/gpu": "1"} if _maybe(r, 0.1) else {}
    ports = [{"containerPort": 80, "hostPort": 8080}] if _maybe(r, 0.1) else None
    return pod(f"p{i}", labels={"app": r.choice(APPS)},
               containers=[container(cpu=f"{r.choice([100, 500, 1000, 3000])}m",
                                     memory=f"{r.choice([128, 512, 2048])}Mi", ports=ports,
                                     **more)], **spec)


def random_cluster(seed: int) -> tuple[Any, list[dict[str, Any]]]:
    r = random.Random(seed)
    n = r.choice([20, 60, 150, 260])
    nodes = [random_node(r, i) for i in range(n)]
    existing = [random_existing(r, i, n) for i in range(r.randrange(n * 2))]
    return cache_with(nodes, existing), [random_pod(r, i) for i in range(25)]


def _plugin_verdicts(cache: Any, p: Any) -> None:
    profile = default_profile(cache)
    state = CycleState()
    for plugin in profile.filters:
        st = plugin.pre_filter(state, p)
        if st is not None and st.code == Code.SKIP:
            continue
        if st is not None:
            return
        batch = plugin.filter_nodes(state, p, cache)
        for ni in cache.node_infos():
            one = plugin.filter(state, p, ni)
            assert bool(batch.ok[ni.idx]) == (one is None), (plugin.name, ni.name)
            if one is None:
                continue
            got = {reason for reason, mask, _ in batch.failures if mask[ni.idx]}
            assert got == set(one.reasons), (plugin.name, ni.name)
            unres = any(bool(mask[ni.idx]) and (u is True or (u is not False and u[ni.idx]))
                        for _, mask, u in batch.failures)
            assert unres == (one.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE), \
                (plugin.name, ni.name)


def _plugin_scores(cache: Any, p: Any) -> None:
    profile = default_profile(cache)
    nodes = cache.node_infos()
    rows = np.array([ni.idx for ni in nodes], dtype=np.int64)

    class Feasible:
        pass
    feasible = Feasible()
    feasible.nodes, feasible.rows = nodes, rows
    for plugin, _ in profile.scorers:
        state = CycleState()
        st = plugin.pre_score(state, p, feasible)
        if st is not None and st.code == Code.SKIP:
            continue
        one = [plugin.score(state, p, ni) for ni in nodes]
        many = plugin.score_nodes(state, p, cache, rows)
        assert many.tolist() == one, plugin.name
        assert plugin.normalize(state, p, many, feasible).tolist() == \
            plugin.normalize(state, p, one, feasible), plugin.name


@pytest.mark.parametrize("seed", range(12))
def test_plugins_agree_node_by_node(seed):
    cache, pods = random_cluster(seed)
    for raw in pods:
        p = info(raw)
        _plugin_verdicts(cache, p)
        _plugin_scores(cache, p)


def _outcome(alg: Any, p: Any) -> Any:
    try:
        return alg.schedule(p).node
    except FitError as e:
        return ("FitError", str(e), sorted(e.diagnosis.unresolvable), sorted(e.diagnosis.failed))


@pytest.mark.parametrize("seed", range(20))
def test_whole_cycles_agree(seed):
    cache, pods = random_cluster(100 + seed)
    batched = algorithm(cache, seed=seed, batch=True)
    per_node = algorithm(cache, seed=seed, batch=False)
    assert batched.batch and not per_node.batch
    for raw in pods:
        p = info(raw)
        a, b = _outcome(batched, p), _outcome(per_node, p)
        assert a == b, raw["metadata"]["name"]
        assert batched.next_start == per_node.next_start
        if isinstance(a, str):
            cache.assume(p, a)


@pytest.mark.parametrize("seed", range(8))
def test_a_cache_without_arrays_decides_the_same(seed):
    """The numpy-free path (no arrays at all, as without numpy) matches the batched one."""
    r = random.Random(300 + seed)
    n = r.choice([20, 60, 150])
    nodes = [random_node(r, i) for i in range(n)]
    existing = [random_existing(r, i, n) for i in range(r.randrange(n * 2))]
    pods = [random_pod(r, i) for i in range(20)]
    with_arrays, plain = cache_with(nodes, existing), cache_with(nodes, existing, arrays=False)
    a, b = algorithm(with_arrays, seed=seed), algorithm(plain, seed=seed)
    assert a.batch and not b.batch
    for raw in pods:
        got_a, got_b = _outcome(a, info(raw)), _outcome(b, info(raw))
        assert got_a == got_b, raw["metadata"]["name"]
        if isinstance(got_a, str):
            with_arrays.assume(info(raw), got_a)
            plain.assume(info(raw), got_a)
