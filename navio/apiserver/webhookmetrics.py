"""The admission webhook metrics kube-apiserver exports (k8s.io/apiserver/pkg/admission/
metrics, v1.32), registered on the API server's own Prometheus registry:

- `apiserver_admission_webhook_admission_duration_seconds{name,type,operation,rejected}`:
  latency of each call, `type` `admit` (mutating) or `validating`;
- `apiserver_admission_webhook_request_total{name,type,operation,code,rejected}`: calls by
  the HTTP code they ended with (0 when the API server failed before calling);
- `apiserver_admission_webhook_rejection_count{name,type,operation,error_type,
  rejection_code}`: refusals, `error_type` `calling_webhook_error`, `no_error` (the webhook
  said no) or `apiserver_internal_error`;
- `apiserver_admission_webhook_fail_open_count{name,type}`: failures let through by
  failurePolicy Ignore.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import Metric

__all__ = ["WebhookMetrics"]

_BUCKETS = (0.005, 0.025, 0.1, 0.5, 1.0, 2.5, 10, 25)


class _PlainCounter:
    """A counter exported under its exact name: kube's `…_count` counters have no `_total`
    suffix, which prometheus_client's Counter would add."""

    def __init__(self, name: str, documentation: str, labels: list[str]) -> None:
        self.name, self.documentation, self.labels = name, documentation, labels
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, *values: str) -> None:
        self.values[values] = self.values.get(values, 0.0) + 1

    def collect(self) -> Iterator[Metric]:
        metric = Metric(self.name, self.documentation, "counter")
        for values, count in sorted(self.values.items()):
            metric.add_sample(self.name, dict(zip(self.labels, values)), count)
        yield metric


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.duration = Histogram(
            "apiserver_admission_webhook_admission_duration_seconds",
            "Admission webhook latency histogram in seconds, identified by name and broken "
            "out for each operation and API resource and type (validate or admit).",
            ["name", "type", "operation", "rejected"], buckets=_BUCKETS, registry=registry)
        self.requests = Counter(
            "apiserver_admission_webhook_request_total",
            "Admission webhook request total, identified by name and broken out for each "
            "admission type (validating or mutating) and operation. Additional labels specify "
            "whether the request was rejected or not and an HTTP status code. Codes greater "
            "than 600 are truncated to 600, to keep the metrics cardinality bounded.",
            ["name", "type", "operation", "code", "rejected"], registry=registry)
        self.rejections = _PlainCounter(
            "apiserver_admission_webhook_rejection_count",
            "Admission webhook rejection count, identified by name and broken out for each "
            "admission type (validating or admit) and operation. Additional labels specify an "
            "error type (calling_webhook_error or apiserver_internal_error if an error "
            "occurred; no_error otherwise) and optionally a non-zero rejection code if the "
            "webhook rejects the request with an HTTP status code (honored by the apiserver "
            "when the code is greater or equal to 400). Codes greater than 600 are truncated "
            "to 600, to keep the metrics cardinality bounded.",
            ["name", "type", "operation", "error_type", "rejection_code"])
        self.fail_opens = _PlainCounter(
            "apiserver_admission_webhook_fail_open_count",
            "Admission webhook fail open count, identified by name and broken out for each "
            "admission type (validating or admit).", ["name", "type"])
        registry.register(self.rejections)  # type: ignore[arg-type]
        registry.register(self.fail_opens)  # type: ignore[arg-type]

    def observe(self, name: str, type_: str, operation: str, rejected: bool, code: int,
                seconds: float) -> None:
        flag = "true" if rejected else "false"
        self.duration.labels(name, type_, operation, flag).observe(seconds)
        self.requests.labels(name, type_, operation, str(min(code, 600)), flag).inc()

    def rejection(self, name: str, type_: str, operation: str, error_type: str,
                  code: int) -> None:
        self.rejections.inc(name, type_, operation, error_type, str(min(code, 600)))

    def fail_open(self, name: str, type_: str) -> None:
        self.fail_opens.inc(name, type_)
