"""The proxier's loop: when it syncs, what it passes on, how it recovers (issue 8)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from proxy_netlab import PODS, SERVER_PORT
from proxy_objects import endpoint, endpoint_slice, service

from navio.client.resources import object_key
from navio.proxy.config import ProxyConfig, select_mode
from navio.proxy.nftables import RuleOptions
from navio.proxy.nftables_backend import NftablesBackend, NftRunner
from navio.proxy.proxier import Proxier, format_rules, read_rules

Obj = dict[str, Any]
NODE = "n1"


async def wait_until(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.005)
    except TimeoutError:
        raise AssertionError(f"gave up after {timeout}s waiting for {what}") from None


class FakeCache:
    """An informer's cache and handlers without a server."""

    def __init__(self, objs: Iterable[Obj] = (), synced: bool = True) -> None:
        self.items = {object_key(o): o for o in objs}
        self.handlers: list[tuple[Any, Any, Any]] = []
        self.index_fns: dict[str, Callable[[Obj], Iterable[str]]] = {}
        self.synced = asyncio.Event()
        if synced:
            self.synced.set()
        self.started = self.stopped = False

    def get(self, key: str) -> Obj | None:
        return self.items.get(key)

    def list(self) -> list[Obj]:
        return list(self.items.values())

    def add_index(self, name: str, fn: Callable[[Obj], Iterable[str]]) -> None:
        self.index_fns[name] = fn

    def by_index(self, name: str, value: str) -> list[Obj]:
        return [o for o in self.items.values() if value in self.index_fns[name](o)]

    def add_handler(self, on_add: Any = None, on_update: Any = None,
                    on_delete: Any = None) -> None:
        self.handlers.append((on_add, on_update, on_delete))

    def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def wait_synced(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self.synced.wait(), timeout)
            return True
        except TimeoutError:
            return False

    def put(self, obj: Obj) -> None:
        old = self.items.get(object_key(obj))
        self.items[object_key(obj)] = obj
        for add, update, _ in self.handlers:
            add(obj) if old is None else update(old, obj)

    def remove(self, key: str) -> None:
        obj = self.items.pop(key)
        for _, _, delete in self.handlers:
            delete(obj)


class RecordingBackend:
    name = "recording"

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, Any], set[str], bool]] = []
        self.fail = 0
        self.is_healthy = True
        self.cleaned = False

    async def sync(self, services: Any, changed: Any, *, full: bool) -> str:
        self.calls.append((dict(services), set(changed), full))
        if self.fail:
            self.fail -= 1
            raise RuntimeError("kernel said no")
        return "full" if full else "partial"

    async def healthy(self) -> bool:
        return self.is_healthy

    async def cleanup(self) -> None:
        self.cleaned = True

    def describe(self) -> list[str]:
        return ["recording backend"]


def config(**kw: Any) -> ProxyConfig:
    return ProxyConfig(kubeconfig=Path("/nonexistent"), node_name=NODE, **kw)


def world(n: int = 3) -> tuple[FakeCache, FakeCache]:
    svcs = FakeCache(service(f"s{i}", f"10.43.0.{i + 1}") for i in range(n))
    slices = FakeCache(endpoint_slice(f"s{i}", [endpoint(f"10.42.0.{i + 1}")]) for i in range(n))
    return svcs, slices



async def test_nothing_is_programmed_until_both_caches_have_listed(running):
    svcs, slices = FakeCache(synced=False), FakeCache(synced=False)
    backend = RecordingBackend()
    p = Proxier(config(), backend, svcs, slices)
    running(p)
    svcs.synced.set()
    await asyncio.sleep(0.1)          # give a wrongly eager proxier the chance to sync
    assert backend.calls == []
    slices.synced.set()
    await wait_until(lambda: p.generation == 1, timeout=1, what="the first sync")
    assert backend.calls[0][2] is True and svcs.started and slices.started


async def test_later_syncs_pass_only_the_services_that_changed(running):
    svcs, slices = world(3)
    backend = RecordingBackend()
    p = Proxier(config(), backend, svcs, slices)
    running(p)
    await wait_until(lambda: p.generation == 1, timeout=1, what="the first sync")
    assert sorted(backend.calls[0][0]) == ["ns1/s0", "ns1/s1", "ns1/s2"]
    slices.put(endpoint_slice("s1", [endpoint("10.42.0.9")], rv="2"))
    await wait_until(lambda: p.generation == 2, timeout=1, what="the second sync")
    services, changed, full = backend.calls[-1]
    assert changed == {"ns1/s1"} and not full
    assert str(services["ns1/s1"][0].cluster_endpoints[0]) == "10.42.0.9:8080"


async def test_a_burst_of_changes_is_coalesced_into_one_sync(running):
    svcs, slices = world(10)
    backend = RecordingBackend()
    p = Proxier(config(), backend, svcs, slices)
    running(p)
    await wait_until(lambda: p.generation == 1, timeout=1, what="the first sync")
    for i in range(10):
        slices.put(endpoint_slice(f"s{i}", [endpoint("10.42.1.1")], rv="2"))
    await wait_until(lambda: p.generation == 2, timeout=1, what="the coalesced sync")
    await asyncio.sleep(0.2)          # a second sync would have happened by now
    assert len(backend.calls) == 2 and len(backend.calls[1][1]) == 10


async def test_events_that_change_nothing_do_not_reach_the_backend():
    svcs, slices = world(2)
    backend = RecordingBackend()
    p = Proxier(config(), backend, svcs, slices)
    assert await p.sync_once()
    slices.put(endpoint_slice("s0", [endpoint("10.42.0.1")], rv="7"))   # same content
    svcs.put(service("unrelated", "None"))                            # headless
    assert await p.sync_once()
    assert len(backend.calls) == 1


async def test_deleting_a_service_or_moving_a_slice_marks_every_service_involved():
    svcs, slices = world(2)
    backend = RecordingBackend()
    p = Proxier(config(), backend, svcs, slices)
    await p.sync_once()
    moved = endpoint_slice("s1", [endpoint("10.42.0.1")], name="s0-abcde", rv="2")
    slices.put(moved)                                   # the slice of s0 now claims s1
    await p.sync_once()
    services, changed, _ = backend.calls[-1]
    assert changed == {"ns1/s0", "ns1/s1"}
    assert services["ns1/s0"][0].cluster_endpoints == ()
    assert len(services["ns1/s1"][0].cluster_endpoints) == 2
    svcs.remove("ns1/s1")
    await p.sync_once()
    assert backend.calls[-1][1] == {"ns1/s1"} and "ns1/s1" not in backend.calls[-1][0]


async def test_a_failed_sync_is_retried_as_a_full_sync(running):
    svcs, slices = world(2)
    backend = RecordingBackend()
    p = Proxier(config(), backend, svcs, slices)
    p.retry_min = 0.05
    running(p)
    await wait_until(lambda: p.generation == 1, timeout=1, what="the first sync")
    backend.fail = 1
    slices.put(endpoint_slice("s0", [endpoint("10.42.0.7")], rv="2"))
    await wait_until(lambda: p.generation == 2, timeout=2, what="the retried sync")
    assert [c[2] for c in backend.calls] == [True, False, True]


async def test_missing_state_is_noticed_and_rebuilt(running):
    svcs, slices = world(1)
    backend = RecordingBackend()
    p = Proxier(config(sync_period=0.05), backend, svcs, slices)
    running(p)
    await wait_until(lambda: p.generation == 1, timeout=1, what="the first sync")
    backend.is_healthy = False
    await wait_until(lambda: p.generation == 2, timeout=1, what="a full resync")
    assert backend.calls[-1][2] is True


async def test_shutdown_stops_watching_and_removes_state(running):
    svcs, slices = world(1)
    backend = RecordingBackend()
    p = Proxier(config(), backend, svcs, slices)
    task = running(p)
    await wait_until(lambda: p.generation == 1, timeout=1, what="the first sync")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert backend.cleaned and svcs.stopped and slices.stopped


async def test_the_summary_lists_every_port_and_is_written_to_the_state_file(tmp_path):
    svcs = FakeCache([service("web", type_="NodePort", sessionAffinity="ClientIP",
                              externalTrafficPolicy="Local",
                              ports=[{"name": "http", "port": 80, "nodePort": 30080}])])
    slices = FakeCache([endpoint_slice("web", [endpoint("10.42.0.1", node=NODE),
                                               endpoint("10.42.1.1")])])
    state = tmp_path / "proxy-rules.txt"
    p = Proxier(config(state_file=state), RecordingBackend(), svcs, slices)
    await p.sync_once()
    text = read_rules(state)
    assert text == p.summary()
    assert "mode recording, node n1, generation 1" in text and "recording backend" in text
    row = next(line for line in text.splitlines() if line.startswith("ns1/web:http"))
    assert "10.43.0.10:80/TCP" in row and "30080" in row and "ClientIP 10800s" in row
    assert "Cluster/Local" in row
    assert row.endswith("10.42.0.1:8080*, 10.42.1.1:8080 | external: 10.42.0.1:8080*")
    assert format_rules({}).startswith("SERVICE-PORT")


@pytest.mark.parametrize("kw, message", [
    ({"mode": "ipvs"}, "mode must be one of"),
    ({"cluster_cidr": "fd00::/64"}, "IPv4"),
    ({"min_sync_period": 2.0}, "min_sync_period"),
    ({"mode": "userspace", "netns": "x"}, "userspace mode cannot"),
    ({"netns": "a b"}, "netns"),
], ids=["unknown modes are refused", "IPv6 CIDRs are refused",
        "a min sync period over a second is refused",
        "userspace mode cannot program another namespace", "netns names have no spaces"])
def test_config_is_checked_when_built(kw, message):
    with pytest.raises(ValueError, match=message):
        config(**kw)


def test_auto_mode_picks_nftables_as_root_with_nft(root):
    assert select_mode(config()) == "nftables"
    assert select_mode(config(mode="userspace")) == "userspace"


async def test_an_endpointslice_change_reaches_the_kernel_within_a_second(lab, running):
    ips = list(PODS.values())
    svcs = FakeCache([service("web", "10.43.0.10")])
    ready = [endpoint(ip, node=NODE) for ip in ips]
    slices = FakeCache([endpoint_slice("web", ready, ports=[{"name": "http",
                                                             "port": SERVER_PORT}])])
    backend = NftablesBackend(RuleOptions(cluster_cidr="10.244.0.0/16"), NftRunner(lab.node))
    p = Proxier(config(netns=lab.node), backend, svcs, slices)
    task = running(p)
    await wait_until(lambda: p.generation == 1, timeout=5, what="the first sync")
    answers = await asyncio.to_thread(lab.connect, "client", "10.43.0.10", 80, 40)
    assert {a.split()[0] for a in answers} == set(PODS), answers
    gone = endpoint(ips[2], node=NODE, ready=False, terminating=True)
    started = time.monotonic()
    slices.put(endpoint_slice("web", ready[:2] + [gone], ports=[{"name": "http",
                                                                 "port": SERVER_PORT}], rv="2"))
    await wait_until(lambda: p.generation == 2, timeout=1.0, what="the rules to change")
    assert time.monotonic() - started < 1.0 and p.last_sync.kind == "partial"
    answers = await asyncio.to_thread(lab.connect, "client", "10.43.0.10", 80, 30)
    assert Counter(a.split()[0] for a in answers).keys() == {"pod1", "pod2"}
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert lab.nft("list", "tables").stdout == ""
