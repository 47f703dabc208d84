"""Builders for Service and EndpointSlice dicts, as the API spells them (tests only)."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def service(name: str, cluster_ip: str = "10.43.0.10", *, ns: str = "ns1",
            ports: list[Obj] | None = None, type_: str = "ClusterIP", **spec: Any) -> Obj:
    s: Obj = {"type": type_, "clusterIP": cluster_ip,
              "ports": ports if ports is not None else [{"name": "http", "port": 80,
                                                         "protocol": "TCP"}]}
    if cluster_ip not in ("", "None"):
        s["clusterIPs"] = [cluster_ip]
    s.update(spec)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"namespace": ns, "name": name, "resourceVersion": "1"}, "spec": s}


def endpoint(ip: str, *, node: str = "n2", ready: bool | None = True,
             serving: bool | None = None, terminating: bool | None = None) -> Obj:
    cond: Obj = {}
    if ready is not None:
        cond["ready"] = ready
    if serving is not None:
        cond["serving"] = serving
    if terminating is not None:
        cond["terminating"] = terminating
    return {"addresses": [ip], "conditions": cond, "nodeName": node}


def endpoint_slice(service_name: str, endpoints: list[Obj], *, ns: str = "ns1",
                   name: str | None = None, ports: list[Obj] | None = None,
                   address_type: str = "IPv4", rv: str = "1") -> Obj:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"namespace": ns, "name": name or f"{service_name}-abcde",
                         "resourceVersion": rv,
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": address_type, "endpoints": endpoints,
            "ports": ports if ports is not None else [{"name": "http", "port": 8080,
                                                       "protocol": "TCP"}]}
