"""VolumeBinding (issue 13): claims decide where a pod may go."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sched_fakes import cache_with, info, node, pod, run_filter

from navio.scheduler.algorithm import Algorithm
from navio.scheduler.framework import Code, CycleState, FitError
from navio.scheduler.plugins import default_profile
from navio.scheduler.plugins.volume_binding import (
    ERR_REASON_BIND_CONFLICT,
    ERR_REASON_NODE_CONFLICT,
    UNBOUND_IMMEDIATE,
    VolumeBinding,
    VolumeListers,
)


def _claim(name: str, cls: str = "local", volume: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "storageClassName": cls,
                            "resources": {"requests": {"storage": "1Gi"}}}
    if volume:
        spec["volumeName"] = volume
    return {"metadata": {"name": name, "namespace": "default", "uid": f"u-{name}"},
            "spec": spec, "status": {"phase": "Bound" if volume else "Pending"}}


def _volume(name: str, on: str, cls: str = "local", phase: str = "Available") -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "storageClassName": cls, "hostPath": {"path": "/x"},
                     "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                         {"key": "kubernetes.io/hostname", "operator": "In",
                          "values": [on]}]}]}}},
            "status": {"phase": phase}}


CLASSES = {
    "local": {"metadata": {"name": "local"}, "provisioner": "kubernetes.io/no-provisioner",
              "volumeBindingMode": "WaitForFirstConsumer"},
    "local-path": {"metadata": {"name": "local-path"}, "provisioner": "rancher.io/local-path",
                   "volumeBindingMode": "WaitForFirstConsumer"},
    "fast": {"metadata": {"name": "fast"}, "provisioner": "x.io/y",
             "volumeBindingMode": "Immediate"},
}


def _plugin(claims: list[dict[str, Any]], volumes: list[dict[str, Any]]) -> VolumeBinding:
    by_key = {f"default/{c['metadata']['name']}": c for c in claims}
    by_name = {v["metadata"]["name"]: v for v in volumes}
    return VolumeBinding(VolumeListers(by_key.get, by_name.get, lambda: list(volumes),
                                       CLASSES.get))


def _with_claims(*names: str) -> dict[str, Any]:
    return pod(volumes=[{"name": f"v{i}", "persistentVolumeClaim": {"claimName": n}}
                        for i, n in enumerate(names)])


def test_pods_without_claims_skip_the_plugin() -> None:
    c = cache_with([node("n1")])
    assert run_filter(_plugin([], []), info(pod()), c.get("n1")) == "skip"


def test_a_bound_volume_pins_the_pod_to_its_node() -> None:
    c = cache_with([node("n1"), node("n2")])
    plugin = _plugin([_claim("data", volume="pv1")], [_volume("pv1", on="n2", phase="Bound")])
    p = info(_with_claims("data"))
    st = run_filter(plugin, p, c.get("n1"))
    assert st.reasons == (ERR_REASON_NODE_CONFLICT,)
    assert st.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert run_filter(plugin, p, c.get("n2")) is None


def test_an_unbound_immediate_claim_makes_the_pod_wait_everywhere() -> None:
    c = cache_with([node("n1")])
    algo = Algorithm(c, default_profile(c, volume_binding=_plugin([_claim("data", "fast")], [])),
                     rng=random.Random(1))
    with pytest.raises(FitError) as e:
        algo.schedule(info(_with_claims("data")))
    assert str(e.value) == f"0/1 nodes are available: {UNBOUND_IMMEDIATE}."


def test_a_missing_claim_is_named() -> None:
    c = cache_with([node("n1")])
    st = run_filter(_plugin([], []), info(_with_claims("nope")), c.get("n1"))
    assert st.reasons == ('persistentvolumeclaim "nope" not found',)


def test_delayed_claims_go_where_a_volume_fits_or_can_be_provisioned() -> None:
    c = cache_with([node("n1"), node("n2")])
    static = _plugin([_claim("data")], [_volume("pv1", on="n2")])
    p = info(_with_claims("data"))
    assert run_filter(static, p, c.get("n1")).reasons == (ERR_REASON_BIND_CONFLICT,)
    assert run_filter(static, p, c.get("n2")) is None
    dynamic = _plugin([_claim("data", "local-path")], [])
    assert run_filter(dynamic, p, c.get("n1")) is None


@pytest.mark.parametrize("arrays", [True, False], ids=["batched", "per node"])
def test_batched_filter_agrees_with_per_node(arrays: bool) -> None:
    c = cache_with([node("n1"), node("n2"), node("n3")], arrays=True)
    plugin = _plugin([_claim("data")], [_volume("pv1", on="n3")])
    p = info(_with_claims("data"))
    state = CycleState()
    assert plugin.pre_filter(state, p) is None
    mask = plugin.filter_nodes(state, p, c)
    per_node = [plugin.filter(state, p, c.get(n)) is None for n in ("n1", "n2", "n3")]
    assert [bool(mask.ok[c.get(n).idx]) for n in ("n1", "n2", "n3")] == per_node
    algo = Algorithm(c, default_profile(c, volume_binding=plugin), rng=random.Random(1),
                     batch=arrays)
    assert algo.schedule(p).node == "n3"


class _Client:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def update(self, resource: Any, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("update", body))
        return body

    async def patch(self, resource: Any, name: str, body: Any, namespace: str) -> Any:
        self.calls.append(("patch", (name, body)))
        return body


async def test_pre_bind_binds_a_fitting_volume_or_selects_the_node() -> None:
    plugin = _plugin([_claim("data"), _claim("dyn", "local-path")], [_volume("pv1", on="n2")])
    client = _Client()
    await plugin.pre_bind(client, _with_claims("data", "dyn"), node("n2"))
    (kind1, pv), (kind2, (name, patch)) = client.calls
    assert kind1 == "update" and pv["spec"]["claimRef"]["name"] == "data"
    assert kind2 == "patch" and name == "dyn"
    assert patch == {"metadata": {"annotations": {"volume.kubernetes.io/selected-node": "n2"}}}
