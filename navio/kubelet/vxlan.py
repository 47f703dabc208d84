"""VXLAN overlay for pod traffic between nodes that share no link (flannel's vxlan backend).

Why: host-gw routes (`<their podCIDR> via <their InternalIP>`) need every node on one L2
segment; nodes on different routed subnets cannot be each other's gateway. With
`--pod-network-backend vxlan` each agent makes one VXLAN device, `navio.1` (VNI 1, UDP 8472
as flannel on Linux, no learning), in the node namespace (the host's, or `--node-netns`),
whose local address is the node's InternalIP; pod packets for another node are wrapped in
UDP between the two nodes' addresses, which any routed network carries.

The layout is flannel's, so `ip route`/`ip neigh`/`bridge fdb` read the same:
- the device holds this node's pod CIDR's network address as a /32 (10.42.1.0/32) and has a
  fixed MAC derived from the node's address (a restarted agent keeps it);
- per remote node: a route `<podCIDR> via <its network address> dev navio.1 onlink` (of
  the host-gw routes' protocol, so one sync removes stale ones of either backend), a
  permanent neighbour `<its network address> lladdr <its VTEP MAC>`, and a permanent FDB
  entry `<its VTEP MAC> dst <its InternalIP>`;
- every node publishes what the others need in its own Node's annotations
  (`pod-network.navio.io/backend-type: vxlan`, `.../backend-data: {"VNI":1,"VtepMAC":..}`,
  `.../public-ip`), as flannel does with its `flannel.alpha.coreos.com/` ones;
- the pods' interfaces get the MTU of the node's link minus the 50 bytes of encapsulation
  (`pod_mtu`), so full-size packets are never fragmented or dropped.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import json
import logging
import socket
from dataclasses import dataclass
from typing import Any

__all__ = ["DEVICE", "VNI", "PORT", "OVERHEAD", "BACKEND_TYPE", "BACKEND_DATA", "PUBLIC_IP",
           "Vtep", "vtep_mac", "node_annotations", "desired_vteps", "ensure_device", "pod_mtu",
           "sync_neighbours", "remove_device", "ONLINK", "overlay_pod_mtu"]

log = logging.getLogger(__name__)

DEVICE = "navio.1"
VNI = 1
PORT = 8472
OVERHEAD = 50              # outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14
BACKEND_TYPE = "pod-network.navio.io/backend-type"
BACKEND_DATA = "pod-network.navio.io/backend-data"
PUBLIC_IP = "pod-network.navio.io/public-ip"
_NUD_PERMANENT = 0x80
_NTF_SELF = 0x02
ONLINK = 0x04              # RTNH_F_ONLINK: the gateway needs no route of its own


@dataclass(frozen=True, slots=True)
class Vtep:
    """One remote node's end of the overlay."""

    cidr: str          # its pod CIDR
    gateway: str       # its pod CIDR's network address (on its navio.1)
    mac: str           # its device's MAC
    public_ip: str     # its InternalIP: where the UDP goes


def vtep_mac(node_ip: str) -> str:
    """A locally administered unicast MAC fixed by the node's address."""
    digest = hashlib.sha256(f"navio-vxlan/{node_ip}".encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x0e, *digest[:5]))


def node_annotations(node_ip: str) -> dict[str, str]:
    return {BACKEND_TYPE: "vxlan",
            BACKEND_DATA: json.dumps({"VNI": VNI, "VtepMAC": vtep_mac(node_ip)},
                                     separators=(",", ":")),
            PUBLIC_IP: node_ip}


def desired_vteps(nodes: list[dict[str, Any]], self_name: str, *,
                  local_cidr: str | None = None, local_ip: str | None = None
                  ) -> dict[str, Vtep]:
    """Pod CIDR -> Vtep of every other node that runs the vxlan backend (IPv4 only)."""
    mine = ipaddress.ip_network(local_cidr, strict=False) if local_cidr else None
    out: dict[str, Vtep] = {}
    for node in nodes:
        meta, spec = node.get("metadata") or {}, node.get("spec") or {}
        notes = meta.get("annotations") or {}
        if meta.get("name") == self_name or notes.get(BACKEND_TYPE) != "vxlan":
            continue
        try:
            data = json.loads(notes.get(BACKEND_DATA) or "{}")
            mac = str(data["VtepMAC"]).lower()
            public = ipaddress.IPv4Address(notes.get(PUBLIC_IP) or "")
        except (ValueError, KeyError, TypeError):
            log.warning("node has malformed vxlan backend data", extra={"node": meta.get("name")})
            continue
        if str(public) == local_ip or public.is_loopback:
            continue
        for cidr in spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []):
            try:
                net = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                continue
            if net.version == 4 and not (mine is not None and net.overlaps(mine)):
                out[str(net)] = Vtep(str(net), str(net.network_address), mac, str(public))
    return out


async def pod_mtu(ipr: Any, node_ip: str) -> int:
    """The MTU of the link holding `node_ip`, less the encapsulation overhead."""
    index = None
    async for a in await ipr.addr("dump", family=socket.AF_INET):
        if a.get_attr("IFA_ADDRESS") == node_ip or a.get_attr("IFA_LOCAL") == node_ip:
            index = a["index"]
            break
    mtu = 1500
    if index is not None:
        for link in await _links(ipr, index):
            mtu = int(link.get_attr("IFLA_MTU") or mtu)
    return mtu - OVERHEAD


async def overlay_pod_mtu(node_netns: str | None, node_ip: str) -> int:
    """`pod_mtu` in the node namespace (the host's, or `node_netns`), for the agent's start."""
    import asyncio

    from navio.kubelet.netsetup import run_netlink
    found: list[int] = []

    async def work(ipr: Any) -> None:
        found.append(await pod_mtu(ipr, node_ip))
    await asyncio.to_thread(run_netlink, node_netns, work)
    log.info("pod MTU for the vxlan overlay", extra={"node_ip": node_ip, "mtu": found[0]})
    return found[0]


async def _links(ipr: Any, index: int) -> list[Any]:
    got = await ipr.link("get", index=index)
    if hasattr(got, "__aiter__"):
        return [x async for x in got]
    return list(got)


async def ensure_device(ipr: Any, node_ip: str, pod_cidr: str, mtu: int) -> int:
    """Make (or keep) `navio.1` for this node; returns its index. A device with another
    local address, VNI or MAC (the node's address changed) is made again."""
    mac = vtep_mac(node_ip)
    found = await ipr.link_lookup(ifname=DEVICE)
    if found:
        link = (await _links(ipr, found[0]))[0]
        data = link.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
        if (data is None or data.get_attr("IFLA_VXLAN_LOCAL") != node_ip
                or data.get_attr("IFLA_VXLAN_ID") != VNI
                or str(link.get_attr("IFLA_ADDRESS")).lower() != mac):
            await ipr.link("del", index=found[0])
            found = []
    if not found:
        await ipr.link("add", ifname=DEVICE, kind="vxlan", vxlan_id=VNI, vxlan_local=node_ip,
                       vxlan_port=PORT, vxlan_learning=0, address=mac, mtu=mtu)
        found = await ipr.link_lookup(ifname=DEVICE)
        log.info("vxlan device created", extra={"device": DEVICE, "local": node_ip,
                                                "mac": mac, "mtu": mtu})
    index = int(found[0])
    await ipr.link("set", index=index, mtu=mtu)
    gateway = str(ipaddress.ip_network(pod_cidr, strict=False).network_address)
    have = {a.get("address")
            async for a in await ipr.addr("dump", index=index, family=socket.AF_INET)}
    for stale in have - {gateway}:
        await ipr.addr("del", index=index, address=stale, prefixlen=32)
    if gateway not in have:
        try:
            await ipr.addr("add", index=index, address=gateway, prefixlen=32)
        except Exception as exc:
            if getattr(exc, "code", None) != errno.EEXIST:
                raise
    await ipr.link("set", index=index, state="up")
    return index


async def sync_neighbours(ipr: Any, index: int, want: dict[str, Vtep]) -> None:
    """Make the device's permanent FDB and neighbour entries exactly those of `want`."""
    fdb_want = {v.mac: v.public_ip for v in want.values()}
    arp_want = {v.gateway: v.mac for v in want.values()}
    fdb_have: dict[str, str] = {}
    async for n in await ipr.fdb("dump", ifindex=index):
        if n["ifindex"] == index and n["state"] & _NUD_PERMANENT and n.get_attr("NDA_DST"):
            fdb_have[str(n.get_attr("NDA_LLADDR")).lower()] = str(n.get_attr("NDA_DST"))
    arp_have: dict[str, str] = {}
    async for n in await ipr.neigh("dump", ifindex=index):
        if n["ifindex"] == index and n["family"] == socket.AF_INET \
                and n["state"] & _NUD_PERMANENT:
            arp_have[str(n.get_attr("NDA_DST"))] = str(n.get_attr("NDA_LLADDR")).lower()
    for mac, dst in fdb_have.items():
        if fdb_want.get(mac) != dst:
            await ipr.neigh("del", ifindex=index, lladdr=mac, dst=dst,
                            family=socket.AF_BRIDGE, flags=_NTF_SELF, state=_NUD_PERMANENT)
    for ip, mac in arp_have.items():
        if arp_want.get(ip) != mac:
            await ipr.neigh("del", ifindex=index, dst=ip, lladdr=mac)
    for mac, dst in fdb_want.items():
        if fdb_have.get(mac) != dst:
            await ipr.neigh("replace", ifindex=index, lladdr=mac, dst=dst,
                            family=socket.AF_BRIDGE, flags=_NTF_SELF, state=_NUD_PERMANENT)
    for ip, mac in arp_want.items():
        if arp_have.get(ip) != mac:
            await ipr.neigh("replace", ifindex=index, dst=ip, lladdr=mac,
                            state=_NUD_PERMANENT)


async def remove_device(ipr: Any) -> None:
    found = await ipr.link_lookup(ifname=DEVICE)
    if found:
        await ipr.link("del", index=found[0])
