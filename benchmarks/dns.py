"""Queries per second of navio's DNS server against a bare asyncio UDP echo, in one run.

navio-cached: `DnsServer` answering from its record set (1,000 ClusterIP services and 100
  headless ones with 3 endpoints each); the names cycle, so after warm-up every answer comes
  from the rendered-answer cache (a dict lookup and the ID spliced in).
navio-uncached: the same with the answer cache off: every query is parsed, looked up and
  rendered by dnspython.
baseline: an asyncio UDP server that sends back one prebuilt response with the query's ID,
  i.e. what the event loop and sockets alone allow.
Each server runs alone in a child process (uvloop when installed, as `navio` runs); one
client process keeps a window of queries in flight over 127.0.0.1 and times a fixed count
after warm-up. Names are drawn with a fixed seed.

    python3 benchmarks/dns.py [--queries N] [--window W]

Prints e.g. `queries/s  navio-cached 40,000  navio-uncached 9,000  udp-echo-baseline 60,000
ratio 0.67 / 0.15`.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import socket
import sys
import time
from pathlib import Path
from typing import Any

# This file is named dns.py, and Python puts a script's own directory first on the path,
# where it would shadow dnspython's `dns` package: take that directory off the path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import dns.message  # noqa: E402

from navio.dns.config import DnsConfig  # noqa: E402
from navio.dns.forward import Forwarder  # noqa: E402
from navio.dns.server import DnsServer, record_set_for  # noqa: E402

SERVICES, HEADLESS = 1000, 100
WARMUP = 3000
TIMEOUT = 0.5          # a reply lost for this long is sent again


def _records(config: DnsConfig) -> Any:
    records = record_set_for(config)
    for i in range(SERVICES):
        records.upsert_service({"metadata": {"namespace": f"ns{i % 20}", "name": f"svc{i}"},
                                "spec": {"clusterIP": f"10.43.{i // 250}.{i % 250 + 1}",
                                         "ports": [{"name": "http", "port": 80}]}})
    for i in range(HEADLESS):
        records.upsert_service({"metadata": {"namespace": "db", "name": f"h{i}"},
                                "spec": {"clusterIP": "None"}})
        records.upsert_endpoint_slice({
            "metadata": {"namespace": "db", "name": f"h{i}-x",
                         "labels": {"kubernetes.io/service-name": f"h{i}"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [f"10.42.{i}.{j}"], "hostname": f"h{i}-{j}"}
                          for j in range(1, 4)],
            "ports": [{"name": "pg", "port": 5432}]})
    records.synced = True
    return records


def _queries(n: int) -> list[bytes]:
    rnd = random.Random(42)
    names = [(f"svc{i}.ns{i % 20}.svc.cluster.local", "A") for i in range(SERVICES)]
    names += [(f"h{i}.db.svc.cluster.local", "A") for i in range(HEADLESS)]
    names += [(f"_http._tcp.svc{i}.ns{i % 20}.svc.cluster.local", "SRV") for i in range(100)]
    out = []
    for _ in range(n):
        name, rdtype = rnd.choice(names)
        q = dns.message.make_query(name, rdtype)
        q.id = rnd.randrange(65536)
        out.append(q.to_wire())
    return out


async def _serve_navio(cache: bool, ready: Any) -> None:
    config = DnsConfig(kubeconfig=Path("unused"), bind_addresses=("127.0.0.1",), port=0,
                       upstreams=("127.0.0.1:9",), cache_size=4096 if cache else 0)
    server = DnsServer(config, _records(config), Forwarder([]))
    await server.start()
    ready.send(server.addresses[0][1])
    await asyncio.Event().wait()


async def _serve_echo(ready: Any) -> None:
    response = dns.message.make_response(dns.message.make_query("svc1.ns1.svc.cluster.local",
                                                                "A")).to_wire()

    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: Any) -> None:
            self.transport.sendto(data[:2] + response[2:], addr)

    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        Echo, local_addr=("127.0.0.1", 0))
    ready.send(transport.get_extra_info("sockname")[1])
    await asyncio.Event().wait()


def _server_main(kind: str, ready: Any) -> None:
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    coro = _serve_echo(ready) if kind == "echo" else _serve_navio(kind == "cached", ready)
    asyncio.run(coro)


def _drive(port: int, queries: list[bytes], window: int) -> float:
    """Queries/s over `queries` (after WARMUP of them) with `window` in flight."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(TIMEOUT)
    sent = received = 0
    started = 0.0
    try:
        while sent < min(window, len(queries)):
            sock.send(queries[sent])
            sent += 1
        while received < len(queries):
            try:
                sock.recv(4096)
            except TimeoutError:
                sock.send(queries[received])      # lost: put one back in flight
                continue
            received += 1
            if received == WARMUP:
                started = time.perf_counter()
            if sent < len(queries):
                sock.send(queries[sent])
                sent += 1
        return (received - WARMUP) / (time.perf_counter() - started)
    finally:
        sock.close()


def measure(kind: str, queries: list[bytes], window: int) -> float:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_server_main, args=(kind, child), daemon=True)
    proc.start()
    try:
        if not parent.poll(30):
            raise RuntimeError(f"{kind} server did not start within 30 s")
        return _drive(parent.recv(), queries, window)
    finally:
        proc.terminate()
        proc.join(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queries", type=int, default=60000)
    ap.add_argument("--window", type=int, default=32)
    args = ap.parse_args()
    queries = _queries(WARMUP + args.queries)
    base = measure("echo", queries, args.window)
    cached = measure("cached", queries, args.window)
    uncached = measure("uncached", queries, args.window)
    print(f"queries/s  navio-cached {cached:,.0f}  navio-uncached {uncached:,.0f}  "
          f"udp-echo-baseline {base:,.0f}  ratio {cached / base:.2f} / {uncached / base:.2f}")


if __name__ == "__main__":
    main()
