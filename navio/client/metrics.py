"""Client-side Prometheus metrics, named as client-go's: work queues and REST requests.

Why: every component (scheduler, controller manager, kubelet) reports on /metrics what kube's
do, and these two families come from the shared client code in kube as here
(k8s.io/client-go/util/workqueue/metrics.go via component-base's workqueue provider, and
k8s.io/client-go/tools/metrics via component-base's restclient metrics).

    workqueue_depth{name}                        gauge: keys waiting
    workqueue_adds_total{name}                   counter: keys added
    workqueue_queue_duration_seconds{name}       histogram: add → get
    workqueue_work_duration_seconds{name}        histogram: get → done
    workqueue_retries_total{name}                counter: rate-limited re-adds
    rest_client_requests_total{code,host,method} counter: requests by HTTP status
    rest_client_request_duration_seconds{verb,host}   histogram: request latency

They live in the process's default registry (`REGISTRY`, prometheus-client's global one, as
kube's legacyregistry), which the component's /metrics serves together with process_*.
Only named queues are measured (kube's rule: an unnamed queue has no metrics). Children are
looked up once per label set: the per-event cost is one dict lookup and the sample.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics

__all__ = ["REGISTRY", "QueueMetrics", "queue_metrics", "observe_request"]

# component-base/metrics/prometheus/workqueue: ExponentialBuckets(10e-9, 10, 12)
_QUEUE_BUCKETS = tuple(10e-9 * 10 ** i for i in range(12))
# component-base/metrics/prometheus/restclient: requestLatency buckets
_REST_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)

disable_created_metrics()      # kube exposes no *_created series
_DEPTH = Gauge("workqueue_depth", "Current depth of workqueue", ["name"])
_ADDS = Counter("workqueue_adds", "Total number of adds handled by workqueue", ["name"])
_LATENCY = Histogram("workqueue_queue_duration_seconds",
                     "How long in seconds an item stays in workqueue before being requested.",
                     ["name"], buckets=_QUEUE_BUCKETS)
_WORK = Histogram("workqueue_work_duration_seconds",
                  "How long in seconds processing an item from workqueue takes.",
                  ["name"], buckets=_QUEUE_BUCKETS)
_RETRIES = Counter("workqueue_retries", "Total number of retries handled by workqueue",
                   ["name"])
_REQUESTS = Counter("rest_client_requests",
                    "Number of HTTP requests, partitioned by status code, method, and host.",
                    ["code", "host", "method"])
_REQUEST_LATENCY = Histogram("rest_client_request_duration_seconds",
                             "Request latency in seconds. Broken down by verb, and host.",
                             ["verb", "host"], buckets=_REST_BUCKETS)


class QueueMetrics:
    """The children of one named queue's series."""

    __slots__ = ("depth", "adds", "latency", "work", "retries")

    def __init__(self, name: str) -> None:
        self.depth = _DEPTH.labels(name)
        self.adds = _ADDS.labels(name)
        self.latency = _LATENCY.labels(name)
        self.work = _WORK.labels(name)
        self.retries = _RETRIES.labels(name)


_queues: dict[str, QueueMetrics] = {}
_requests: dict[tuple[str, str, str], Any] = {}
_latencies: dict[tuple[str, str], Any] = {}


def queue_metrics(name: str) -> QueueMetrics | None:
    """The metrics of the queue called `name` (shared by queues of the same name)."""
    if not name:
        return None
    m = _queues.get(name)
    if m is None:
        m = _queues[name] = QueueMetrics(name)
    return m


def observe_request(host: str, method: str, code: int, seconds: float) -> None:
    """Count one REST request (code "<error>" when no answer came, as client-go)."""
    key = (str(code) if code else "<error>", host, method)
    child = _requests.get(key)
    if child is None:
        child = _requests[key] = _REQUESTS.labels(*key)
    child.inc()
    lkey = (method, host)
    hist = _latencies.get(lkey)
    if hist is None:
        hist = _latencies[lkey] = _REQUEST_LATENCY.labels(method, host)
    hist.observe(seconds)
