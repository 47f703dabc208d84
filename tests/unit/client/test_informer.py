"""The informer's list/watch/re-list protocol and its cache, against a scripted fake client."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import pytest

from client_fakes import FakeListWatchClient, obj
from navio.api import errors
from navio.client.informer import NAMESPACE_INDEX, Informer, _Backoff, namespace_index
from navio.client.resources import CONFIGMAPS
from navio.client.rest import TransportError
from navio.client.watch import WatchEvent, WatchStreamError


async def wait_until(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.005)
    except TimeoutError:
        raise AssertionError(f"gave up after {timeout}s waiting for {what}") from None


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def add(self, o: dict[str, Any]) -> None:
        self.calls.append(("add", o["metadata"]["name"]))

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.calls.append(("update", new["metadata"]["name"], old["metadata"]["resourceVersion"],
                           new["metadata"]["resourceVersion"]))

    def delete(self, o: dict[str, Any]) -> None:
        self.calls.append(("delete", o["metadata"]["name"]))


@pytest.fixture
async def setup():
    client = FakeListWatchClient()
    informers: list[Informer] = []

    def make(**kw: Any) -> tuple[Informer, Recorder]:
        inf = Informer(client, CONFIGMAPS, **kw)  # type: ignore[arg-type]
        inf._backoff = _Backoff(initial=0.001, cap=0.002, jitter=0.0)
        rec = Recorder()
        inf.add_handler(rec.add, rec.update, rec.delete)
        informers.append(inf)
        return inf, rec

    yield client, make
    for inf in informers:
        await inf.stop()


async def test_initial_list_is_paged_and_delivered_before_synced(setup):
    client, make = setup
    for i, name in enumerate("abcde"):
        client.put(obj(name, 10 + i))
    inf, rec = make(page_size=2)
    inf.start()
    assert await inf.wait_synced(5.0)
    assert [c["limit"] for c in client.list_calls] == [2, 2, 2]
    assert [c["continue"] for c in client.list_calls] == [None, "2", "4"]
    assert rec.calls == [("add", n) for n in "abcde"]
    assert sorted(inf.keys()) == [f"default/{n}" for n in "abcde"]
    assert inf.get("default/a")["kind"] == "ConfigMap"        # list items get their kind
    await wait_until(lambda: client.streams, "the watch")
    params = client.streams[0].params
    assert params["resource_version"] == "14" and params["allow_bookmarks"] is True
    assert 300 <= params["timeout_seconds"] <= 600


async def test_watch_events_update_the_cache_before_handlers_run(setup):
    client, make = setup
    client.put(obj("a", 5))
    inf, rec = make()
    seen_in_cache: list[Any] = []
    inf.add_handler(on_update=lambda old, new: seen_in_cache.append(
        inf.get("default/a")["metadata"]["resourceVersion"]))
    inf.start()
    await wait_until(lambda: client.streams, "the watch")
    s = client.streams[0]
    s.push(WatchEvent("ADDED", obj("b", 6)))
    s.push(WatchEvent("MODIFIED", obj("a", 7, data={"k": "v"})))
    s.push(WatchEvent("DELETED", obj("b", 8)))
    s.push(WatchEvent("BOOKMARK", {"kind": "ConfigMap", "metadata": {"resourceVersion": "20"}}))
    await wait_until(lambda: inf.last_resource_version == "20", "the bookmark")
    assert rec.calls == [("add", "a"), ("add", "b"), ("update", "a", "5", "7"), ("delete", "b")]
    assert seen_in_cache == ["7"]
    assert inf.keys() == ["default/a"]


async def test_a_410_mid_stream_re_lists_and_delivers_only_the_differences(setup):
    client, make = setup
    for name, rv in (("keep", 1), ("change", 2), ("vanish", 3)):
        client.put(obj(name, rv))
    inf, rec = make()
    inf.start()
    await wait_until(lambda: client.streams, "the watch")
    # While the watch is behind, the world changes.
    del client.state["default/vanish"]
    client.put(obj("change", 9))
    client.put(obj("new", 10))
    rec.calls.clear()
    client.streams[0].push(errors.Expired("too old resource version: 3 (5)"))
    await wait_until(lambda: len(client.streams) == 2, "the watch after the re-list")
    assert sorted(rec.calls) == [("add", "new"), ("delete", "vanish"),
                                 ("update", "change", "2", "9")]
    assert sorted(inf.keys()) == ["default/change", "default/keep", "default/new"]
    assert client.streams[1].params["resource_version"] == "10"
    assert len(client.list_calls) == 2


async def test_a_410_when_the_watch_starts_re_lists(setup):
    client, make = setup
    client.put(obj("a", 1))
    client.watch_errors.append(errors.Expired("too old"))
    inf, _ = make()
    inf.start()
    await wait_until(lambda: client.streams, "a watch after the re-list")
    assert len(client.list_calls) == 2


@pytest.mark.parametrize("error", [
    TransportError("connection refused"), WatchStreamError("connection lost"),
    errors.TooManyRequests("slow down"),
], ids=["unreachable", "cut off", "throttled"])
async def test_connection_trouble_retries_the_watch_from_the_last_version_without_a_re_list(
        setup, error):
    client, make = setup
    client.put(obj("a", 4))
    client.watch_errors.extend([error, error])
    inf, _ = make()
    inf.start()
    await wait_until(lambda: client.streams, "the watch to be re-established")
    assert len(client.list_calls) == 1
    assert [c["resource_version"] for c in client.watch_calls] == ["4", "4", "4"]


async def test_a_watch_that_ends_normally_restarts_from_the_last_version(setup):
    client, make = setup
    client.put(obj("a", 4))
    inf, _ = make()
    inf.start()
    await wait_until(lambda: client.streams, "the watch")
    client.streams[0].push(WatchEvent("MODIFIED", obj("a", 6)))
    client.streams[0].push(None)
    await wait_until(lambda: len(client.streams) == 2, "the second watch")
    assert client.streams[1].params["resource_version"] == "6"
    assert len(client.list_calls) == 1


async def test_a_failing_list_is_retried_and_sync_waits_for_it(setup):
    client, make = setup
    client.put(obj("a", 1))
    client.list_errors.extend([TransportError("down"), errors.InternalError("boom")])
    inf, rec = make()
    inf.start()
    assert await inf.wait_synced(5.0)
    assert rec.calls == [("add", "a")]
    assert len(client.list_calls) == 3


async def test_wait_synced_gives_up_at_its_deadline(setup):
    client, make = setup
    client.list_errors.extend([TransportError("down")] * 1000)
    inf, _ = make()
    inf._backoff = _Backoff(initial=0.05, cap=0.05, jitter=0.0)
    inf.start()
    assert not await inf.wait_synced(0.1)
    assert not inf.has_synced()


async def test_an_expired_continue_token_falls_back_to_a_full_list(setup):
    client, make = setup
    for i, name in enumerate("abc"):
        client.put(obj(name, i + 1))
    original = client.list

    async def expiring(*a: Any, **kw: Any) -> dict[str, Any]:
        if kw.get("continue_"):
            client.list_calls.append({"limit": kw.get("limit"), "continue": kw["continue_"]})
            raise errors.Expired("continue token too old")
        return await original(*a, **kw)

    client.list = expiring  # type: ignore[method-assign]
    inf, rec = make(page_size=2)
    inf.start()
    assert await inf.wait_synced(5.0)
    assert [c["limit"] for c in client.list_calls] == [2, 2, None]
    assert rec.calls == [("add", n) for n in "abc"]


async def test_a_failing_handler_neither_stops_the_others_nor_the_informer(setup):
    client, make = setup
    client.put(obj("a", 1))
    inf, rec = make()

    def broken(o: dict[str, Any]) -> None:
        raise RuntimeError("handler bug")

    inf.add_handler(on_add=broken)
    after = Recorder()
    inf.add_handler(on_add=after.add)
    inf.start()
    await wait_until(lambda: client.streams, "the watch")
    client.streams[0].push(WatchEvent("ADDED", obj("b", 2)))
    await wait_until(lambda: len(after.calls) == 2, "the later handler")
    assert rec.calls == [("add", "a"), ("add", "b")]
    assert inf.get("default/b") is not None


async def test_a_handler_added_after_sync_first_sees_every_cached_object(setup):
    client, make = setup
    client.put(obj("a", 1))
    client.put(obj("b", 2))
    inf, _ = make()
    inf.start()
    assert await inf.wait_synced(5.0)
    late = Recorder()
    inf.add_handler(late.add, late.update, late.delete)
    assert sorted(late.calls) == [("add", "a"), ("add", "b")]


async def test_indexes_follow_adds_updates_and_deletes(setup):
    client, make = setup
    client.put(obj("a", 1, namespace="x", metadata={"labels": {"app": "web"}}))
    client.put(obj("b", 2, namespace="y", metadata={"labels": {"app": "web"}}))
    inf, _ = make()
    inf.add_index(NAMESPACE_INDEX, namespace_index)
    inf.start()
    assert await inf.wait_synced(5.0)
    inf.add_index("app", lambda o: [o["metadata"].get("labels", {}).get("app", "")])
    assert [o["metadata"]["name"] for o in inf.by_index(NAMESPACE_INDEX, "x")] == ["a"]
    assert inf.index_keys("app", "web") == ["x/a", "y/b"]
    await wait_until(lambda: client.streams, "the watch")
    client.streams[0].push(WatchEvent("MODIFIED", obj("a", 3, namespace="x",
                                                      metadata={"labels": {"app": "db"}})))
    client.streams[0].push(WatchEvent("DELETED", obj("b", 4, namespace="y")))
    await wait_until(lambda: inf.last_resource_version == "4", "the events")
    assert inf.index_keys("app", "web") == []
    assert inf.index_keys("app", "db") == ["x/a"]
    assert inf.by_index(NAMESPACE_INDEX, "y") == []
    with pytest.raises(KeyError):
        inf.by_index("nope", "x")
    with pytest.raises(ValueError):
        inf.add_index("app", namespace_index)


async def test_resync_redelivers_cached_objects_as_updates(setup):
    client, make = setup
    client.put(obj("a", 1))
    inf, rec = make(resync=0.01)
    inf.start()
    await wait_until(lambda: ("update", "a", "1", "1") in rec.calls, "a resync")


async def test_stop_ends_the_tasks_and_keeps_the_cache(setup):
    client, make = setup
    client.put(obj("a", 1))
    inf, _ = make()
    task = inf.start()
    assert inf.start() is task                      # starting twice is harmless
    assert await inf.wait_synced(5.0)
    await inf.stop()
    assert task.done()
    assert inf.keys() == ["default/a"]
    await inf.stop()


def test_backoff_grows_is_jittered_and_bounded():
    async def go() -> list[float]:
        b = _Backoff(initial=0.8, cap=30.0)
        return [b.next() for _ in range(12)]

    delays = asyncio.run(go())
    assert 0.8 <= delays[0] <= 1.6
    assert all(d <= 60.0 for d in delays)
    assert delays[-1] >= 30.0
