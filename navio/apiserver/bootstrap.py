"""Objects every cluster starts with: the system namespaces, the `kubernetes` Service and the
cluster DNS Service `kube-system/kube-dns`.

`kube-dns` has the fixed cluster IP pods' resolv.conf names (10.43.0.10 by default) and no
selector: navio's cluster DNS is node-local (each agent answers on that address, see
`navio/cli/nodeservices.py`), so the Service carries `service.kubernetes.io/service-proxy-name`
and proxies leave its address to the node's DNS server, as kube-proxy leaves such services to
the proxy they name.
"""

from __future__ import annotations

import ipaddress
import logging

from navio.api import errors
from navio.apiserver.bootstrappolicy import reconcile_policy
from navio.apiserver.resources import Resources, WriteOptions

__all__ = ["ensure_bootstrap_objects", "ensure_local_path_class", "kube_dns_service",
           "DNS_PROXY_NAME", "LOCAL_PATH_CLASS", "LOCAL_PATH_PROVISIONER"]

log = logging.getLogger(__name__)

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_OPTS = WriteOptions(field_manager="kube-apiserver")


async def _ensure(resources: Resources, plural: str, namespace: str, obj: dict,
                  group: str = "") -> None:
    kind = resources.registry.resource(group, "v1", plural)
    assert kind is not None
    try:
        await resources.get(kind, namespace, obj["metadata"]["name"])
    except errors.NotFound:
        try:
            await resources.create(kind, namespace, obj, _OPTS)
            log.info("bootstrap object created",
                     extra={"resource": plural, "object": obj["metadata"]["name"]})
        except errors.AlreadyExists:
            pass


# kube-apiserver creates these two PriorityClasses at start (scheduling/util).
SYSTEM_PRIORITY_CLASSES = {
    "system-node-critical": (2000001000, "Used for system critical pods that must not be "
                                         "moved from their current node."),
    "system-cluster-critical": (2000000000, "Used for system critical pods that must run in "
                                            "the cluster, but can be moved to another node if "
                                            "necessary."),
}


DNS_PROXY_NAME = "navio-node-dns"


def kube_dns_service(dns_ip: str) -> dict:
    """The cluster DNS Service (CoreDNS's names and ports: dns/UDP, dns-tcp/TCP on 53)."""
    return {
        "metadata": {"name": "kube-dns", "labels": {
            "k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true",
            "kubernetes.io/name": "CoreDNS",
            "service.kubernetes.io/service-proxy-name": DNS_PROXY_NAME}},
        "spec": {"clusterIP": dns_ip, "clusterIPs": [dns_ip], "type": "ClusterIP",
                 "sessionAffinity": "None",
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                           {"name": "dns-tcp", "port": 53, "protocol": "TCP",
                            "targetPort": 53}]}}


# The default StorageClass, as k3s ships it: directories on the node of the claim's first
# consumer, provisioned by the controller manager and made/removed by that node's agent.
LOCAL_PATH_CLASS = "local-path"
LOCAL_PATH_PROVISIONER = "rancher.io/local-path"


async def ensure_local_path_class(resources: Resources) -> None:
    """Create the `local-path` default StorageClass unless it exists (a user may have
    changed its default annotation since; that is kept)."""
    await _ensure(resources, "storageclasses", "", {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": LOCAL_PATH_CLASS, "annotations": {
            "storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": LOCAL_PATH_PROVISIONER, "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer"}, group="storage.k8s.io")


async def ensure_bootstrap_objects(resources: Resources, host: str, port: int, *,
                                   dns_ip: str | None = None, endpoints: bool = True) -> None:
    """`endpoints=False`: the kubernetes Endpoints are kept by the lease reconciler
    (`masterleases`), as when several API servers share the store."""
    for ns in SYSTEM_NAMESPACES:
        await _ensure(resources, "namespaces", "", {"metadata": {"name": ns}})
    await reconcile_policy(resources)  # default RBAC roles and bindings (bootstrappolicy)
    for name, (value, description) in SYSTEM_PRIORITY_CLASSES.items():
        await _ensure(resources, "priorityclasses", "", {
            "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": name}, "value": value, "description": description,
            "preemptionPolicy": "PreemptLowerPriority"}, group="scheduling.k8s.io")
    await ensure_local_path_class(resources)
    first_ip = str(resources.service_ips.network.network_address + 1)
    await _ensure(resources, "services", "default", {
        "metadata": {"name": "kubernetes", "labels": {"component": "apiserver",
                                                      "provider": "kubernetes"}},
        "spec": {"clusterIP": first_ip, "type": "ClusterIP", "sessionAffinity": "None",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                            "targetPort": port}]}})
    if dns_ip is not None:
        try:
            await _ensure(resources, "services", "kube-system", kube_dns_service(dns_ip))
        except errors.ApiError as exc:
            # e.g. an older cluster whose Service already holds that address: the API server
            # still starts; pods' resolv.conf names an address no DNS Service owns.
            log.warning("kube-dns Service not created", extra={"ip": dns_ip,
                                                               "error": str(exc)[:300]})
    if not endpoints or ipaddress.ip_address(host).is_loopback:
        # Endpoints may not point at loopback (kube validation); pods reach the API server
        # once it advertises a routable address.
        return
    await _ensure(resources, "endpoints", "default", {
        "metadata": {"name": "kubernetes", "labels": {
            "endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": host}],
                     "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]})
