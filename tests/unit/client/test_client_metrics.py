"""workqueue_* and rest_client_* series (client-go's names) from navio.client."""

from __future__ import annotations

from prometheus_client import REGISTRY

from navio.client import WorkQueue
from navio.client.metrics import observe_request


def _value(metric: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(metric, labels) or 0.0


async def test_named_queue_reports_adds_depth_and_durations() -> None:
    q = WorkQueue(name="metrics-test-queue")
    label = {"name": "metrics-test-queue"}
    adds0 = _value("workqueue_adds_total", **label)
    waits0 = _value("workqueue_queue_duration_seconds_count", **label)
    work0 = _value("workqueue_work_duration_seconds_count", **label)
    q.add("a")
    q.add("a")                                   # already queued: not an add
    q.add("b")
    assert _value("workqueue_adds_total", **label) == adds0 + 2
    assert _value("workqueue_depth", **label) == 2
    key = await q.get()
    assert _value("workqueue_depth", **label) == 1
    assert _value("workqueue_queue_duration_seconds_count", **label) == waits0 + 1
    q.done(key)
    assert _value("workqueue_work_duration_seconds_count", **label) == work0 + 1
    retries0 = _value("workqueue_retries_total", **label)
    q.add_rate_limited("c")
    assert _value("workqueue_retries_total", **label) == retries0 + 1
    q.shut_down()


def test_unnamed_queue_has_no_series() -> None:
    before = {m.name for m in REGISTRY.collect() for s in m.samples
              if s.labels.get("name") == ""}
    q = WorkQueue()
    q.add("x")
    after = {m.name for m in REGISTRY.collect() for s in m.samples
             if s.labels.get("name") == ""}
    assert after == before


def test_rest_client_requests_by_code_method_and_host() -> None:
    labels = {"code": "201", "host": "metrics-test:6443", "method": "POST"}
    before = _value("rest_client_requests_total", **labels)
    observe_request("metrics-test:6443", "POST", 201, 0.01)
    observe_request("metrics-test:6443", "POST", 0, 0.01)    # no answer
    assert _value("rest_client_requests_total", **labels) == before + 1
    assert _value("rest_client_requests_total", code="<error>", host="metrics-test:6443",
                  method="POST") >= 1
    assert _value("rest_client_request_duration_seconds_count", verb="POST",
                  host="metrics-test:6443") >= 2
