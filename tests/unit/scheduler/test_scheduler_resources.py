"""Pod requests as kube-scheduler counts them (component-helpers resource.PodRequests)."""

from __future__ import annotations

import pytest

from navio.scheduler.resources import (
    DEFAULT_MEMORY_REQUEST,
    DEFAULT_MILLI_CPU_REQUEST,
    is_scalar_resource_name,
    pod_requests,
)


def spec(containers=(), init=(), overhead=None):
    s = {"containers": list(containers), "initContainers": list(init)}
    if overhead:
        s["overhead"] = overhead
    return s


def c(cpu=None, mem=None, restart=None, **more):
    reqs = {k: v for k, v in (("cpu", cpu), ("memory", mem)) if v is not None}
    reqs.update(more)
    out = {"name": "x", "resources": {"requests": reqs}}
    if restart:
        out["restartPolicy"] = restart
    return out


CASES = [
    ("containers are summed", spec([c("1", "1Gi"), c("500m", "1Gi")]), 1500, 2 << 30),
    ("an init container larger than the sum wins per resource (the docs example)",
     spec([c("2", "1G"), c("1", "1G")], [c("2", "1G"), c("2", "3G")]), 3000, 3_000_000_000),
    ("a sidecar runs alongside the containers and later init containers",
     spec([c("1")], [c("500m", restart="Always"), c("1200m")]), 1700, 0),
    ("overhead is added on top", spec([c("1", "1Gi")], overhead={"cpu": "250m",
                                                                 "memory": "64Mi"}),
     1250, (1 << 30) + (64 << 20)),
    ("no requests means zero", spec([c()]), 0, 0),
]


@pytest.mark.parametrize("name,pod_spec,cpu,mem", CASES, ids=[c[0] for c in CASES])
def test_pod_requests(name, pod_spec, cpu, mem):
    req, _, _ = pod_requests(pod_spec)
    assert (req.milli_cpu, req.memory) == (cpu, mem)


def test_non_zero_requests_fill_missing_cpu_and_memory_per_container():
    _, cpu, mem = pod_requests(spec([c(), c("250m")]))
    assert cpu == DEFAULT_MILLI_CPU_REQUEST + 250
    assert mem == 2 * DEFAULT_MEMORY_REQUEST


def test_an_explicit_zero_request_is_not_replaced_by_the_default():
    _, cpu, _ = pod_requests(spec([c("0")]))
    assert cpu == 0


@pytest.mark.parametrize("name,scalar", [
    ("nvidia.com/gpu", True), ("hugepages-2Mi", True), ("example.com/foo", True),
    ("cpu", False), ("storage", False), ("requests.nvidia.com/gpu", False)])
def test_which_resources_are_scalar(name, scalar):
    assert is_scalar_resource_name(name) is scalar


def test_extended_resources_are_counted():
    req, _, _ = pod_requests(spec([c("1", **{"example.com/foo": "2"})]))
    assert req.scalar == {"example.com/foo": 2}
