"""Where navio's registry keys live in etcd: Kubernetes' own key layout.

Why: an etcd that holds a navio cluster should read like one that holds a Kubernetes cluster
(`etcdctl get --prefix /registry/pods/` works, backup and inspection tools find what they
expect). navio's keys name the group (`/registry/<group|core>/<plural>/<ns>/<name>`) so that
every backend can serve any resource; in etcd they are laid out as kube-apiserver lays them:

- Resources of kube-apiserver's built-in groups: `/registry/<resource prefix>/…`, where the
  prefix is the resource's plural, except those of k8s.io/apiserver's
  `specialDefaultResourcePrefixes` (services → `services/specs`, endpoints →
  `services/endpoints`, nodes → `minions`, replicationcontrollers → `controllers`, ingresses →
  `ingress`). Cohabiting resources (core and events.k8s.io Events) share one prefix already in
  navio (`Kind.storage_group`).
- Everything else — CRDs (`apiextensions.k8s.io`), APIServices, custom resources, navio's own
  groups — keeps `/registry/<group>/<plural>/…`, as the apiextensions server stores them.

The mapping only renames a resource's prefix; the `<ns>/<name>` part is kept, so key order
within a resource (what list pages and continue tokens follow) is the same in both layouts.
Keys that are not of navio's form pass through unchanged.
"""

from __future__ import annotations

__all__ = ["KUBE_GROUPS", "SPECIAL_PREFIXES", "KeyLayout", "kube_layout"]

# API groups kube-apiserver itself serves (k8s.io/kubernetes pkg/controlplane), stored
# under their resource name alone. apiextensions.k8s.io and apiregistration.k8s.io are served
# by the extension and aggregation servers, which put the group in the key.
KUBE_GROUPS = frozenset({
    "core", "apps", "autoscaling", "batch", "policy", "admissionregistration.k8s.io",
    "authentication.k8s.io", "authorization.k8s.io", "certificates.k8s.io",
    "coordination.k8s.io", "discovery.k8s.io", "events.k8s.io",
    "flowcontrol.apiserver.k8s.io", "internal.apiserver.k8s.io", "networking.k8s.io",
    "node.k8s.io", "rbac.authorization.k8s.io", "resource.k8s.io", "scheduling.k8s.io",
    "storage.k8s.io", "storagemigration.k8s.io",
})

# k8s.io/apiserver/pkg/server/storage/storage_factory.go: specialDefaultResourcePrefixes.
SPECIAL_PREFIXES: dict[tuple[str, str], str] = {
    ("core", "replicationcontrollers"): "controllers",
    ("core", "endpoints"): "services/endpoints",
    ("core", "nodes"): "minions",
    ("core", "services"): "services/specs",
    ("networking.k8s.io", "ingresses"): "ingress",
    ("extensions", "ingresses"): "ingress",
    ("policy", "podsecuritypolicies"): "podsecuritypolicy",
}

_ROOT = "/registry/"


class KeyLayout:
    """Translates navio keys and prefixes to etcd keys and back (see module doc).

    `resources` are the (storage group, plural) pairs of the built-in kinds: kube's layout
    drops the group, so the way back needs to know which group a bare prefix belongs to."""

    def __init__(self, resources: "set[tuple[str, str]] | frozenset[tuple[str, str]]") -> None:
        self._out: dict[tuple[str, str], str] = {}
        self._back: dict[str, tuple[str, str]] = {}
        for group, plural in sorted(resources):
            if group not in KUBE_GROUPS:
                continue
            prefix = SPECIAL_PREFIXES.get((group, plural), plural)
            if prefix in self._back:   # two groups, one bare name: keep the second qualified
                continue
            self._out[(group, plural)] = prefix
            self._back[prefix] = (group, plural)
        # Two-segment prefixes (services/specs) are tried before one-segment ones.
        self._back_order = sorted(self._back, key=lambda p: -p.count("/"))

    def to_etcd(self, key: str) -> str:
        """The etcd key (or prefix) of a navio key (or prefix of one resource or below)."""
        if not key.startswith(_ROOT):
            return key
        parts = key[len(_ROOT):].split("/", 2)
        if len(parts) < 2:
            return key
        prefix = self._out.get((parts[0], parts[1]))
        if prefix is None:
            return key
        return f"{_ROOT}{prefix}" + (f"/{parts[2]}" if len(parts) == 3 else "")

    def to_navio(self, key: str) -> str:
        if not key.startswith(_ROOT):
            return key
        rest = key[len(_ROOT):]
        for prefix in self._back_order:
            if rest.startswith(prefix) and (len(rest) == len(prefix)
                                            or rest[len(prefix)] == "/"):
                group, plural = self._back[prefix]
                return f"{_ROOT}{group}/{plural}{rest[len(prefix):]}"
        return key

    def maps_range(self, prefix: str) -> bool:
        """True when every navio key under `prefix` lies under `to_etcd(prefix)` in etcd (a
        resource's prefix, or one of its namespaces), so one etcd range read serves it."""
        if not prefix.startswith(_ROOT):
            return False
        parts = prefix[len(_ROOT):].split("/")
        return len(parts) >= 3 and bool(parts[0]) and bool(parts[1])


def kube_layout() -> KeyLayout:
    """The layout for navio's built-in kinds."""
    from navio.api.registry import BUILTIN
    return KeyLayout({((k.group if k.storage_group is None else k.storage_group) or "core",
                       k.plural) for k in BUILTIN if not k.virtual})
