"""The proxy against a real navio server: Services and EndpointSlices made with kubectl become
kernel rules in a namespace the test creates, and follow changes within a second (issue 8).

Pods are network namespaces on a bridge in a node namespace with no route out (PLATFORM.md's
safe pattern); the proxy programs that node namespace only.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "proxy"))

from proxy_netlab import PODS, NetLab  # noqa: E402

from navio.proxy import Proxier, ProxyConfig, run  # noqa: E402

NODE = "n1"

SLICE = """apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: {ns}
  labels: {{kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{{name: "80-8080", port: 8080, protocol: TCP}}]
endpoints:
- {{addresses: ["10.244.0.11"], conditions: {{ready: true}}, nodeName: n1}}
- {{addresses: ["10.244.0.12"], conditions: {{ready: true}}, nodeName: n2}}
- addresses: ["10.244.0.13"]
  conditions: {{ready: {ready3}, terminating: {term3}}}
  nodeName: n2
"""


@pytest.fixture(scope="module")
def lab() -> Iterator[NetLab]:
    if os.geteuid() != 0:
        pytest.skip("the proxy e2e test needs root")
    assert shutil.which("nft"), "nftables is required"
    lab = NetLab()
    try:
        for pod, ip in PODS.items():
            lab.add_pod(pod, ip)
            lab.serve(pod, 8080)
        lab.add_pod("client", "10.244.0.100")
        lab.assert_no_route_out()
        yield lab
    finally:
        lab.close()


async def wait_until(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"gave up after {timeout}s waiting for {what}") from None


async def test_services_made_with_kubectl_reach_ready_pods(server: Any, kubectl: Any, ns: str,
                                                           lab: NetLab) -> None:
    await asyncio.to_thread(kubectl, "create", "service", "nodeport", "web", "--tcp=80:8080",
                            "-n", ns)
    await asyncio.to_thread(kubectl, "apply", "-f", "-",
                            input=SLICE.format(ns=ns, ready3="true", term3="false"))
    cluster_ip = await asyncio.to_thread(kubectl, "get", "svc", "web", "-n", ns, "-o",
                                         "jsonpath={.spec.clusterIP}")
    node_port = int(await asyncio.to_thread(kubectl, "get", "svc", "web", "-n", ns, "-o",
                                            "jsonpath={.spec.ports[0].nodePort}"))
    proxiers: list[Proxier] = []
    config = ProxyConfig(kubeconfig=server.kubeconfig, node_name=NODE, netns=lab.node,
                         mode="nftables", cluster_cidr="10.244.0.0/16")
    task = asyncio.create_task(run(config, on_ready=proxiers.append))
    key = f"{ns}/web"

    def targets() -> int:
        ports = proxiers[0].services.get(key, ()) if proxiers else ()
        return len(ports[0].cluster_endpoints) if ports else 0

    try:
        await wait_until(lambda: targets() == 3, timeout=15, what="the service's rules")
        answers = await asyncio.to_thread(lab.connect, "client", cluster_ip, 80, 40)
        assert {a.split()[0] for a in answers} == set(PODS), answers
        answers = await asyncio.to_thread(lab.connect, "client", "10.244.0.1", node_port, 40)
        assert {a.split()[0] for a in answers} == set(PODS), answers
        assert f"{ns}/web:80-8080" in proxiers[0].summary()

        await asyncio.to_thread(kubectl, "apply", "-f", "-",
                                input=SLICE.format(ns=ns, ready3="false", term3="true"))
        started = time.monotonic()
        await wait_until(lambda: targets() == 2, timeout=1.0,
                         what="pod3 to stop being a target")
        assert time.monotonic() - started < 1.0
        answers = await asyncio.to_thread(lab.connect, "client", cluster_ip, 80, 30)
        assert set(Counter(a.split()[0] for a in answers)) == {"pod1", "pod2"}, answers

        await asyncio.to_thread(kubectl, "delete", "service", "web", "-n", ns)
        await wait_until(lambda: key not in proxiers[0].services, timeout=5,
                         what="the deleted service's rules to go")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert lab.nft("list", "tables").stdout == ""
