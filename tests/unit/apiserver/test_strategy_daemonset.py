"""The DaemonSet write strategy keeps `deprecated.daemonset.template.generation` as kube's
does (issue 6): 1 on create, +1 on every spec.template change, never set by clients."""

from __future__ import annotations

import copy
from typing import Any

from navio.api.defaults import apply_defaults
from navio.api.registry import default_registry
from navio.apiserver import strategy

DS = default_registry().kind("apps", "v1", "DaemonSet")
GEN = strategy.DS_TEMPLATE_GENERATION


def daemonset(image: str = "a", **annotations: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "ds", "namespace": "default", "annotations": annotations},
            "spec": {"selector": {"matchLabels": {"app": "d"}},
                     "template": {"metadata": {"labels": {"app": "d"}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


def created(obj: dict[str, Any]) -> dict[str, Any]:
    assert DS is not None
    strategy.prepare_for_create(DS, obj, "2024-01-01T00:00:00Z")
    apply_defaults("apps", "DaemonSet", obj)             # as stored
    return obj


def test_create_starts_the_template_generation_at_one() -> None:
    assert created(daemonset())["metadata"]["annotations"][GEN] == "1"
    assert created(daemonset(**{GEN: "0"}))["metadata"]["annotations"][GEN] == "1"
    assert created(daemonset(**{GEN: "x"}))["metadata"]["annotations"][GEN] == "1"
    assert created(daemonset(**{GEN: "7"}))["metadata"]["annotations"][GEN] == "7"


def test_template_change_bumps_it_and_clients_cannot_set_it() -> None:
    assert DS is not None
    old = created(daemonset())
    same = copy.deepcopy(old)
    same["metadata"]["annotations"][GEN] = "42"          # a client's value is ignored
    same["spec"]["minReadySeconds"] = 5                  # a spec change outside the template
    strategy.prepare_for_update(DS, same, old)
    assert same["metadata"]["annotations"][GEN] == "1"
    assert same["metadata"]["generation"] == 2
    new = daemonset("b")                                 # as sent: not defaulted
    strategy.prepare_for_update(DS, new, old)
    assert new["metadata"]["annotations"][GEN] == "2"
    again = daemonset("a")
    strategy.prepare_for_update(DS, again, old)         # equal once defaulted: no bump
    assert again["metadata"]["annotations"][GEN] == "1"


def test_status_writes_keep_the_stored_template_generation() -> None:
    assert DS is not None
    old = created(daemonset())
    new = copy.deepcopy(old)
    new["metadata"]["annotations"][GEN] = "9"
    new["status"] = {"numberReady": 1}
    assert strategy.prepare_status_update(DS, new, old)["metadata"]["annotations"][GEN] == "1"
