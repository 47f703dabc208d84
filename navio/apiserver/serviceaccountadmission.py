"""ServiceAccount admission's token volume (plugin/pkg/admission/serviceaccount, v1.32).

Every new pod whose ServiceAccount token is automounted gets kube's `kube-api-access-XXXXX`
projected volume — a bound service-account token (`token`, expirationSeconds 3607), the
cluster CA (`ca.crt` from ConfigMap `kube-root-ca.crt`) and the namespace (downward API) —
mounted read-only at /var/run/secrets/kubernetes.io/serviceaccount in every init and app
container that does not mount something there already. `automountServiceAccountToken: false`
on the pod, or else on its ServiceAccount, opts out; mirror pods are left alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from navio.api.randstr import random_string

if TYPE_CHECKING:
    from navio.apiserver.resources import Resources

__all__ = ["mount_service_account_token", "MOUNT_PATH", "VOLUME_PREFIX"]

MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_PREFIX = "kube-api-access-"
TOKEN_EXPIRATION = 3607  # serviceaccount.WarnOnlyBoundTokenExpirationSeconds
_MIRROR = "kubernetes.io/config.mirror"


def token_volume(name: str) -> dict[str, Any]:
    return {"name": name, "projected": {"defaultMode": 0o644, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt",
                       "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
            "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}}


def _automount(resources: "Resources", pod: dict[str, Any], spec: dict[str, Any]) -> bool:
    if spec.get("automountServiceAccountToken") is not None:
        return bool(spec["automountServiceAccountToken"])
    kind = resources.registry.resource("", "v1", "serviceaccounts")
    if kind is None:
        return True
    ns = (pod.get("metadata") or {}).get("namespace", "")
    sa = resources.cache(kind).get(kind.storage_key(ns, spec.get("serviceAccountName", "")))
    if sa is not None and sa.get("automountServiceAccountToken") is False:
        return False
    return True


def mount_service_account_token(resources: "Resources", pod: dict[str, Any]) -> None:
    """Add the token volume and its mounts to a new pod, in place (after defaulting)."""
    meta = pod.get("metadata") or {}
    if _MIRROR in (meta.get("annotations") or {}):
        return
    spec = pod.setdefault("spec", {})
    if not _automount(resources, pod, spec):
        return
    volumes = spec.get("volumes") or []
    existing = next((v["name"] for v in volumes
                     if str(v.get("name", "")).startswith(VOLUME_PREFIX)), None)
    names = {v.get("name") for v in volumes}
    name = existing
    while name is None or (existing is None and name in names):
        name = VOLUME_PREFIX + random_string(5)
    mount = {"name": name, "readOnly": True, "mountPath": MOUNT_PATH}
    needed = False
    for group in ("initContainers", "containers"):
        for c in spec.get(group) or ():
            if any(m.get("mountPath") == MOUNT_PATH for m in c.get("volumeMounts") or ()):
                continue
            c.setdefault("volumeMounts", []).append(dict(mount))
            needed = True
    if needed and existing is None:
        spec["volumes"] = volumes + [token_volume(name)]
