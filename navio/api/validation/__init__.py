"""Kind validation with kube-apiserver's exact field paths and messages (Kubernetes v1.32).

`validate(group, kind, obj, old=None)` returns `details.causes` entries (see
`navio.api.errors.cause`), empty when the object is valid, for a create (`old` None) or an
update. It runs what the registry's BeforeCreate/BeforeUpdate run, in their order:

* create: the kind's strategy validation; only if that passes, the generic ObjectMeta check
  every resource gets (name or generateName, namespace, labels, path-safe name);
* update: the generic common-field checks (ObjectMeta + immutable name, namespace, uid,
  resourceVersion present), then the kind's update validation. Upstream repeats some
  ObjectMeta errors there; they are kept, since kubectl removes duplicates when it prints.

Objects must be defaulted first (`navio.api.defaults.apply_defaults`) and, on create, prepared
(`prepare_for_create`: Job selectors), as upstream validates after both. Pure and repeatable.
"""

from __future__ import annotations

from typing import Any, Callable

import orjson

from navio.api.registry import BUILTIN
from navio.api.validation import (admissionpolicy, admissionregistration, apps, batch,
                                  certificates, core, misc, names, networking, node, pod, rbac,
                                  service, storage)
from navio.api.validation.field import Cause
from navio.api.validation.meta import validate_object_meta, validate_object_meta_update

__all__ = ["validate", "validate_ephemeral_containers_update", "validate_name", "Cause",
           "register", "unregister"]

Create = Callable[[dict[str, Any]], list[Cause]]
Update = Callable[[dict[str, Any], dict[str, Any]], list[Cause]]

_NAMESPACED = {(k.group, k.kind): k.namespaced for k in BUILTIN}


def _meta_then(check: Create) -> Update:
    """Update = ObjectMetaUpdate + the create validation of the new object."""
    def update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
        return validate_object_meta_update(new.get("metadata"), old.get("metadata")) + check(new)
    return update


_KINDS: dict[tuple[str, str], tuple[Create, Update]] = {
    ("", "Pod"): (pod.validate_pod, pod.validate_pod_update),
    ("", "PodTemplate"): (pod.validate_pod_template, pod.validate_pod_template_update),
    ("", "ReplicationController"): (pod.validate_replication_controller,
                                    pod.validate_replication_controller_update),
    ("", "Binding"): (pod.validate_binding, lambda new, old: pod.validate_binding(new)),
    ("", "Service"): (service.validate_service, service.validate_service_update),
    ("", "Endpoints"): (service.validate_endpoints, service.validate_endpoints_update),
    ("", "ConfigMap"): (core.validate_config_map, core.validate_config_map_update),
    ("", "Secret"): (core.validate_secret, core.validate_secret_update),
    ("", "Namespace"): (core.validate_namespace, core.validate_namespace_update),
    ("", "Node"): (core.validate_node, core.validate_node_update),
    ("", "ServiceAccount"): (core.validate_service_account,
                             _meta_then(core.validate_service_account)),
    ("", "Event"): (lambda ev: core.validate_event(ev, False),
                    lambda new, old: core.validate_event_update(new, old, False)),
    ("", "PersistentVolumeClaim"): (core.validate_pvc, storage.validate_pvc_update),
    ("", "PersistentVolume"): (storage.validate_pv, storage.validate_pv_update),
    ("", "LimitRange"): (core.validate_limit_range, _meta_then(core.validate_limit_range)),
    ("", "ResourceQuota"): (core.validate_resource_quota, core.validate_resource_quota_update),
    ("apps", "Deployment"): (apps.validate_deployment, apps.validate_deployment_update),
    ("apps", "ReplicaSet"): (apps.validate_replica_set, apps.validate_replica_set_update),
    ("apps", "DaemonSet"): (apps.validate_daemon_set, apps.validate_daemon_set_update),
    ("apps", "StatefulSet"): (apps.validate_stateful_set, apps.validate_stateful_set_update),
    ("apps", "ControllerRevision"): (apps.validate_controller_revision,
                                     apps.validate_controller_revision_update),
    ("batch", "Job"): (batch.validate_job, batch.validate_job_update),
    ("batch", "CronJob"): (batch.validate_cron_job, batch.validate_cron_job_update),
    ("coordination.k8s.io", "Lease"): (misc.validate_lease, misc.validate_lease_update),
    ("events.k8s.io", "Event"): (lambda ev: core.validate_event(ev, True),
                                 lambda new, old: core.validate_event_update(new, old, True)),
    ("discovery.k8s.io", "EndpointSlice"): (misc.validate_endpoint_slice,
                                            misc.validate_endpoint_slice_update),
    ("networking.k8s.io", "NetworkPolicy"): (networking.validate_network_policy,
                                             networking.validate_network_policy_update),
    ("policy", "PodDisruptionBudget"): (misc.validate_pdb, misc.validate_pdb_update),
    ("scheduling.k8s.io", "PriorityClass"): (misc.validate_priority_class,
                                             misc.validate_priority_class_update),
    ("node.k8s.io", "RuntimeClass"): (node.validate_runtime_class,
                                      node.validate_runtime_class_update),
    (rbac.GROUP, "Role"): (rbac.validate_role, rbac.validate_role_update),
    (rbac.GROUP, "ClusterRole"): (rbac.validate_cluster_role, rbac.validate_cluster_role_update),
    (rbac.GROUP, "RoleBinding"): (rbac.validate_role_binding, rbac.validate_role_binding_update),
    (rbac.GROUP, "ClusterRoleBinding"): (rbac.validate_cluster_role_binding,
                                         rbac.validate_cluster_role_binding_update),
    ("certificates.k8s.io", "CertificateSigningRequest"): (
        certificates.validate_csr, certificates.validate_csr_update),
    ("storage.k8s.io", "StorageClass"): (storage.validate_storage_class,
                                         storage.validate_storage_class_update),
    ("storage.k8s.io", "CSIDriver"): (storage.validate_csi_driver,
                                      storage.validate_csi_driver_update),
    ("storage.k8s.io", "CSINode"): (storage.validate_csi_node, storage.validate_csi_node_update),
    ("storage.k8s.io", "VolumeAttachment"): (storage.validate_volume_attachment,
                                             storage.validate_volume_attachment_update),
    (admissionregistration.GROUP, "ValidatingWebhookConfiguration"): (
        admissionregistration.validate_validating_configuration,
        admissionregistration.validate_validating_configuration_update),
    (admissionregistration.GROUP, "MutatingWebhookConfiguration"): (
        admissionregistration.validate_mutating_configuration,
        admissionregistration.validate_mutating_configuration_update),
    (admissionregistration.GROUP, "ValidatingAdmissionPolicy"): (
        admissionpolicy.validate_policy, admissionpolicy.validate_policy_update),
    (admissionregistration.GROUP, "ValidatingAdmissionPolicyBinding"): (
        admissionpolicy.validate_binding, admissionpolicy.validate_binding_update),
}

def register(group: str, kind: str, create: Create, update: Update,
             namespaced: bool | None = None) -> None:
    """Validation for a kind added at run time (CustomResourceDefinitions, custom kinds)."""
    _KINDS[(group, kind)] = (create, update)
    if namespaced is not None:
        _NAMESPACED[(group, kind)] = namespaced


def unregister(group: str, kind: str) -> None:
    _KINDS.pop((group, kind), None)
    _NAMESPACED.pop((group, kind), None)


def _name_fn(group: str, kind: str) -> Callable[[str, bool], list[str]]:
    if (group, kind) == ("", "Service"):
        return names.name_is_dns1035_label
    if (group, kind) in (("", "Namespace"), ("apps", "StatefulSet")):
        return names.name_is_dns_label
    if (group, kind) in (("", "Event"), ("certificates.k8s.io", "CertificateSigningRequest")) \
            or (group, kind) not in _KINDS:
        return names.validate_path_segment_name
    return names.name_is_dns_subdomain


def validate_name(group: str, kind: str, name: str, prefix: bool = False) -> list[str]:
    """The kind's name rule (`ValidateXName`) as messages, for URL names and generateName
    (`prefix=True` allows a trailing dash). Every name must also be a safe path segment."""
    msgs = _name_fn(group, kind)(name, prefix)
    return msgs + [m for m in names.validate_path_segment_name(name, prefix) if m not in msgs]


def _without_nulls(v: Any) -> Any:
    # Go's JSON decoder leaves a field at its zero value for `null`; dropping the key gives
    # every `.get(key, zero)` below the same reading. Validators only read, so an object with
    # no null anywhere (no `null` in its JSON, which orjson tells in well under a microsecond)
    # is returned as it is; otherwise a copy.
    try:
        if b"null" not in orjson.dumps(v):
            return v
    except TypeError:
        pass
    return _copy_without_nulls(v)


def _copy_without_nulls(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _copy_without_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_copy_without_nulls(x) for x in v]
    return v


def validate(group: str, kind: str, obj: dict[str, Any],
             old: dict[str, Any] | None = None) -> list[Cause]:
    """Causes for creating `obj` (`old` None) or replacing `old` with it; [] when valid.
    Neither argument is modified."""
    obj = _without_nulls(obj)
    old = _without_nulls(old) if old is not None else None
    namespaced = _NAMESPACED.get((group, kind), bool((obj.get("metadata") or {}).get("namespace")))
    entry = _KINDS.get((group, kind))
    meta = obj.get("metadata")
    if old is None:
        errs = entry[0](obj) if entry else []
        if errs:
            return errs
        # rest.BeforeCreate: common ObjectMeta rules, run only after the kind's own passed.
        return validate_object_meta(meta, namespaced, names.validate_path_segment_name,
                                    kube_finalizers=False)
    # rest.BeforeUpdate: validateCommonFields, then the strategy's ValidateUpdate.
    errs = validate_object_meta(meta, namespaced, names.validate_path_segment_name,
                                kube_finalizers=False)
    errs += validate_object_meta_update(meta, old.get("metadata"), kube_finalizers=False)
    if entry:
        errs += entry[1](obj, old)
    return errs


def validate_ephemeral_containers_update(obj: dict[str, Any], old: dict[str, Any]
                                         ) -> list[Cause]:
    """A pods/ephemeralcontainers write (kube's podEphemeralContainersStrategy): the common
    ObjectMeta checks, then ValidatePodEphemeralContainersUpdate."""
    obj, old = _without_nulls(obj), _without_nulls(old)
    meta = obj.get("metadata")
    errs = validate_object_meta(meta, True, names.validate_path_segment_name,
                                kube_finalizers=False)
    errs += validate_object_meta_update(meta, old.get("metadata"), kube_finalizers=False)
    return errs + pod.validate_pod_ephemeral_containers_update(obj, old)
