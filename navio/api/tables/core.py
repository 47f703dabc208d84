"""Tables for the core/v1 kinds other than pods, events and volumes.

Ports of printNode, printNamespace, printService, printEndpoints, printConfigMap, printSecret,
printServiceAccount, printReplicationController, printPodTemplate and printResourceQuota in
kubernetes/pkg/printers/internalversion/printers.go (v1.32). Cells follow the internal types'
view of a v1 object: where kube-apiserver would have defaulted a field before storing it (a
Service's type, an RC's replicas), the printer assumes that default.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from navio.api import quantity
from navio.api.selectors import format_labels
from navio.api.tables.cells import (
    Printer, age, age_column, column, containers_and_images, get, name_column)
from navio.api.tables.descriptions import DOC

__all__ = ["PRINTERS", "quantity_string"]

_NODE_ROLE_PREFIX = "node-role.kubernetes.io/"
_NODE_ROLE_LABEL = "kubernetes.io/role"
_CONTAINERS = "Names of each container in the template."
_IMAGES = "Images referenced by each container in the template."


def _name(obj: Mapping[str, Any]) -> str:
    return str(get(obj, "metadata", "name", default=""))


def quantity_string(value: Any) -> str:
    """Quantity.String() of a stored quantity; a missing one is the zero Quantity, `0`."""
    if value is None or value == "":
        return "0"
    try:
        return quantity.canonicalize(str(value))
    except quantity.QuantityError:
        return str(value)


# --- nodes -------------------------------------------------------------------------------------

NODE_COLUMNS = (
    name_column(),
    column("Status", "string", "The status of the node"),
    column("Roles", "string", "The roles of the node"),
    age_column(),
    column("Version", "string", DOC["NodeSystemInfo.kubeletVersion"]),
    column("Internal-IP", "string", DOC["NodeStatus.addresses"], priority=1),
    column("External-IP", "string", DOC["NodeStatus.addresses"], priority=1),
    column("OS-Image", "string", DOC["NodeSystemInfo.osImage"], priority=1),
    column("Kernel-Version", "string", DOC["NodeSystemInfo.kernelVersion"], priority=1),
    column("Container-Runtime", "string", DOC["NodeSystemInfo.containerRuntimeVersion"],
           priority=1),
)


def _node_roles(labels: Mapping[str, str]) -> str:
    roles = set()
    for k, v in labels.items():
        if k.startswith(_NODE_ROLE_PREFIX) and k[len(_NODE_ROLE_PREFIX):]:
            roles.add(k[len(_NODE_ROLE_PREFIX):])
        elif k == _NODE_ROLE_LABEL and v:
            roles.add(v)
    return ",".join(sorted(roles)) or "<none>"


def _node_address(node: Mapping[str, Any], type_: str) -> str:
    for a in get(node, "status", "addresses", default=()):
        if a.get("type") == type_:
            return str(a.get("address", ""))
    return "<none>"


def node_cells(node: Mapping[str, Any], now: datetime) -> list[Any]:
    # Only Ready is summarised; the last condition of that type wins (a Go map overwrite).
    ready = None
    for c in get(node, "status", "conditions", default=()):
        if c.get("type") == "Ready":
            ready = c
    status = [] if ready is None else ["Ready" if ready.get("status") == "True" else "NotReady"]
    status = status or ["Unknown"]
    if get(node, "spec", "unschedulable"):
        status.append("SchedulingDisabled")
    info = get(node, "status", "nodeInfo", default={})
    return [_name(node), ",".join(status), _node_roles(get(node, "metadata", "labels", default={})),
            age(node, now), info.get("kubeletVersion", ""),
            _node_address(node, "InternalIP"), _node_address(node, "ExternalIP"),
            info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


# --- services and endpoints --------------------------------------------------------------------

SERVICE_COLUMNS = (
    name_column(),
    column("Type", "string", DOC["ServiceSpec.type"]),
    column("Cluster-IP", "string", DOC["ServiceSpec.clusterIP"]),
    column("External-IP", "string", DOC["ServiceSpec.externalIPs"]),
    column("Port(s)", "string", DOC["ServiceSpec.ports"]),
    age_column(),
    column("Selector", "string", DOC["ServiceSpec.selector"], priority=1),
)


def _external_ip(svc: Mapping[str, Any], svc_type: str) -> str:
    external = get(svc, "spec", "externalIPs", default=[])
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if svc_type == "LoadBalancer":
        # loadBalancerStatusStringer, unclipped: the server always prints "wide".
        ingress = get(svc, "status", "loadBalancer", "ingress", default=[])
        lb = sorted({i.get("ip") or i.get("hostname") for i in ingress
                     if i.get("ip") or i.get("hostname")})
        if external:
            return ",".join([*lb, *external])
        return ",".join(lb) or "<pending>"
    if svc_type == "ExternalName":
        return str(get(svc, "spec", "externalName", default=""))
    return "<unknown>"


def _ports(ports: list[Mapping[str, Any]]) -> str:
    pieces = []
    for p in ports:
        protocol = p.get("protocol") or "TCP"
        node_port = p.get("nodePort") or 0
        pieces.append(f"{p.get('port', 0)}:{node_port}/{protocol}" if node_port > 0
                      else f"{p.get('port', 0)}/{protocol}")
    return ",".join(pieces)


def service_cells(svc: Mapping[str, Any], now: datetime) -> list[Any]:
    spec = get(svc, "spec", default={})
    svc_type = spec.get("type") or "ClusterIP"
    cluster_ips = spec.get("clusterIPs") or []
    cluster_ip = spec.get("clusterIP") or (cluster_ips[0] if cluster_ips else "")
    return [_name(svc), svc_type, cluster_ip or "<none>", _external_ip(svc, svc_type),
            _ports(spec.get("ports") or []) or "<none>", age(svc, now),
            format_labels(spec.get("selector"))]


ENDPOINTS_COLUMNS = (name_column(), column("Endpoints", "string", DOC["Endpoints.subsets"]),
                     age_column())


def _host_port(ip: str, port: Any) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"  # net.JoinHostPort


def format_endpoints(subsets: list[Mapping[str, Any]]) -> str:
    """formatEndpoints: up to three `ip:port`s, then `+ N more...`; `<none>` if no subsets."""
    if not subsets:
        return "<none>"
    shown: list[str] = []
    limit, more, count = 3, False, 0
    for ss in subsets:
        addresses = ss.get("addresses") or []
        ports = ss.get("ports") or []
        if not ports:  # headless services may have no ports
            count += len(addresses)
            for a in addresses:
                if len(shown) == limit:
                    more = True
                    break
                shown.append(a.get("ip", ""))
            continue
        for port in ports:
            count += len(addresses)
            for a in addresses:
                if len(shown) == limit:
                    more = True
                    break
                shown.append(_host_port(a.get("ip", ""), port.get("port", 0)))
    text = ",".join(shown)
    return f"{text} + {count - limit} more..." if more else text


def endpoints_cells(ep: Mapping[str, Any], now: datetime) -> list[Any]:
    return [_name(ep), format_endpoints(ep.get("subsets") or []), age(ep, now)]


# --- config, secrets, service accounts, namespaces ---------------------------------------------

CONFIGMAP_COLUMNS = (name_column(), column("Data", "string", DOC["ConfigMap.data"]),
                     age_column())
SECRET_COLUMNS = (name_column(), column("Type", "string", DOC["Secret.type"]),
                  column("Data", "string", DOC["Secret.data"]), age_column())
SERVICE_ACCOUNT_COLUMNS = (name_column(),
                           column("Secrets", "string", DOC["ServiceAccount.secrets"]),
                           age_column())
NAMESPACE_COLUMNS = (name_column(), column("Status", "string", "The status of the namespace"),
                     age_column())


def configmap_cells(cm: Mapping[str, Any], now: datetime) -> list[Any]:
    return [_name(cm), len(cm.get("data") or {}) + len(cm.get("binaryData") or {}), age(cm, now)]


def secret_cells(secret: Mapping[str, Any], now: datetime) -> list[Any]:
    # stringData is merged into data on write; count the union in case it is not yet.
    keys = set(secret.get("data") or {}) | set(secret.get("stringData") or {})
    return [_name(secret), secret.get("type") or "Opaque", len(keys), age(secret, now)]


def service_account_cells(sa: Mapping[str, Any], now: datetime) -> list[Any]:
    return [_name(sa), len(sa.get("secrets") or []), age(sa, now)]


def namespace_cells(ns: Mapping[str, Any], now: datetime) -> list[Any]:
    return [_name(ns), get(ns, "status", "phase", default=""), age(ns, now)]


# --- replication controllers, pod templates, resource quotas -----------------------------------

RC_COLUMNS = (
    name_column(),
    column("Desired", "integer", DOC["ReplicationControllerSpec.replicas"]),
    column("Current", "integer", DOC["ReplicationControllerStatus.replicas"]),
    column("Ready", "integer", DOC["ReplicationControllerStatus.readyReplicas"]),
    age_column(),
    column("Containers", "string", _CONTAINERS, priority=1),
    column("Images", "string", _IMAGES, priority=1),
    column("Selector", "string", DOC["ReplicationControllerSpec.selector"], priority=1),
)


def rc_cells(rc: Mapping[str, Any], now: datetime) -> list[Any]:
    spec, status = get(rc, "spec", default={}), get(rc, "status", default={})
    desired = spec.get("replicas")
    names, images = containers_and_images(get(spec, "template", "spec", "containers"))
    return [_name(rc), 1 if desired is None else desired, status.get("replicas") or 0,
            status.get("readyReplicas") or 0, age(rc, now), names, images,
            format_labels(spec.get("selector"))]


POD_TEMPLATE_COLUMNS = (
    name_column(),
    column("Containers", "string", _CONTAINERS),
    column("Images", "string", _IMAGES),
    column("Pod Labels", "string", "The labels for the pod template."),
)


def pod_template_cells(pt: Mapping[str, Any], now: datetime) -> list[Any]:
    names, images = containers_and_images(get(pt, "template", "spec", "containers"))
    return [_name(pt), names, images, format_labels(get(pt, "template", "metadata", "labels"))]


RESOURCE_QUOTA_COLUMNS = (
    name_column(),
    column("Request", "string", "Request represents a minimum amount of cpu/memory that a "
           "container may consume."),
    column("Limit", "string", "Limits control the maximum amount of cpu/memory that a container "
           "may use independent of contention on the node."),
    age_column(),
)


def resource_quota_cells(rq: Mapping[str, Any], now: datetime) -> list[Any]:
    hard = get(rq, "status", "hard", default={})
    used = get(rq, "status", "used", default={})
    requests: list[str] = []
    limits: list[str] = []
    for resource in sorted(hard):
        pieces = resource.split(".")
        column_ = limits if len(pieces) > 1 and pieces[0] == "limits" else requests
        column_.append(f"{resource}: {quantity_string(used.get(resource))}/"
                       f"{quantity_string(hard[resource])}")
    return [_name(rq), ", ".join(requests), ", ".join(limits), age(rq, now)]


PRINTERS = {
    ("", "Node"): Printer(NODE_COLUMNS, node_cells),
    ("", "Service"): Printer(SERVICE_COLUMNS, service_cells),
    ("", "Endpoints"): Printer(ENDPOINTS_COLUMNS, endpoints_cells),
    ("", "ConfigMap"): Printer(CONFIGMAP_COLUMNS, configmap_cells),
    ("", "Secret"): Printer(SECRET_COLUMNS, secret_cells),
    ("", "ServiceAccount"): Printer(SERVICE_ACCOUNT_COLUMNS, service_account_cells),
    ("", "Namespace"): Printer(NAMESPACE_COLUMNS, namespace_cells),
    ("", "ReplicationController"): Printer(RC_COLUMNS, rc_cells),
    ("", "PodTemplate"): Printer(POD_TEMPLATE_COLUMNS, pod_template_cells),
    ("", "ResourceQuota"): Printer(RESOURCE_QUOTA_COLUMNS, resource_quota_cells),
}
