"""The VXLAN backend's pure parts (issue 16): VTEP addresses and which nodes are peers."""

from __future__ import annotations

import json
from typing import Any

from navio.kubelet import vxlan
from navio.kubelet.routes import NodeRoutes


def node(name: str, cidr: str | None, ip: str | None, *, backend: str = "vxlan",
         data: str | None = None) -> dict[str, Any]:
    notes = dict(vxlan.node_annotations(ip)) if ip else {}
    if backend != "vxlan":
        notes[vxlan.BACKEND_TYPE] = backend
    if data is not None:
        notes[vxlan.BACKEND_DATA] = data
    spec = {"podCIDR": cidr, "podCIDRs": [cidr]} if cidr else {}
    return {"metadata": {"name": name, "annotations": notes}, "spec": spec}


def test_the_vtep_mac_is_fixed_by_the_address_and_locally_administered() -> None:
    mac = vxlan.vtep_mac("10.201.0.2")
    assert mac == vxlan.vtep_mac("10.201.0.2") != vxlan.vtep_mac("10.201.0.3")
    first = int(mac.split(":")[0], 16)
    assert first & 0x02 and not first & 0x01        # locally administered, unicast
    notes = vxlan.node_annotations("10.201.0.2")
    assert notes[vxlan.BACKEND_TYPE] == "vxlan" and notes[vxlan.PUBLIC_IP] == "10.201.0.2"
    assert json.loads(notes[vxlan.BACKEND_DATA]) == {"VNI": 1, "VtepMAC": mac}


def test_every_other_vxlan_node_with_a_range_is_a_peer() -> None:
    nodes = [node("me", "10.42.0.0/24", "10.201.0.1"),
             node("b", "10.42.1.0/24", "10.201.0.2"),
             node("c", "10.42.2.0/24", "10.202.0.3"),
             node("hostgw", "10.42.3.0/24", "10.201.0.4", backend="host-gw"),
             node("plain", "10.42.4.0/24", None),
             node("junk", "10.42.5.0/24", "10.201.0.6", data="{not json"),
             node("nomac", "10.42.6.0/24", "10.201.0.7", data="{}"),
             node("nocidr", None, "10.201.0.8"),
             node("twin", "10.42.0.0/23", "10.201.0.9"),
             node("loop", "10.42.7.0/24", "127.0.0.1")]
    got = vxlan.desired_vteps(nodes, "me", local_cidr="10.42.0.0/24", local_ip="10.201.0.1")
    assert got == {
        "10.42.1.0/24": vxlan.Vtep("10.42.1.0/24", "10.42.1.0", vxlan.vtep_mac("10.201.0.2"),
                                   "10.201.0.2"),
        "10.42.2.0/24": vxlan.Vtep("10.42.2.0/24", "10.42.2.0", vxlan.vtep_mac("10.202.0.3"),
                                   "10.202.0.3")}


def test_the_backend_is_checked() -> None:
    import pytest
    with pytest.raises(ValueError, match="host-gw, vxlan"):
        NodeRoutes(None, "me", None, backend="wireguard")     # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pod CIDR"):
        NodeRoutes(None, "me", None, backend="vxlan")         # type: ignore[arg-type]
