"""Builders of Service/EndpointSlice/Pod dicts and a fake upstream DNS server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, Iterable, Sequence

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

_rv = itertools.count(1)


def service(name: str, ns: str = "default", *, ip: str | None = "10.43.0.20",
            ips: Sequence[str] | None = None, ports: Iterable[tuple[str, int, str]] = (
                ("http", 80, "TCP"),), type_: str = "ClusterIP", external: str | None = None,
            publish_not_ready: bool = False, annotations: dict[str, str] | None = None
            ) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": type_, "ports": [
        {"name": n, "port": p, "protocol": proto} if n else {"port": p, "protocol": proto}
        for n, p, proto in ports]}
    if type_ == "ExternalName":
        spec = {"type": type_, "externalName": external}
    else:
        cluster_ips = list(ips) if ips is not None else ([ip] if ip else [])
        if cluster_ips:
            spec["clusterIP"] = cluster_ips[0]
            spec["clusterIPs"] = cluster_ips
    if publish_not_ready:
        spec["publishNotReadyAddresses"] = True
    meta: dict[str, Any] = {"name": name, "namespace": ns, "resourceVersion": str(next(_rv))}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


def headless(name: str, ns: str = "default", **kw: Any) -> dict[str, Any]:
    return service(name, ns, ip="None", **kw)


def endpoint(ip: str | Sequence[str], hostname: str | None = None, ready: bool | None = True
             ) -> dict[str, Any]:
    ep: dict[str, Any] = {"addresses": [ip] if isinstance(ip, str) else list(ip)}
    if ready is not None:
        ep["conditions"] = {"ready": ready}
    if hostname:
        ep["hostname"] = hostname
    return ep


def endpoint_slice(name: str, svc: str, endpoints: Iterable[dict[str, Any]], ns: str = "default",
                   *, ports: Iterable[tuple[str, int, str]] = (("http", 8080, "TCP"),),
                   address_type: str = "IPv4") -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": ns, "resourceVersion": str(next(_rv)),
                     "labels": {"kubernetes.io/service-name": svc}},
        "addressType": address_type,
        "endpoints": list(endpoints),
        "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports],
    }


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def pod(name: str, ns: str, ip: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "status": {"podIP": ip, "podIPs": [{"ip": ip}]}}


class FakeUpstream:
    """A DNS server on 127.0.0.1 (UDP and TCP, one port) answering from `zone`, a dict of
    (name, type) → list of rdata texts. `silent` drops every query. It records every
    question it is asked in `asked`."""

    def __init__(self, zone: dict[tuple[str, str], list[str]] | None = None, *,
                 silent: bool = False) -> None:
        self.zone = {(n.lower().rstrip(".") + ".", t): v for (n, t), v in (zone or {}).items()}
        self.silent = silent
        self.asked: list[tuple[str, str, str]] = []
        self.port = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    def answer(self, wire: bytes, transport: str) -> bytes | None:
        query = dns.message.from_wire(wire)
        q = query.question[0]
        self.asked.append((q.name.to_text().lower(), dns.rdatatype.to_text(q.rdtype), transport))
        if self.silent:
            return None
        response = dns.message.make_response(query, recursion_available=True)
        texts = self.zone.get((q.name.to_text().lower(), dns.rdatatype.to_text(q.rdtype)))
        if texts is None and not any(n == q.name.to_text().lower() for n, _ in self.zone):
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif texts:
            response.answer.append(dns.rrset.from_text_list(q.name, 60, "IN", q.rdtype, texts))
        max_size = 65535 if transport == "tcp" else (query.payload if query.edns >= 0 else 512)
        return response.to_wire(max_size=max_size, prefer_truncation=True)

    async def start(self) -> "FakeUpstream":
        loop = asyncio.get_running_loop()
        outer = self

        class _Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport: Any) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                out = outer.answer(data, "udp")
                if out is not None:
                    self.transport.sendto(out, addr)

        async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                size = int.from_bytes(await reader.readexactly(2), "big")
                out = outer.answer(await reader.readexactly(size), "tcp")
                if out is not None:
                    writer.write(len(out).to_bytes(2, "big") + out)
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        for _ in range(20):
            self._udp, _ = await loop.create_datagram_endpoint(
                _Udp, local_addr=("127.0.0.1", 0))
            self.port = self._udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(tcp, "127.0.0.1", self.port)
                return self
            except OSError:
                self._udp.close()
        raise AssertionError("no free port for the fake upstream")

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
