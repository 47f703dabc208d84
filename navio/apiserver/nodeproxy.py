"""Pod logs, exec, attach, port-forward and proxy: requests the node's kubelet serves.

The API server finds the pod's node and forwards the request to that node's kubelet API
(`status.daemonEndpoints.kubeletEndpoint.Port` on the node's InternalIP), as kube-apiserver
does. Until a pod is bound there is nothing to reach: 400, with kube-apiserver's wording.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from navio.api import errors
from navio.api.registry import Kind
from navio.apiserver.requestinfo import RequestInfo

if TYPE_CHECKING:
    from navio.apiserver.handlers import ResourceHandlers

__all__ = ["proxy", "kubelet_endpoint"]


async def kubelet_endpoint(h: "ResourceHandlers", node_name: str) -> tuple[str, int]:
    """The (host, port) of a node's kubelet API; 503 if the node does not publish one."""
    node_kind = h.resources.registry.resource("", "v1", "nodes")
    assert node_kind is not None
    node = await h.resources.get(node_kind, "", node_name)
    status = node.get("status", {})
    port = (status.get("daemonEndpoints", {}).get("kubeletEndpoint") or {}).get("Port")
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses", ())}
    host = addresses.get("InternalIP") or addresses.get("Hostname")
    if not port or not host:
        raise errors.ServiceUnavailable(f'node "{node_name}" publishes no kubelet endpoint')
    return host, int(port)


async def proxy(h: "ResourceHandlers", request: web.Request, info: RequestInfo,
                kind: Kind) -> web.StreamResponse:
    if kind.kind != "Pod":
        raise errors.ServiceUnavailable(f"{kind.plural}/{info.subresource} is not served yet")
    pod = await h.resources.get(kind, info.namespace, info.name)
    node = pod.get("spec", {}).get("nodeName")
    if not node:
        raise errors.BadRequest(f"pod {info.name} does not have a host assigned")
    await kubelet_endpoint(h, node)
    raise errors.ServiceUnavailable(
        f"the kubelet of node \"{node}\" cannot be reached for pods/{info.subresource}")
