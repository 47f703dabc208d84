"""Protocol buffer messages of the CSI v1 spec (package `csi.v1`) and of the kubelet's plugin
registration API (package `pluginregistration`), the subset navio speaks.

Why built here: the messages are declared as descriptors at import time (no generated code and
no protoc), with the spec's package, message and field names and numbers, so that they are
wire-compatible with any CSI driver and registrar. Fields navio never sets or reads are left
out; protobuf keeps unknown fields, so a driver sending them is still understood.

`CSI.<Message>` and `REG.<Message>` are the message classes (nested types flattened with `_`,
e.g. `CSI.VolumeCapability_MountVolume`); `METHODS` maps each full gRPC method path to its
(request, response) classes.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = ["CSI", "REG", "METHODS", "enum_value"]

_F = descriptor_pb2.FieldDescriptorProto
_STRING, _BOOL, _INT64, _MSG, _ENUM = (_F.TYPE_STRING, _F.TYPE_BOOL, _F.TYPE_INT64,
                                       _F.TYPE_MESSAGE, _F.TYPE_ENUM)
_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED

# (name, number, type, label, type name, oneof index)
Field = tuple[str, int, int, int, str, int | None]


def _f(name: str, number: int, type_: int = _STRING, label: int = _OPT, type_name: str = "",
       oneof: int | None = None) -> Field:
    return (name, number, type_, label, type_name, oneof)


def _map(name: str, number: int) -> tuple[Field, str]:
    entry = "".join(p.capitalize() for p in name.split("_")) + "Entry"
    return _f(name, number, _MSG, _REP, entry), entry


def _message(fd: Any, name: str, fields: list[Any], *, oneofs: tuple[str, ...] = (),
             enums: dict[str, list[tuple[str, int]]] | None = None,
             nested: list[tuple[str, list[Any]]] | None = None, parent: Any = None) -> Any:
    msg = (parent.nested_type if parent is not None else fd.message_type).add()
    msg.name = name
    for o in oneofs:
        msg.oneof_decl.add().name = o
    for ename, values in (enums or {}).items():
        e = msg.enum_type.add()
        e.name = ename
        for vname, num in values:
            v = e.value.add()
            v.name, v.number = vname, num
    for nname, nfields in nested or ():
        _message(fd, nname, nfields, parent=msg)
    for item in fields:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], str):
            field, entry = item                      # a map<string, string>
            m = msg.nested_type.add()
            m.name = entry
            m.options.map_entry = True
            for fname, num in (("key", 1), ("value", 2)):
                kv = m.field.add()
                kv.name, kv.number, kv.type, kv.label = fname, num, _STRING, _OPT
            item = field
        fname, num, type_, label, type_name, oneof = item
        f = msg.field.add()
        f.name, f.number, f.type, f.label = fname, num, type_, label
        if type_name:
            f.type_name = type_name
        if oneof is not None:
            f.oneof_index = oneof
    return msg


def _csi_file() -> Any:
    fd = descriptor_pb2.FileDescriptorProto(name="navio/csi.proto", package="csi.v1",
                                            syntax="proto3")
    empty = ("GetPluginInfoRequest", "GetPluginCapabilitiesRequest", "ProbeRequest",
             "ProbeResponse", "DeleteVolumeResponse", "ControllerGetCapabilitiesRequest",
             "NodeStageVolumeResponse", "NodeUnstageVolumeResponse",
             "NodePublishVolumeResponse", "NodeUnpublishVolumeResponse",
             "NodeGetCapabilitiesRequest", "NodeGetInfoRequest")
    for name in empty:
        _message(fd, name, [])
    _message(fd, "GetPluginInfoResponse", [_f("name", 1), _f("vendor_version", 2),
                                           _map("manifest", 3)])
    _message(fd, "PluginCapability", [_f("service", 1, _MSG, _OPT, ".csi.v1.PluginCapability."
                                         "Service", 0)], oneofs=("type",),
             nested=[("Service", [_f("type", 1, _ENUM, _OPT,
                                     ".csi.v1.PluginCapability.Service.Type")])])
    svc = fd.message_type[-1].nested_type[0].enum_type.add()
    svc.name = "Type"
    for vname, num in (("UNKNOWN", 0), ("CONTROLLER_SERVICE", 1),
                       ("VOLUME_ACCESSIBILITY_CONSTRAINTS", 2)):
        v = svc.value.add()
        v.name, v.number = vname, num
    _message(fd, "GetPluginCapabilitiesResponse", [
        _f("capabilities", 1, _MSG, _REP, ".csi.v1.PluginCapability")])
    _message(fd, "CapacityRange", [_f("required_bytes", 1, _INT64), _f("limit_bytes", 2, _INT64)])
    _message(fd, "VolumeCapability", [
        _f("mount", 2, _MSG, _OPT, ".csi.v1.VolumeCapability.MountVolume", 0),
        _f("access_mode", 3, _MSG, _OPT, ".csi.v1.VolumeCapability.AccessMode")],
        oneofs=("access_type",),
        nested=[("MountVolume", [_f("fs_type", 1), _f("mount_flags", 2, label=_REP)]),
                ("AccessMode", [_f("mode", 1, _ENUM, _OPT,
                                   ".csi.v1.VolumeCapability.AccessMode.Mode")])])
    mode = fd.message_type[-1].nested_type[1].enum_type.add()
    mode.name = "Mode"
    for vname, num in (("UNKNOWN", 0), ("SINGLE_NODE_WRITER", 1),
                       ("SINGLE_NODE_READER_ONLY", 2), ("MULTI_NODE_READER_ONLY", 3),
                       ("MULTI_NODE_SINGLE_WRITER", 4), ("MULTI_NODE_MULTI_WRITER", 5),
                       ("SINGLE_NODE_SINGLE_WRITER", 6), ("SINGLE_NODE_MULTI_WRITER", 7)):
        v = mode.value.add()
        v.name, v.number = vname, num
    _message(fd, "Topology", [_map("segments", 1)])
    _message(fd, "TopologyRequirement", [
        _f("requisite", 1, _MSG, _REP, ".csi.v1.Topology"),
        _f("preferred", 2, _MSG, _REP, ".csi.v1.Topology")])
    _message(fd, "CreateVolumeRequest", [
        _f("name", 1), _f("capacity_range", 2, _MSG, _OPT, ".csi.v1.CapacityRange"),
        _f("volume_capabilities", 3, _MSG, _REP, ".csi.v1.VolumeCapability"),
        _map("parameters", 4), _map("secrets", 5),
        _f("accessibility_requirements", 7, _MSG, _OPT, ".csi.v1.TopologyRequirement")])
    _message(fd, "Volume", [_f("capacity_bytes", 1, _INT64), _f("volume_id", 2),
                            _map("volume_context", 3),
                            _f("accessible_topology", 5, _MSG, _REP, ".csi.v1.Topology")])
    _message(fd, "CreateVolumeResponse", [_f("volume", 1, _MSG, _OPT, ".csi.v1.Volume")])
    _message(fd, "DeleteVolumeRequest", [_f("volume_id", 1), _map("secrets", 2)])
    _message(fd, "ControllerPublishVolumeRequest", [
        _f("volume_id", 1), _f("node_id", 2),
        _f("volume_capability", 3, _MSG, _OPT, ".csi.v1.VolumeCapability"),
        _f("readonly", 4, _BOOL), _map("secrets", 5), _map("volume_context", 6)])
    _message(fd, "ControllerPublishVolumeResponse", [_map("publish_context", 1)])
    _message(fd, "ControllerUnpublishVolumeRequest", [_f("volume_id", 1), _f("node_id", 2),
                                                      _map("secrets", 3)])
    _message(fd, "ControllerUnpublishVolumeResponse", [])
    for owner, path in (("ControllerServiceCapability", ".csi.v1.ControllerServiceCapability"),
                        ("NodeServiceCapability", ".csi.v1.NodeServiceCapability")):
        _message(fd, owner, [_f("rpc", 1, _MSG, _OPT, f"{path}.RPC", 0)], oneofs=("type",),
                 nested=[("RPC", [_f("type", 1, _ENUM, _OPT, f"{path}.RPC.Type")])])
        rpc = fd.message_type[-1].nested_type[0].enum_type.add()
        rpc.name = "Type"
        values = (("UNKNOWN", 0), ("CREATE_DELETE_VOLUME", 1), ("PUBLISH_UNPUBLISH_VOLUME", 2),
                  ("LIST_VOLUMES", 3), ("GET_CAPACITY", 4)) if owner.startswith("Controller") \
            else (("UNKNOWN", 0), ("STAGE_UNSTAGE_VOLUME", 1), ("GET_VOLUME_STATS", 2),
                  ("EXPAND_VOLUME", 3))
        for vname, num in values:
            v = rpc.value.add()
            v.name, v.number = vname, num
    _message(fd, "ControllerGetCapabilitiesResponse", [
        _f("capabilities", 1, _MSG, _REP, ".csi.v1.ControllerServiceCapability")])
    _message(fd, "NodeGetCapabilitiesResponse", [
        _f("capabilities", 1, _MSG, _REP, ".csi.v1.NodeServiceCapability")])
    _message(fd, "NodeStageVolumeRequest", [
        _f("volume_id", 1), _map("publish_context", 2), _f("staging_target_path", 3),
        _f("volume_capability", 4, _MSG, _OPT, ".csi.v1.VolumeCapability"),
        _map("secrets", 5), _map("volume_context", 6)])
    _message(fd, "NodeUnstageVolumeRequest", [_f("volume_id", 1), _f("staging_target_path", 2)])
    _message(fd, "NodePublishVolumeRequest", [
        _f("volume_id", 1), _map("publish_context", 2), _f("staging_target_path", 3),
        _f("target_path", 4), _f("volume_capability", 5, _MSG, _OPT, ".csi.v1.VolumeCapability"),
        _f("readonly", 6, _BOOL), _map("secrets", 7), _map("volume_context", 8)])
    _message(fd, "NodeUnpublishVolumeRequest", [_f("volume_id", 1), _f("target_path", 2)])
    _message(fd, "NodeGetInfoResponse", [
        _f("node_id", 1), _f("max_volumes_per_node", 2, _INT64),
        _f("accessible_topology", 3, _MSG, _OPT, ".csi.v1.Topology")])
    return fd


def _registration_file() -> Any:
    fd = descriptor_pb2.FileDescriptorProto(name="navio/pluginregistration.proto",
                                            package="pluginregistration", syntax="proto3")
    _message(fd, "InfoRequest", [])
    _message(fd, "PluginInfo", [_f("type", 1), _f("name", 2), _f("endpoint", 3),
                                _f("supported_versions", 4, label=_REP)])
    _message(fd, "RegistrationStatus", [_f("plugin_registered", 1, _BOOL), _f("error", 2)])
    _message(fd, "RegistrationStatusResponse", [])
    return fd


def _classes(fd: Any) -> SimpleNamespace:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    out = SimpleNamespace()

    def walk(desc: Any, prefix: str) -> None:
        setattr(out, prefix + desc.name, message_factory.GetMessageClass(desc))
        for nested in desc.nested_types:
            if not nested.GetOptions().map_entry:
                walk(nested, f"{prefix}{desc.name}_")

    file_desc = pool.FindFileByName(fd.name)
    for desc in file_desc.message_types_by_name.values():
        walk(desc, "")
    return out


CSI = _classes(_csi_file())
REG = _classes(_registration_file())

_SERVICES = {
    "csi.v1.Identity": ("GetPluginInfo", "GetPluginCapabilities", "Probe"),
    "csi.v1.Controller": ("CreateVolume", "DeleteVolume", "ControllerPublishVolume",
                          "ControllerUnpublishVolume", "ControllerGetCapabilities"),
    "csi.v1.Node": ("NodeStageVolume", "NodeUnstageVolume", "NodePublishVolume",
                    "NodeUnpublishVolume", "NodeGetCapabilities", "NodeGetInfo"),
}
METHODS: dict[str, tuple[Any, Any]] = {
    f"/{svc}/{m}": (getattr(CSI, f"{m}Request"), getattr(CSI, f"{m}Response"))
    for svc, methods in _SERVICES.items() for m in methods}
METHODS["/pluginregistration.Registration/GetInfo"] = (REG.InfoRequest, REG.PluginInfo)
METHODS["/pluginregistration.Registration/NotifyRegistrationStatus"] = (
    REG.RegistrationStatus, REG.RegistrationStatusResponse)


def enum_value(message_class: Any, enum: str, name: str) -> int:
    """The number of `name` in the enum `enum` declared in `message_class`."""
    return int(message_class.DESCRIPTOR.enum_types_by_name[enum].values_by_name[name].number)
