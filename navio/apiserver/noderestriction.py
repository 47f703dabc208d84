"""The NodeRestriction admission plugin (kube's plugin/pkg/admission/noderestriction).

The Node authorizer lets every kubelet write Nodes and pods in general; this plugin narrows
that to its own: a node `system:node:NAME` may create, update or delete only the Node NAME
(and may not set `node-restriction.kubernetes.io/` labels on it), may update the status of,
evict or delete only pods bound to it, and may create only mirror pods bound to it.
Every other user passes untouched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from navio.api import errors
from navio.apiserver.authz.node import node_identity

if TYPE_CHECKING:
    from navio.apiserver.admission import Request
    from navio.apiserver.resources import Resources

__all__ = ["NAME", "node_restriction"]

NAME = "NodeRestriction"
_MIRROR = "kubernetes.io/config.mirror"
_RESTRICTED_LABEL = "node-restriction.kubernetes.io/"


def _forbidden(resource: str, name: str, message: str) -> errors.Forbidden:
    prefix = f'{resource} "{name}"' if name else resource
    return errors.Forbidden(f"{prefix} is forbidden: {message}",
                            details={"name": name, "kind": resource} if name else
                            {"kind": resource})


async def node_restriction(resources: "Resources", req: "Request") -> None:
    user = req.opts.user
    if user is None:
        return
    node = node_identity(user)
    if node is None or req.kind.group != "":
        return
    if not node:
        raise errors.Forbidden(f'unknown node for user "{user.name}"')
    kind = req.kind.kind
    if kind == "Node":
        _node(node, req)
    elif kind == "Pod":
        _pod(node, req)


def _node(node: str, req: "Request") -> None:
    name = (req.obj.get("metadata") or {}).get("name", "")
    if name != node:
        raise _forbidden("nodes", name, f'node "{node}" is not allowed to modify node '
                                        f'"{name}"')
    if req.operation == "DELETE":
        return
    labels = (req.obj.get("metadata") or {}).get("labels") or {}
    old_labels = ((req.old or {}).get("metadata") or {}).get("labels") or {}
    bad = sorted(k for k, v in labels.items() if _restricted(k) and old_labels.get(k) != v)
    bad += sorted(k for k in old_labels if _restricted(k) and k not in labels)
    if bad:
        raise _forbidden("nodes", name, f'is not allowed to modify labels: '
                                        f'{", ".join(bad)}')


def _restricted(key: str) -> bool:
    prefix = key.split("/", 1)[0] + "/" if "/" in key else ""
    return prefix == _RESTRICTED_LABEL or prefix.endswith("." + _RESTRICTED_LABEL)


def _pod(node: str, req: "Request") -> None:
    meta = req.obj.get("metadata") or {}
    name = meta.get("name", "")
    bound = (req.obj.get("spec") or {}).get("nodeName", "")
    if req.old is not None:
        bound = (req.old.get("spec") or {}).get("nodeName", "")
    if req.operation == "CREATE":
        if _MIRROR not in (meta.get("annotations") or {}):
            raise _forbidden("pods", name, f'pod does not have "{_MIRROR}" annotation, node '
                                           f'"{node}" can only create mirror pods')
        if bound != node:
            raise _forbidden("pods", name, f'node "{node}" can only create pods with '
                                           f'spec.nodeName set to itself')
        return
    if req.operation == "DELETE":
        if bound != node:
            raise _forbidden("pods", name, f'node "{node}" can only delete pods with '
                                           f'spec.nodeName set to itself')
        return
    if req.subresource == "status":
        if bound != node:
            raise _forbidden("pods", name, f'node "{node}" can only update pod status for '
                                           f'pods with spec.nodeName set to itself')
        return
    raise _forbidden("pods", name, f'node "{node}" can only update pod status')
