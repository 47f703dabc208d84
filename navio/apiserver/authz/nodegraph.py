"""What a node's pods reference: the objects the Node authorizer lets a kubelet read.

kube keeps a graph (plugin/pkg/auth/authorizer/node/graph.go) fed by informers; navio asks
the pods watch cache directly: the pods of one namespace bound to the node, and what they
name. Secrets and ConfigMaps come from volumes (plain and projected), env, envFrom and image
pull secrets; claims from volumes (ephemeral volumes name `<pod>-<volume>`); the service
account from `serviceAccountName`; a PersistentVolume through a bound claim.
"""

from __future__ import annotations

from typing import Any, Iterator

__all__ = ["references", "pod_references"]


def _containers(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(field) or ()


def pod_references(pod: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(resource, name) pairs the pod uses, in its own namespace."""
    spec = pod.get("spec") or {}
    name = (pod.get("metadata") or {}).get("name", "")
    if spec.get("serviceAccountName"):
        yield "serviceaccounts", spec["serviceAccountName"]
    for ref in spec.get("imagePullSecrets") or ():
        if ref.get("name"):
            yield "secrets", ref["name"]
    for c in _containers(spec):
        for env in c.get("env") or ():
            src = env.get("valueFrom") or {}
            if (src.get("secretKeyRef") or {}).get("name"):
                yield "secrets", src["secretKeyRef"]["name"]
            if (src.get("configMapKeyRef") or {}).get("name"):
                yield "configmaps", src["configMapKeyRef"]["name"]
        for env in c.get("envFrom") or ():
            if (env.get("secretRef") or {}).get("name"):
                yield "secrets", env["secretRef"]["name"]
            if (env.get("configMapRef") or {}).get("name"):
                yield "configmaps", env["configMapRef"]["name"]
    for vol in spec.get("volumes") or ():
        if (vol.get("secret") or {}).get("secretName"):
            yield "secrets", vol["secret"]["secretName"]
        if (vol.get("configMap") or {}).get("name"):
            yield "configmaps", vol["configMap"]["name"]
        if (vol.get("persistentVolumeClaim") or {}).get("claimName"):
            yield "persistentvolumeclaims", vol["persistentVolumeClaim"]["claimName"]
        if vol.get("ephemeral") is not None:
            yield "persistentvolumeclaims", f"{name}-{vol.get('name', '')}"
        for src in (vol.get("projected") or {}).get("sources") or ():
            if (src.get("secret") or {}).get("name"):
                yield "secrets", src["secret"]["name"]
            if (src.get("configMap") or {}).get("name"):
                yield "configmaps", src["configMap"]["name"]
        for key in ("csi", "cephfs", "rbd", "flexVolume", "iscsi", "scaleIO", "storageos",
                    "azureFile"):
            v = vol.get(key) or {}
            for ref_key in ("nodePublishSecretRef", "secretRef"):
                if (v.get(ref_key) or {}).get("name"):
                    yield "secrets", v[ref_key]["name"]
            if key == "azureFile" and v.get("secretName"):
                yield "secrets", v["secretName"]


def references(pods: list[dict[str, Any]], node: str, resource: str, name: str) -> bool:
    """True when a pod bound to `node` among `pods` uses `resource`/`name`."""
    for pod in pods:
        if (pod.get("spec") or {}).get("nodeName") != node:
            continue
        for res, n in pod_references(pod):
            if res == resource and n == name:
                return True
    return False
