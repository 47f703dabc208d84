"""Defaults of core/v1 kinds (pkg/apis/core/v1/defaults.go and the generated defaulters, v1.32).

Also applies two things kube-apiserver does while decoding rather than in defaults.go, because
every stored object depends on them: a Secret's `stringData` is merged into `data` (base64)
and dropped (Convert_v1_Secret_To_core_Secret), and a Service's `clusterIPs` mirrors a
`clusterIP` given alone (the service strategy's normalizeClusterIPs). A Service's IP family
fields are filled as the allocator fills them on a single-stack IPv4 cluster; addresses
themselves are never allocated here.
"""

from __future__ import annotations

import base64
from typing import Any

from navio.api.defaults.podspec import (default_pod, default_pod_template, default_pvc_spec,
                                        default_resource_list)

__all__ = ["default_service", "default_secret", "default_namespace", "default_node",
           "default_pvc", "default_pv", "default_endpoints", "default_limit_range",
           "default_resource_quota", "default_replication_controller", "default_pod_template_kind",
           "KIND_DEFAULTS"]

DEFAULT_CLIENT_IP_AFFINITY_SECONDS = 10800


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    return spec


def _externally_accessible(spec: dict[str, Any]) -> bool:
    t = spec.get("type")
    return t in ("LoadBalancer", "NodePort") or (t == "ClusterIP" and bool(spec.get("externalIPs")))


def default_service(svc: dict[str, Any]) -> None:
    spec = _spec(svc)
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        cfg = spec.get("sessionAffinityConfig") or {}
        if ((cfg.get("clientIP") or {}).get("timeoutSeconds")) is None:
            spec["sessionAffinityConfig"] = {
                "clientIP": {"timeoutSeconds": DEFAULT_CLIENT_IP_AFFINITY_SECONDS}}
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    for sp in spec.get("ports") or []:
        if not isinstance(sp, dict):
            continue
        if not sp.get("protocol"):
            sp["protocol"] = "TCP"
        if sp.get("targetPort") in (None, 0, ""):
            sp["targetPort"] = sp.get("port", 0)
    if _externally_accessible(spec) and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and spec["type"] in (
            "NodePort", "LoadBalancer", "ClusterIP"):
        spec["internalTrafficPolicy"] = "Cluster"
    if spec["type"] == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    if spec["type"] == "LoadBalancer":
        for ing in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            if ing.get("ip") and ing.get("ipMode") is None:
                ing["ipMode"] = "VIP"
    _ip_families(spec)


def _ip_families(spec: dict[str, Any]) -> None:
    if spec["type"] == "ExternalName":
        return
    if spec.get("clusterIP") and not spec.get("clusterIPs"):
        spec["clusterIPs"] = [spec["clusterIP"]]
    if spec.get("clusterIP") == "None" and not spec.get("selector"):
        # alloc.go initIPFamilyFields: headless without selector is "most permissive".
        policy = spec.setdefault("ipFamilyPolicy", "RequireDualStack") or "RequireDualStack"
        families = spec.get("ipFamilies") or ["IPv4"]
        if len(families) < 2 and policy != "SingleStack":
            families = families + ["IPv6" if families[0] == "IPv4" else "IPv4"]
        spec["ipFamilies"] = families
        return
    if spec.get("ipFamilyPolicy") is None:
        spec["ipFamilyPolicy"] = "SingleStack"
    if not spec.get("ipFamilies"):
        ips = [ip for ip in spec.get("clusterIPs") or [] if ip != "None"]
        spec["ipFamilies"] = ["IPv6" if ":" in ip else "IPv4" for ip in ips] or ["IPv4"]


def default_secret(secret: dict[str, Any]) -> None:
    if not secret.get("type"):
        secret["type"] = "Opaque"
    string_data = secret.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = secret.get("data") if isinstance(secret.get("data"), dict) else {}
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()
        secret["data"] = data


def default_namespace(ns: dict[str, Any]) -> None:
    meta = ns.get("metadata")
    if isinstance(meta, dict) and meta.get("name"):
        labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
        labels["kubernetes.io/metadata.name"] = meta["name"]
        meta["labels"] = labels
    status = ns.get("status") if isinstance(ns.get("status"), dict) else {}
    if not status.get("phase"):
        status["phase"] = "Active"
    ns["status"] = status


def default_node(node: dict[str, Any]) -> None:
    status = node.get("status")
    if not isinstance(status, dict):
        return
    default_resource_list(status.get("capacity"))
    default_resource_list(status.get("allocatable"))
    if status.get("allocatable") is None and status.get("capacity") is not None:
        status["allocatable"] = dict(status["capacity"])


def default_pvc(pvc: dict[str, Any]) -> None:
    status = pvc.get("status") if isinstance(pvc.get("status"), dict) else {}
    if not status.get("phase"):
        status["phase"] = "Pending"
    pvc["status"] = status
    default_pvc_spec(pvc.get("spec"))
    default_resource_list(status.get("capacity"))


def default_pv(pv: dict[str, Any]) -> None:
    status = pv.get("status") if isinstance(pv.get("status"), dict) else {}
    if not status.get("phase"):
        status["phase"] = "Pending"
    pv["status"] = status
    spec = _spec(pv)
    if not spec.get("persistentVolumeReclaimPolicy"):
        spec["persistentVolumeReclaimPolicy"] = "Retain"
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"
    default_resource_list(spec.get("capacity"))


def default_endpoints(ep: dict[str, Any]) -> None:
    for ss in ep.get("subsets") or []:
        for port in (ss.get("ports") or []) if isinstance(ss, dict) else []:
            if isinstance(port, dict) and not port.get("protocol"):
                port["protocol"] = "TCP"


def default_limit_range(lr: dict[str, Any]) -> None:
    for item in (lr.get("spec") or {}).get("limits") or []:
        if not isinstance(item, dict):
            continue
        for f in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            default_resource_list(item.get(f))
        if item.get("type") != "Container":
            continue
        # SetDefaults_LimitRangeItem: default <- max, defaultRequest <- default, then <- min.
        default = item.get("default") or {}
        for k, v in (item.get("max") or {}).items():
            default.setdefault(k, v)
        request = item.get("defaultRequest") or {}
        for k, v in default.items():
            request.setdefault(k, v)
        for k, v in (item.get("min") or {}).items():
            request.setdefault(k, v)
        if default:
            item["default"] = default
        if request:
            item["defaultRequest"] = request


def default_resource_quota(rq: dict[str, Any]) -> None:
    default_resource_list((rq.get("spec") or {}).get("hard"))
    status = rq.get("status") or {}
    default_resource_list(status.get("hard"))
    default_resource_list(status.get("used"))


def default_replication_controller(rc: dict[str, Any]) -> None:
    spec = _spec(rc)
    tmpl = spec.get("template")
    labels = ((tmpl or {}).get("metadata") or {}).get("labels") if isinstance(tmpl, dict) else None
    if labels is not None:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        meta = rc.setdefault("metadata", {})
        if not meta.get("labels"):
            meta["labels"] = dict(labels)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    default_pod_template(tmpl)


def default_pod_template_kind(pt: dict[str, Any]) -> None:
    default_pod_template(pt.get("template"))


KIND_DEFAULTS = {
    "Pod": default_pod,
    "PodTemplate": default_pod_template_kind,
    "ReplicationController": default_replication_controller,
    "Service": default_service,
    "Secret": default_secret,
    "Namespace": default_namespace,
    "Node": default_node,
    "PersistentVolumeClaim": default_pvc,
    "PersistentVolume": default_pv,
    "Endpoints": default_endpoints,
    "LimitRange": default_limit_range,
    "ResourceQuota": default_resource_quota,
}
