"""Several API servers in one kubeconfig: kube's single `server` plus navio's extension."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from navio.client.kubeconfig import KubeconfigError, load_kubeconfig, split_servers
from navio.kubelet.bootstrap import write_kubeconfig


def test_agent_kubeconfig_lists_every_server(tmp_path: Path) -> None:
    pem = tmp_path / "node.pem"
    pem.write_text("")
    kc = tmp_path / "kubelet.kubeconfig"
    write_kubeconfig(kc, server="https://10.0.0.1:6443, https://10.0.0.2:6443/",
                     ca_pem=b"ca", pem_file=pem, user="system:node:n")
    cluster = yaml.safe_load(kc.read_text())["clusters"][0]["cluster"]
    assert cluster["server"] == "https://10.0.0.1:6443"       # what kubectl uses
    assert cluster["extensions"] == [{"name": "navio.dev/servers", "extension": {
        "servers": ["https://10.0.0.1:6443", "https://10.0.0.2:6443"]}}]


def _kubeconfig(tmp_path: Path, cluster: dict[str, object]) -> Path:
    path = tmp_path / "kc"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": cluster}],
        "contexts": [{"name": "c", "context": {"cluster": "c"}}]}))
    return path


def test_endpoints_put_the_cluster_server_first(tmp_path: Path) -> None:
    config = load_kubeconfig(_kubeconfig(tmp_path, {
        "server": "https://b:6443", "extensions": [
            {"name": "other", "extension": {"x": 1}},
            {"name": "navio.dev/servers",
             "extension": {"servers": ["https://a:6443", "https://b:6443"]}}]}))
    assert config.endpoints == ("https://b:6443", "https://a:6443")
    assert load_kubeconfig(_kubeconfig(tmp_path, {"server": "https://a"})).endpoints == \
        ("https://a",)
    with pytest.raises(KubeconfigError):
        load_kubeconfig(_kubeconfig(tmp_path, {"server": "https://a", "extensions": [
            {"name": "navio.dev/servers", "extension": {"servers": "https://a"}}]}))
    with pytest.raises(KubeconfigError):
        load_kubeconfig(_kubeconfig(tmp_path, {"server": "https://a", "extensions": [
            {"name": "navio.dev/servers", "extension": {"servers": ["http://b"]}}]}))
    assert split_servers(" https://a/,https://b ") == ("https://a", "https://b")
