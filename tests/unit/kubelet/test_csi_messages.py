"""CSI and plugin-registration messages are wire-compatible with the spec (issue 13): field
numbers and enum values checked against hand-encoded protobuf bytes."""

from __future__ import annotations

from navio.kubelet.csi.messages import CSI, METHODS, REG, enum_value


def test_node_publish_request_uses_the_spec_field_numbers() -> None:
    req = CSI.NodePublishVolumeRequest(volume_id="v", target_path="/t", readonly=True,
                                       staging_target_path="/s", volume_context={"a": "b"})
    req.volume_capability.access_mode.mode = enum_value(CSI.VolumeCapability_AccessMode,
                                                        "Mode", "SINGLE_NODE_WRITER")
    assert req.SerializeToString() == bytes.fromhex(
        "0a0176"          # 1 volume_id
        "1a022f73"        # 3 staging_target_path
        "22022f74"        # 4 target_path
        "2a041a020801"    # 5 volume_capability { 3 access_mode { 1 mode: 1 } }
        "3001"            # 6 readonly
        "4206" "0a0161" "120162")  # 8 volume_context {key: a, value: b}


def test_create_volume_round_trips_capacity_and_topology() -> None:
    req = CSI.CreateVolumeRequest(name="pvc-1", parameters={"tier": "gold"})
    req.capacity_range.required_bytes = 1 << 30
    req.accessibility_requirements.requisite.add().segments["zone"] = "a"
    assert req.SerializeToString().startswith(bytes.fromhex("0a05") + b"pvc-1" +
                                              bytes.fromhex("1206088080808004"))
    back = CSI.CreateVolumeRequest.FromString(req.SerializeToString())
    assert back.capacity_range.required_bytes == 1 << 30
    assert dict(back.accessibility_requirements.requisite[0].segments) == {"zone": "a"}


def test_registration_messages_and_method_paths() -> None:
    info = REG.PluginInfo(type="CSIPlugin", name="d", endpoint="/e",
                          supported_versions=["1.0.0"])
    assert info.SerializeToString() == b"\x0a\x09CSIPlugin\x12\x01d\x1a\x02/e\x22\x051.0.0"
    assert METHODS["/pluginregistration.Registration/GetInfo"] == (REG.InfoRequest,
                                                                    REG.PluginInfo)
    assert METHODS["/csi.v1.Node/NodeGetInfo"][1] is CSI.NodeGetInfoResponse
    assert enum_value(CSI.NodeServiceCapability_RPC, "Type", "STAGE_UNSTAGE_VOLUME") == 1
    assert enum_value(CSI.ControllerServiceCapability_RPC, "Type", "CREATE_DELETE_VOLUME") == 1
