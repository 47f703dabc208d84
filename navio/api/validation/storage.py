"""Validation of persistent storage: PersistentVolumes, PersistentVolumeClaim updates and the
storage.k8s.io/v1 kinds (StorageClass, CSIDriver, CSINode, VolumeAttachment), v1.32.

Ports of ValidatePersistentVolume(Spec|Update), ValidatePersistentVolumeClaimUpdate
(pkg/apis/core/validation) and pkg/apis/storage/validation with upstream's field paths and
messages: a PV needs access modes, a positive `capacity[storage]` and exactly one volume type
(a `local` volume also node affinity); its source and volumeMode never change. A claim's spec
is immutable except that the PV controller may set `volumeName` once, `storageClassName` may go
from unset to a value (the default-class assignment), and a bound claim's storage request may
grow but never shrink. A StorageClass's provisioner, parameters, reclaimPolicy and
volumeBindingMode are fixed at creation. Pure functions over JSON dicts.
"""

from __future__ import annotations

import posixpath
from typing import Any

from navio.api.quantity import QuantityError
from navio.api.validation import names
from navio.api.validation.affinity import validate_node_selector_term
from navio.api.validation.field import (Cause, child, duplicate, forbidden, index, invalid, key,
                                        not_supported, required, too_long)
from navio.api.validation.gorepr import go_json
from navio.api.validation.meta import (semantic_equal, validate_immutable, validate_object_meta,
                                       validate_object_meta_update)
from navio.api.validation.resources import parse_json_quantity
from navio.api.validation.volumes import path_no_backsteps, validate_pvc_spec

__all__ = ["validate_pv", "validate_pv_update", "validate_pvc_update", "validate_storage_class",
           "validate_storage_class_update", "validate_csi_driver", "validate_csi_driver_update",
           "validate_csi_node", "validate_csi_node_update", "validate_volume_attachment",
           "validate_volume_attachment_update", "PV_SOURCES"]

_ACCESS_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]
_VOLUME_MODES = ["Block", "Filesystem"]
_PV_RECLAIM = ["Delete", "Recycle", "Retain"]
_SC_RECLAIM = ["Delete", "Retain"]
_BINDING_MODES = ["Immediate", "WaitForFirstConsumer"]
_HOST_PATH_TYPES = ["", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File",
                    "FileOrCreate", "Socket"]
_NOT_POSITIVE = "must be greater than zero"
_MAX_PARAMS = 512
_MAX_PARAMS_SIZE = 256 * (1 << 10)

# PersistentVolumeSource members in ValidatePersistentVolumeSpec's order.
PV_SOURCES = ("hostPath", "gcePersistentDisk", "awsElasticBlockStore", "glusterfs", "flocker",
              "nfs", "rbd", "quobyte", "cephfs", "iscsi", "cinder", "fc", "flexVolume",
              "azureFile", "vsphereVolume", "photonPersistentDisk", "portworxVolume",
              "azureDisk", "scaleIO", "local", "storageos", "csi")
_FORBIDDEN_NAME = {"cephfs": "cephFS"}


def _positive_quantity(raw: Any, path: str) -> list[Cause]:
    try:
        q = parse_json_quantity(raw)
    except QuantityError as e:
        return [invalid(path, raw if isinstance(raw, str) else str(raw), str(e))]
    if q.amount <= 0:
        return [invalid(path, str(q), _NOT_POSITIVE)]
    return []


def _access_modes(modes: list[Any], path: str) -> list[Cause]:
    errs: list[Cause] = []
    rwop = other = False
    for m in modes:
        if m not in _ACCESS_MODES:
            errs.append(not_supported(path, m, _ACCESS_MODES))
        if m == "ReadWriteOncePod":
            rwop = True
        elif m in _ACCESS_MODES:
            other = True
    if rwop and other:
        errs.append(forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return errs


def _node_affinity(aff: dict[str, Any], path: str) -> tuple[bool, list[Cause]]:
    """validateVolumeNodeAffinity: (specified, errors)."""
    req = aff.get("required")
    if req is None:
        return False, [required(child(path, "required"), "must specify required node "
                                                         "constraints")]
    rp = child(path, "required")
    terms = req.get("nodeSelectorTerms") or []
    if not terms:
        return True, [required(child(rp, "nodeSelectorTerms"),
                               "must have at least one node selector term")]
    errs: list[Cause] = []
    for i, t in enumerate(terms):
        errs += validate_node_selector_term(t, index(child(rp, "nodeSelectorTerms"), i), False)
    return True, errs


def _source(name: str, src: dict[str, Any], path: str) -> list[Cause]:
    errs: list[Cause] = []
    if name in ("hostPath", "local"):
        p = src.get("path") or ""
        if not p:
            errs.append(required(child(path, "path"), ""))
        else:
            errs += path_no_backsteps(p, child(path, "path"))
        if name == "hostPath" and src.get("type") not in _HOST_PATH_TYPES and \
                src.get("type") is not None:
            errs.append(not_supported(child(path, "type"), src["type"], _HOST_PATH_TYPES))
    elif name == "nfs":
        if not src.get("server"):
            errs.append(required(child(path, "server"), ""))
        if not src.get("path"):
            errs.append(required(child(path, "path"), ""))
        elif not str(src["path"]).startswith("/"):
            errs.append(invalid(child(path, "path"), src["path"], "must be an absolute path"))
    elif name == "csi":
        if not src.get("driver"):
            errs.append(required(child(path, "driver"), ""))
        else:
            errs += _csi_driver_name(src["driver"], child(path, "driver"))
        if not src.get("volumeHandle"):
            errs.append(required(child(path, "volumeHandle"), ""))
    return errs


def _csi_driver_name(name: str, path: str) -> list[Cause]:
    """ValidateCSIDriverName."""
    if not name:
        return [required(path, name)]
    if len(name) > 63:
        return [too_long(path, 63)]
    return [invalid(path, name, m) for m in names.is_dns1123_subdomain(name.lower())]


def validate_pv_spec(spec: dict[str, Any], path: str = "spec") -> list[Cause]:
    errs: list[Cause] = []
    modes = spec.get("accessModes") or []
    if not modes:
        errs.append(required(child(path, "accessModes"), ""))
    errs += _access_modes(modes, child(path, "accessModes"))
    cap = spec.get("capacity") or {}
    if not cap:
        errs.append(required(child(path, "capacity"), ""))
    if "storage" not in cap or len(cap) > 1:
        errs.append(not_supported(child(path, "capacity"), go_json(cap), ["storage"]))
    for r, raw in cap.items():
        errs += _positive_quantity(raw, key(child(path, "capacity"), r))
    policy = spec.get("persistentVolumeReclaimPolicy")
    if policy and policy not in _PV_RECLAIM:
        errs.append(not_supported(child(path, "persistentVolumeReclaimPolicy"), policy,
                                  _PV_RECLAIM))
    affinity_set = False
    if spec.get("nodeAffinity") is not None:
        affinity_set, aerrs = _node_affinity(spec["nodeAffinity"], child(path, "nodeAffinity"))
        errs += aerrs
    count = 0
    for name in PV_SOURCES:
        src = spec.get(name)
        if src is None:
            continue
        if count > 0:
            errs.append(forbidden(child(path, _FORBIDDEN_NAME.get(name, name)),
                                  "may not specify more than 1 volume type"))
            continue
        count += 1
        errs += _source(name, src, child(path, name))
        if name == "local" and not affinity_set:
            errs.append(required(child(path, "nodeAffinity"),
                                 "Local volume requires node affinity"))
    if count == 0:
        errs.append(required(path, "must specify a volume type"))
    host = spec.get("hostPath")
    if host is not None and posixpath.normpath(host.get("path") or ".") == "/" and \
            policy == "Recycle":
        errs.append(forbidden(child(path, "persistentVolumeReclaimPolicy"),
                              "may not be 'recycle' for a hostPath mount of '/'"))
    sc = spec.get("storageClassName")
    if sc:
        errs += [invalid(child(path, "storageClassName"), sc, m)
                 for m in names.is_dns1123_subdomain(sc)]
    vm = spec.get("volumeMode")
    if vm is not None and vm not in _VOLUME_MODES:
        errs.append(not_supported(child(path, "volumeMode"), vm, _VOLUME_MODES))
    return errs


def validate_pv(pv: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta(pv.get("metadata"), False, names.name_is_dns_subdomain)
    return errs + validate_pv_spec(pv.get("spec") or {})


def _pv_source(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: spec[k] for k in PV_SOURCES if spec.get(k) is not None}


def validate_pv_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errs += validate_pv(new)
    spec, ospec = new.get("spec") or {}, old.get("spec") or {}
    if not semantic_equal(_pv_source(spec), _pv_source(ospec)):
        errs.append(forbidden("spec.persistentvolumesource",
                              "spec.persistentvolumesource is immutable after creation"))
    errs += validate_immutable(spec.get("volumeMode"), ospec.get("volumeMode"), "volumeMode")
    if ospec.get("nodeAffinity") is not None and \
            not semantic_equal(spec.get("nodeAffinity"), ospec.get("nodeAffinity")):
        errs.append(invalid("nodeAffinity", go_json(spec.get("nodeAffinity")),
                            "field is immutable"))
    return errs


def _ns_meta(obj: dict[str, Any]) -> list[Cause]:
    return validate_object_meta(obj.get("metadata"), True, names.name_is_dns_subdomain)


_BETA_CLASS = "volume.beta.kubernetes.io/storage-class"


def validate_pvc_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """ValidatePersistentVolumeClaimUpdate (RecoverVolumeExpansionFailure off)."""
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errs += _ns_meta(new) + validate_pvc_spec(new.get("spec") or {}, "spec")
    spec, ospec = dict(new.get("spec") or {}), dict(old.get("spec") or {})
    if not ospec.get("volumeName"):
        ospec["volumeName"] = spec.get("volumeName")
    old_ann = (old.get("metadata") or {}).get("annotations") or {}
    new_ann = (new.get("metadata") or {}).get("annotations") or {}
    if old_ann.get(_BETA_CLASS) != new_ann.get(_BETA_CLASS):
        errs.append(invalid(f"metadata.annotations[{_BETA_CLASS}]", new_ann.get(_BETA_CLASS, ""),
                            "field is immutable"))
    # validateStorageClassUpgradeFromNil: unset -> a value (the beta annotation's, if any).
    if spec.get("storageClassName") is not None and ospec.get("storageClassName") is None and \
            (_BETA_CLASS not in old_ann or spec["storageClassName"] == old_ann[_BETA_CLASS]):
        ospec["storageClassName"] = spec["storageClassName"]
    new_req = (spec.get("resources") or {}).get("requests") or {}
    old_req = (ospec.get("resources") or {}).get("requests") or {}
    if (new.get("status") or {}).get("phase") == "Bound" and new_req:
        spec["resources"] = {**(spec.get("resources") or {}),
                             "requests": {**new_req, "storage": old_req.get("storage")}}
    spec["volumeAttributesClassName"] = ospec.get("volumeAttributesClassName")
    if not semantic_equal(spec, ospec):
        errs.append(forbidden("spec", "spec is immutable after creation except "
                                      "resources.requests and volumeAttributesClassName for "
                                      "bound claims"))
    try:
        shrunk = "storage" in new_req and "storage" in old_req and \
            parse_json_quantity(new_req["storage"]).amount < \
            parse_json_quantity(old_req["storage"]).amount
    except QuantityError:
        shrunk = False
    if shrunk:
        errs.append(forbidden("spec.resources.requests.storage",
                              "field can not be less than previous value"))
    errs += validate_immutable((new.get("spec") or {}).get("volumeMode"),
                               (old.get("spec") or {}).get("volumeMode"), "volumeMode")
    return errs


# ---- storage.k8s.io -------------------------------------------------------------------------

def _qualified(value: str, path: str) -> list[Cause]:
    return [invalid(path, value, m) for m in names.is_qualified_name(value)]


def validate_storage_class(sc: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta(sc.get("metadata"), False, names.name_is_dns_subdomain)
    prov = sc.get("provisioner") or ""
    if not prov:
        errs.append(required("provisioner", ""))
    else:
        errs += _qualified(prov.lower(), "provisioner")
    params = sc.get("parameters") or {}
    if len(params) > _MAX_PARAMS:
        errs.append(too_long("parameters", _MAX_PARAMS))
    else:
        size = 0
        for k, v in params.items():
            if not k:
                errs.append(invalid("parameters", k, "field can not be empty."))
            size += len(k) + len(str(v))
        if size > _MAX_PARAMS_SIZE:
            errs.append(too_long("parameters", _MAX_PARAMS_SIZE))
    policy = sc.get("reclaimPolicy")
    if policy and policy not in _SC_RECLAIM:
        errs.append(not_supported("reclaimPolicy", policy, _SC_RECLAIM))
    mode = sc.get("volumeBindingMode")
    if mode is None:
        errs.append(required("volumeBindingMode", ""))
    elif mode not in _BINDING_MODES:
        errs.append(not_supported("volumeBindingMode", mode, _BINDING_MODES))
    seen: list[Any] = []
    for i, term in enumerate(sc.get("allowedTopologies") or []):
        p = index("allowedTopologies", i)
        exprs = term.get("matchLabelExpressions") or []
        if not exprs:
            errs.append(required(child(p, "matchLabelExpressions"),
                                 "must have at least one label expression"))
        as_map = {}
        for j, e in enumerate(exprs):
            ep = index(child(p, "matchLabelExpressions"), j)
            errs += _qualified(e.get("key", ""), child(ep, "key"))
            if not e.get("values"):
                errs.append(required(child(ep, "values"), "must specify as least one value"))
            as_map[e.get("key", "")] = sorted(set(e.get("values") or []))
        if as_map in seen:
            errs.append(duplicate(child(p, "matchLabelExpressions"), ""))
        seen.append(as_map)
    return errs


def validate_storage_class_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    if (new.get("parameters") or {}) != (old.get("parameters") or {}):
        errs.append(forbidden("parameters", "updates to parameters are forbidden."))
    if new.get("provisioner") != old.get("provisioner"):
        errs.append(forbidden("provisioner", "updates to provisioner are forbidden."))
    if new.get("reclaimPolicy") != old.get("reclaimPolicy"):
        errs.append(forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
    errs += validate_immutable(new.get("volumeBindingMode"), old.get("volumeBindingMode"),
                               "volumeBindingMode")
    return validate_storage_class(new) + errs


_FS_GROUP_POLICIES = ["File", "None", "ReadWriteOnceWithFSType"]
_LIFECYCLE_MODES = ["Ephemeral", "Persistent"]


def validate_csi_driver(d: dict[str, Any]) -> list[Cause]:
    meta = d.get("metadata") or {}
    errs = validate_object_meta(meta, False, lambda n, p: [])
    errs += _csi_driver_name(meta.get("name", ""), "name")
    spec = d.get("spec") or {}
    for f in ("attachRequired", "podInfoOnMount", "storageCapacity", "requiresRepublish",
              "seLinuxMount"):
        if spec.get(f) is None:
            errs.append(required(child("spec", f), ""))
    policy = spec.get("fsGroupPolicy")
    if policy is not None and policy not in _FS_GROUP_POLICIES:
        errs.append(not_supported("spec.fsGroupPolicy", policy, _FS_GROUP_POLICIES))
    for m in spec.get("volumeLifecycleModes") or []:
        if m not in _LIFECYCLE_MODES:
            errs.append(not_supported("spec.volumeLifecycleModes", m, _LIFECYCLE_MODES))
    return errs


def validate_csi_driver_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errs += validate_csi_driver(new)
    spec, ospec = new.get("spec") or {}, old.get("spec") or {}
    for f in ("attachRequired", "podInfoOnMount", "volumeLifecycleModes", "fsGroupPolicy"):
        errs += validate_immutable(spec.get(f), ospec.get(f), child("spec", f))
    return errs


def validate_csi_node(n: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta(n.get("metadata"), False, names.name_is_dns_subdomain)
    seen: set[str] = set()
    for i, drv in enumerate((n.get("spec") or {}).get("drivers") or []):
        p = index("spec.drivers", i)
        name = drv.get("name", "")
        errs += _csi_driver_name(name, child(p, "name"))
        if name in seen:
            errs.append(duplicate(child(p, "name"), name))
        seen.add(name)
        node_id = drv.get("nodeID", "")
        if not node_id:
            errs.append(required(child(p, "nodeID"), node_id))
        elif len(node_id) > 192:
            errs.append(invalid(child(p, "nodeID"), node_id, "must be 192 characters or less"))
    return errs


def validate_csi_node_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errs += validate_csi_node(new)
    olds = {d.get("name"): d for d in (old.get("spec") or {}).get("drivers") or []}
    for d in (new.get("spec") or {}).get("drivers") or []:
        o = olds.get(d.get("name"))
        if o is not None:
            a, b = dict(d), dict(o)
            a.pop("allocatable", None)
            b.pop("allocatable", None)
            errs += validate_immutable(a, b, "spec.drivers", go_json(a))
    return errs


def validate_volume_attachment(va: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta(va.get("metadata"), False, names.name_is_dns_subdomain)
    spec = va.get("spec") or {}
    if not spec.get("attacher"):
        errs.append(required("spec.attacher", ""))
    src = spec.get("source") or {}
    has_pv, has_inline = src.get("persistentVolumeName") is not None, \
        src.get("inlineVolumeSpec") is not None
    if not has_pv and not has_inline:
        errs.append(required("spec.source", "must specify exactly one of inlineVolumeSpec and "
                                            "persistentVolumeName"))
    elif has_pv and has_inline:
        errs.append(forbidden("spec.source", "must specify exactly one of inlineVolumeSpec and "
                                             "persistentVolumeName"))
    elif has_pv and not src["persistentVolumeName"]:
        errs.append(required("spec.source.persistentVolumeName",
                             "must specify non empty persistentVolumeName"))
    node = spec.get("nodeName", "")
    errs += [invalid("spec.nodeName", node, m) for m in names.name_is_dns_subdomain(node)]
    if spec.get("attacher"):
        errs += _csi_driver_name(spec["attacher"], "spec.attacher")
    return errs


def validate_volume_attachment_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errs += validate_volume_attachment(new)
    if not semantic_equal(new.get("spec"), old.get("spec")):
        errs.append(invalid("spec", go_json(new.get("spec")), "field is immutable"))
    return errs
