"""API server throughput and latency, beside baselines measured in the same run.

Starts a real `navio server` (no agent) and drives it over HTTPS with the admin certificate at
concurrency 64: creates, gets, lists of 1 / 100 / 5000 objects, and one write fanned out to
100 watchers. Baselines: the raw durable SQLite insert rate with one transaction per insert
(WAL, synchronous=FULL), and a bare aiohttp HTTPS handler returning the same JSON a get returns.

    python3 benchmarks/api.py [--creates 5000] [--gets 10000] [--datastore sqlite|etcd]

With `--datastore etcd` the server runs on a one-member etcd on loopback (Debian's etcd,
started in a temp dir), and the baseline beside it is etcd's own write rate measured in the
same run by a raw client loop: Puts over the same gRPC stubs, one at a time and 64 at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from navio.apiserver.app import tls_context  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))

CONCURRENCY = 64


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] * 1000


def sqlite_baseline(n: int, directory: Path) -> float:
    db = sqlite3.connect(directory / "baseline.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE kv (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, value BLOB)")
    value = b"x" * 600
    t0 = time.perf_counter()
    for i in range(n):
        db.execute("BEGIN")
        db.execute("INSERT INTO kv (name, value) VALUES (?, ?)", (f"/k/{i}", value))
        db.execute("COMMIT")
    dt = time.perf_counter() - t0
    db.close()
    return n / dt


async def run_load(session: aiohttp.ClientSession, make_request, n: int
                   ) -> tuple[float, list[float]]:
    latencies: list[float] = []
    it = iter(range(n))

    async def worker() -> None:
        for i in it:
            t = time.perf_counter()
            await make_request(session, i)
            latencies.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return n / (time.perf_counter() - t0), latencies


def client_ssl(pki: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return ctx


async def bare_aiohttp_baseline(pki: Path, body: bytes, n: int) -> tuple[float, list[float]]:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ctx = tls_context(pki / "apiserver.crt", pki / "apiserver.key", pki / "ca.crt")
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"https://127.0.0.1:{port}/x"
    conn = aiohttp.TCPConnector(ssl=client_ssl(pki), limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=conn) as s:
        async def get(session: aiohttp.ClientSession, i: int) -> None:
            async with session.get(url) as r:
                await r.read()
        await run_load(s, get, 500)
        result = await run_load(s, get, n)
    await runner.cleanup()
    return result


async def etcd_baseline(datastore: str, n: int) -> tuple[float, float]:
    """etcd's raw write rate: (Puts/s one at a time, Puts/s with 64 in flight)."""
    from navio.storage.etcd_client import EtcdConnection, parse_datastore, rpc
    conn = EtcdConnection(parse_datastore(datastore))
    value = b"x" * 600
    try:
        async def put(i: int) -> None:
            await conn.kv.Put(rpc.PutRequest(key=f"/baseline/{i}".encode(), value=value),
                              timeout=30)
        serial = max(200, n // 5)
        t0 = time.perf_counter()
        for i in range(serial):
            await put(i)
        serial_rate = serial / (time.perf_counter() - t0)
        it = iter(range(n))

        async def worker() -> None:
            for i in it:
                await put(serial + i)
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return serial_rate, n / (time.perf_counter() - t0)
    finally:
        await conn.close()


def start_server(data: Path, datastore: tuple[str, ...] = ()
                 ) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "navio.cli.main", "server", "--data-dir",
                             str(data), "--port", "0", "--no-agent", *datastore], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "listening on" in line:
            url = line.rsplit(" ", 1)[1].strip()
            proc.stdout.readline()
            return proc, url
    proc.kill()
    raise SystemExit("navio server did not start")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench(url: str, pki: Path, args: argparse.Namespace, pid: int) -> dict[str, object]:
    out: dict[str, object] = {}
    conn = aiohttp.TCPConnector(ssl=client_ssl(pki), limit=CONCURRENCY)
    base = f"{url}/api/v1/namespaces/default/configmaps"
    async with aiohttp.ClientSession(connector=conn) as s:
        async def create(session: aiohttp.ClientSession, i: int, prefix: str = "c") -> None:
            body = json.dumps({"metadata": {"name": f"{prefix}-{i}", "labels": {"b": "1"}},
                               "data": {"key": "value " * 20}})
            async with session.post(base, data=body,
                                    headers={"Content-Type": "application/json"}) as r:
                assert r.status == 201, await r.text()
                await r.read()

        await run_load(s, lambda ss, i: create(ss, i, "warm"), 300)
        cpu0 = process_cpu(pid)
        rate, lat = await run_load(s, create, args.creates)
        out["_create_cpu_ms"] = (process_cpu(pid) - cpu0) * 1000 / args.creates
        out["creates"] = (rate, pct(lat, 0.5), pct(lat, 0.99))

        async def get(session: aiohttp.ClientSession, i: int) -> None:
            async with session.get(f"{base}/c-{i % args.creates}") as r:
                assert r.status == 200
                await r.read()
        rate, lat = await run_load(s, get, args.gets)
        out["gets"] = (rate, pct(lat, 0.5), pct(lat, 0.99))
        async with s.get(f"{base}/c-0") as r:
            out["_get_body"] = await r.read()

        for size in (1, 100, 5000):
            ns = f"list-{size}"
            async with s.post(f"{url}/api/v1/namespaces", data=json.dumps(
                    {"metadata": {"name": ns}}), headers={"Content-Type": "application/json"}):
                pass
            nsbase = f"{url}/api/v1/namespaces/{ns}/configmaps"

            async def fill(session: aiohttp.ClientSession, i: int) -> None:
                body = json.dumps({"metadata": {"name": f"o-{i}"}, "data": {"k": "v" * 100}})
                async with session.post(nsbase, data=body,
                                        headers={"Content-Type": "application/json"}) as r:
                    await r.read()
            await run_load(s, fill, size)
            reps = max(20, min(2000, 200_000 // size))

            async def lst(session: aiohttp.ClientSession, i: int) -> None:
                async with session.get(nsbase) as r:
                    await r.read()
            rate, lat = await run_load(s, lst, reps)
            out[f"list {size}"] = (rate, pct(lat, 0.5), pct(lat, 0.99))

        # Watch fan-out: 100 watchers, then writes; latency from write ack to delivery.
        wbase = f"{url}/api/v1/namespaces/default/configmaps"
        async with s.get(wbase + "?limit=1") as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
        deliveries: list[float] = []
        writes = 50
        sent_at: dict[str, float] = {}

        watch_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=client_ssl(pki), limit=0))

        async def watcher() -> None:
            got = 0
            async with watch_session.get(f"{wbase}?watch=true&resourceVersion={rv}&"
                             f"labelSelector=fan%3Dout") as r:
                async for line in r.content:
                    ev = json.loads(line)
                    name = ev["object"]["metadata"]["name"]
                    deliveries.append(time.perf_counter() - sent_at[name])
                    got += 1
                    if got == writes:
                        return
        watchers = [asyncio.create_task(watcher()) for _ in range(100)]
        await asyncio.sleep(1.0)  # let all watches be established before writing
        t0 = time.perf_counter()
        for i in range(writes):
            name = f"fan-{i}"
            sent_at[name] = time.perf_counter()
            async with s.post(wbase, data=json.dumps(
                    {"metadata": {"name": name, "labels": {"fan": "out"}}}),
                    headers={"Content-Type": "application/json"}) as r:
                await r.read()
        await asyncio.wait_for(asyncio.gather(*watchers), 60)
        elapsed = time.perf_counter() - t0
        await watch_session.close()
        out["watch fan-out"] = (len(deliveries) / elapsed, pct(deliveries, 0.5),
                                pct(deliveries, 0.99))
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--creates", type=int, default=5000)
    p.add_argument("--gets", type=int, default=10000)
    p.add_argument("--datastore", choices=("sqlite", "etcd"), default="sqlite")
    args = p.parse_args()
    etcd = None
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        try:
            if args.datastore == "etcd":
                from etcdlab import EtcdCluster
                etcd = EtcdCluster(tmpd / "etcd").start()
                etcd_rates = asyncio.run(etcd_baseline(etcd.datastore, 2000))
                proc, url = start_server(tmpd / "data", ("--datastore", etcd.datastore))
            else:
                sqlite_rate = sqlite_baseline(2000, tmpd)
                proc, url = start_server(tmpd / "data")
            pki = tmpd / "data" / "pki"
            try:
                load_before = os.getloadavg()[0]
                results = asyncio.run(bench(url, pki, args, proc.pid))
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(20)
        finally:
            if etcd is not None:
                etcd.stop()
        body = results.pop("_get_body")
        create_cpu = results.pop("_create_cpu_ms")
        assert isinstance(body, bytes)
        bare_rate, bare_lat = asyncio.run(bare_aiohttp_baseline(pki, body, args.gets))
    print(f"datastore: {args.datastore}")
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, "
          f"concurrency {CONCURRENCY}, load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after")
    print(f"{'operation':<16}{'ops/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, (rate, p50, p99) in results.items():  # type: ignore[misc]
        print(f"{name:<16}{rate:>10,.0f}{p50:>10.1f}{p99:>10.1f}")
    print(f"{'bare aiohttp get':<16}{bare_rate:>10,.0f}{pct(bare_lat, 0.5):>10.1f}"
          f"{pct(bare_lat, 0.99):>10.1f}")
    if etcd is not None:
        print(f"{'etcd put 1':<16}{etcd_rates[0]:>10,.0f}   (raw client loop, one at a time)")
        print(f"{'etcd put 64':<16}{etcd_rates[1]:>10,.0f}   (raw client loop, 64 in flight)")
        sqlite_rate = etcd_rates[1]
    else:
        print(f"{'sqlite insert':<16}{sqlite_rate:>10,.0f}   (durable, one transaction per "
              "insert)")
    print(f"server CPU per create: {create_cpu:.3f} ms (all threads; steadier than rates "
          f"on a loaded machine)")
    creates = results["creates"][0]  # type: ignore[index]
    gets = results["gets"][0]  # type: ignore[index]
    base_name = "etcd-put-64" if etcd is not None else "sqlite"
    print(f"ratios: creates/{base_name} {creates / sqlite_rate:.2f} (aim >= 1.0), "
          f"gets/bare-aiohttp {gets / bare_rate:.2f} (aim >= 0.5), "
          f"create p99 {results['creates'][2]:.1f} ms (aim < 50)")  # type: ignore[index]


if __name__ == "__main__":
    main()
