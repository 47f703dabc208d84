"""ResourceQuota arithmetic and LimitRange rules (navio.api.resourcequota, limitrange)."""

from __future__ import annotations

from decimal import Decimal

from navio.api import limitrange, resourcequota


def pod(*containers: dict, init: tuple = (), phase: str = "Pending") -> dict:
    return {"spec": {"containers": list(containers), "initContainers": list(init)},
            "status": {"phase": phase}}


def c(name: str, requests: dict | None = None, limits: dict | None = None) -> dict:
    res = {}
    if requests:
        res["requests"] = requests
    if limits:
        res["limits"] = limits
    return {"name": name, "resources": res}


def test_pod_usage_is_max_of_sum_and_init_plus_overhead() -> None:
    p = pod(c("a", {"cpu": "100m", "memory": "64Mi"}), c("b", {"cpu": "200m"}),
            init=(c("i", {"cpu": "500m"}, {"memory": "1Gi"}),))
    p["spec"]["overhead"] = {"cpu": "10m"}
    u = resourcequota.usage("", "pods", p)
    assert u["pods"] == 1 and u["count/pods"] == 1
    assert u["requests.cpu"] == Decimal("0.51") and u["cpu"] == Decimal("0.51")
    assert u["requests.memory"] == 64 * 2**20
    assert u["limits.memory"] == 2**30


def test_terminal_pods_charge_nothing() -> None:
    assert resourcequota.usage("", "pods", pod(c("a"), phase="Succeeded")) == {}


def test_object_counts_and_services() -> None:
    assert resourcequota.usage("apps", "deployments", {}) == {"count/deployments.apps": 1}
    assert resourcequota.usage("", "configmaps", {}) == {"count/configmaps": 1,
                                                          "configmaps": 1}
    svc = resourcequota.usage("", "services", {"spec": {"type": "LoadBalancer",
                                                        "ports": [{}, {}]}})
    assert svc["services"] == 1 and svc["services.nodeports"] == 2 and \
        svc["services.loadbalancers"] == 1
    pvc = resourcequota.usage("", "persistentvolumeclaims", {"spec": {
        "storageClassName": "fast", "resources": {"requests": {"storage": "1Gi"}}}})
    assert pvc["requests.storage"] == 2**30
    assert pvc["fast.storageclass.storage.k8s.io/requests.storage"] == 2**30


def test_exceeded_message() -> None:
    hard = {"pods": "2", "requests.memory": "1Gi"}
    charge = resourcequota.usage("", "pods", pod(c("a", {"memory": "512Mi"})))
    assert resourcequota.exceeded("q", hard, {"pods": "1", "requests.memory": "256Mi"},
                                  charge) is None
    assert resourcequota.exceeded("q", hard, {"pods": "2", "requests.memory": "768Mi"},
                                  charge) == (
        "exceeded quota: q, requested: pods=1,requests.memory=512Mi, used: "
        "pods=2,requests.memory=768Mi, limited: pods=2,requests.memory=1Gi")


def test_namespace_usage_and_missing_requests() -> None:
    hard = {"pods": "5", "limits.cpu": "2"}
    objs = [("", "pods", pod(c("a", limits={"cpu": "1"}))),
            ("", "pods", pod(c("b", limits={"cpu": "500m"}))),
            ("", "configmaps", {})]
    assert resourcequota.namespace_usage(hard, objs) == {"pods": 2,
                                                          "limits.cpu": Decimal("1.5")}
    assert resourcequota.missing_requests(hard, pod(c("x"), c("y", limits={"cpu": "1"}))) == \
        "must specify limits.cpu for: x"
    assert resourcequota.missing_requests({"pods": "1"}, pod(c("x"))) is None


LR = {"spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"},
                           "defaultRequest": {"cpu": "100m"}, "max": {"cpu": "1",
                                                                      "memory": "1Gi"},
                           "min": {"cpu": "50m"}, "maxLimitRequestRatio": {"cpu": "5"}}]}}


def test_limitrange_defaults() -> None:
    p = pod(c("a"), c("b", limits={"memory": "128Mi"}))
    assert limitrange.apply_defaults(p, [LR])
    a, b = p["spec"]["containers"]
    assert a["resources"] == {"requests": {"cpu": "100m", "memory": "1Gi"},
                              "limits": {"cpu": "500m", "memory": "1Gi"}}
    assert b["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}
    assert p["metadata"]["annotations"][limitrange.LIMIT_RANGER_ANNOTATION].startswith(
        "LimitRanger plugin set: cpu, memory request for container a")
    assert limitrange.violations(p, [LR]) == []


def test_limitrange_bounds() -> None:
    def errs(requests: dict, limits: dict) -> list[str]:
        return limitrange.violations(pod(c("a", requests, limits)), [LR])
    assert errs({"cpu": "2", "memory": "1Gi"}, {"cpu": "2", "memory": "1Gi"}) == [
        "maximum cpu usage per Container is 1, but limit is 2"]
    assert errs({"cpu": "10m", "memory": "1Gi"}, {"cpu": "10m", "memory": "1Gi"}) == [
        "minimum cpu usage per Container is 50m, but request is 10m"]
    assert errs({"cpu": "100m", "memory": "1Gi"}, {"cpu": "1", "memory": "1Gi"}) == [
        "cpu max limit to request ratio per Container is 5, but provided ratio is 10.000000"]
    assert errs({"cpu": "100m"}, {"cpu": "100m"}) == [
        "maximum memory usage per Container is 1Gi.  No limit is specified"]


def test_scopes_select_pods() -> None:
    best, burst = pod(c("a")), pod(c("b", {"cpu": "1"}))
    burst["spec"]["activeDeadlineSeconds"] = 30
    burst["spec"]["priorityClassName"] = "high"
    assert resourcequota.matches_scopes({}, "", "configmaps", {})
    assert not resourcequota.matches_scopes({"scopes": ["BestEffort"]}, "", "configmaps", {})
    assert resourcequota.matches_scopes({"scopes": ["BestEffort"]}, "", "pods", best)
    assert not resourcequota.matches_scopes({"scopes": ["BestEffort"]}, "", "pods", burst)
    assert resourcequota.matches_scopes({"scopes": ["NotBestEffort", "Terminating"]}, "",
                                        "pods", burst)
    assert not resourcequota.matches_scopes({"scopes": ["NotTerminating"]}, "", "pods", burst)
    sel = {"scopeSelector": {"matchExpressions": [
        {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}}
    assert resourcequota.matches_scopes(sel, "", "pods", burst)
    assert not resourcequota.matches_scopes(sel, "", "pods", best)
    assert resourcequota.namespace_usage({"pods": "9"}, [("", "pods", best), ("", "pods", burst)],
                                         sel) == {"pods": 1}
