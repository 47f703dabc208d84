"""The kubelet's side of RuntimeClass: the handler a pod's class names, checked before its
sandbox is made.

As kube's kubelet (runtimeclass.Manager.LookupRuntimeHandler, then CRI RunPodSandbox): a pod
naming a class that does not exist, or one whose handler this node's runtime does not serve
(`navio.runtime.handlers`), gets no sandbox; the kubelet records `FailedCreatePodSandBox`
(`Failed to create pod sandbox: runtimeclass.node.k8s.io "x" not found`, or containerd's
`no runtime for "h" is configured`) and retries, the pod staying Pending in
ContainerCreating. `runtime_handlers` is what the Node reports in `status.runtimeHandlers`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from navio.api import errors
from navio.client import Client, TransportError
from navio.client.resources import ResourceRef
from navio.runtime.handlers import handlers_of, supports
from navio.runtime.protocol import RuntimeFailure

__all__ = ["RUNTIME_CLASSES", "RuntimeClassCheck", "runtime_handlers"]

RUNTIME_CLASSES = ResourceRef("node.k8s.io", "v1", "runtimeclasses", False, "RuntimeClass")


def runtime_handlers(runtime_name: str) -> list[dict[str, Any]]:
    """NodeStatus.runtimeHandlers: navio's runtimes support neither recursive read-only
    mounts nor user namespaces."""
    return [{"name": h, "features": {"recursiveReadOnlyMounts": False, "userNamespaces": False}}
            for h in handlers_of(runtime_name)]


class RuntimeClassCheck:
    """Resolves a pod's runtime class to its handler and refuses what this node cannot run."""

    def __init__(self, client: Client, runtime_name: str) -> None:
        self.client = client
        self.runtime_name = runtime_name

    async def __call__(self, pod: Mapping[str, Any]) -> str:
        """The pod's handler ("" without a class); RuntimeFailure when there is none here."""
        name = (pod.get("spec") or {}).get("runtimeClassName")
        if not name:
            return ""
        try:
            rc = await self.client.get(RUNTIME_CLASSES, name)
        except errors.NotFound:
            raise RuntimeFailure(f'runtimeclass.node.k8s.io "{name}" not found') from None
        except (errors.ApiError, TransportError) as exc:
            raise RuntimeFailure(f"failed to lookup RuntimeClass {name}: {exc}") from None
        handler = str(rc.get("handler") or "")
        if not supports(self.runtime_name, handler):
            raise RuntimeFailure(f"rpc error: code = Unknown desc = failed to get sandbox "
                                 f'runtime: no runtime for "{handler}" is configured')
        return handler
