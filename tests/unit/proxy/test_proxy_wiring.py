"""How `navio server` and `navio agent` wire the Service data plane (issue 8): the kube-dns
Service, the local agent's DNS and proxy flags, and `navio proxy rules`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from navio.apiserver.bootstrap import DNS_PROXY_NAME, kube_dns_service
from navio.cli.agent import local_agent_component
from navio.cli.nodeservices import NodeServices, proxy_state_file
from navio.cli.server import ServerConfig
from navio.pki.certs import load_or_create_ca
from navio.proxy.model import PROXY_LABEL_SELECTOR

ROOT = Path(__file__).resolve().parents[3]


def navio(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "navio.cli.main", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_the_dns_address_is_the_service_ranges_tenth_unless_given(tmp_path):
    assert ServerConfig(tmp_path).dns_ip == "10.43.0.10"
    assert ServerConfig(tmp_path, service_cidr="10.96.0.0/12").dns_ip == "10.96.0.10"
    assert ServerConfig(tmp_path, cluster_dns="10.43.0.53").dns_ip == "10.43.0.53"
    with pytest.raises(ValueError, match="not in 10.43.0.0/16"):
        ServerConfig(tmp_path, cluster_dns="10.99.0.10")


def test_kube_dns_is_left_to_the_node_local_dns_by_every_proxy():
    svc = kube_dns_service("10.43.0.10")
    assert svc["metadata"]["name"] == "kube-dns"
    labels = svc["metadata"]["labels"]
    assert labels["k8s-app"] == "kube-dns"
    assert labels["service.kubernetes.io/service-proxy-name"] == DNS_PROXY_NAME
    assert "!service.kubernetes.io/service-proxy-name" in PROXY_LABEL_SELECTOR
    assert svc["spec"]["clusterIP"] == "10.43.0.10"
    assert [(p["name"], p["protocol"], p["port"]) for p in svc["spec"]["ports"]] == [
        ("dns", "UDP", 53), ("dns-tcp", "TCP", 53)]
    assert "selector" not in svc["spec"]


def test_the_local_agent_serves_cluster_dns_and_runs_the_proxy(tmp_path):
    ca = load_or_create_ca(tmp_path / "pki")
    kc = tmp_path / "kubelet.kubeconfig"
    c = local_agent_component(data_dir=tmp_path, ca=ca, kubeconfig=kc, node_name="n1",
                              cluster_dns=("10.43.0.10",), serve_dns=True, node_netns="t-node",
                              resolv_conf="/tmp/r.conf", proxy_mode="iptables", port=0)
    argv = " ".join(c.argv)
    for part in ("--cluster-dns 10.43.0.10", "--serve-cluster-dns", "--node-netns t-node",
                 "--resolv-conf /tmp/r.conf", "--proxy-mode iptables", "--port 0",
                 "--service-cluster-ip-range 10.43.0.0/16"):
        assert part in argv, argv
    plain = local_agent_component(data_dir=tmp_path, ca=ca, kubeconfig=kc, node_name="n1")
    assert "--serve-cluster-dns" not in plain.argv and "--cluster-dns" not in plain.argv


def test_node_services_are_checked():
    with pytest.raises(ValueError, match="--proxy-mode"):
        NodeServices(proxy_mode="ipvs")
    out = navio("agent", "--kubeconfig", "/nonexistent", "--serve-cluster-dns")
    assert out.returncode != 0 and "--serve-cluster-dns needs --cluster-dns" in out.stderr
    out = navio("agent", "--kubeconfig", "/nonexistent", "--proxy-mode", "userspace",
                "--node-netns", "t-node")
    assert out.returncode != 0 and "cannot serve a --node-netns" in out.stderr
    out = navio("server", "--cluster-dns", "10.99.0.10", "--data-dir", "/nonexistent")
    assert out.returncode != 0 and "not in 10.43.0.0/16" in out.stderr
    assert "Traceback" not in out.stderr


def test_navio_proxy_rules_prints_the_state_the_proxy_wrote(tmp_path):
    state = proxy_state_file(tmp_path)
    assert state == tmp_path / "proxy" / "rules.txt"
    out = navio("proxy", "rules", "--root-dir", str(tmp_path))
    assert out.returncode == 1 and "no proxy state" in out.stderr
    state.parent.mkdir()
    state.write_text("navio proxy: mode nftables, node n1, generation 3\n")
    out = navio("proxy", "rules", "--root-dir", str(tmp_path))
    assert out.returncode == 0 and out.stdout.startswith("navio proxy: mode nftables")


async def test_a_simulated_node_runs_no_proxy(tmp_path, monkeypatch):
    import asyncio

    from navio.cli.nodeservices import run_node_services
    from navio.kubelet.config import AgentConfig
    from navio.netpol import controller
    reported = []

    async def unenforced(config, reason, message):
        reported.append(reason)
    monkeypatch.setattr(controller, "unenforced", unenforced)
    sim = AgentConfig(node_name="s1", kubeconfig=tmp_path / "none", runtime="sim",
                      root_dir=tmp_path)
    # nothing to run: returns at once (a proxy would keep running until cancelled); the
    # node only reports that it enforces no NetworkPolicy
    await asyncio.wait_for(run_node_services(sim, NodeServices()), 5)
    assert not proxy_state_file(tmp_path).exists()
    assert reported == ["SimulatedNode"]
