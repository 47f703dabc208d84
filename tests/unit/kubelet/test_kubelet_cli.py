"""`navio agent` flags and the local node's wiring for `navio server` (issue 7)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from cryptography import x509

from navio.cli import agent as cli
from navio.pki.certs import load_or_create_ca


def parse(*argv: str):
    p = argparse.ArgumentParser()
    cli._configure(p)
    return cli.config_from_args(p.parse_args(list(argv)))


def test_flags_build_the_agent_config(tmp_path):
    config = parse("--kubeconfig", "kc", "--node-name", "n1", "--root-dir", str(tmp_path),
                   "--runtime", "sim", "--port", "0", "--cluster-dns", "10.43.0.10",
                   "--node-labels", "a=b,zone=z1", "--node-status-update-frequency", "5s",
                   "--resolv-conf", "")
    assert (config.node_name, config.runtime, config.port) == ("n1", "sim", 0)
    assert config.cluster_dns == ("10.43.0.10",)
    assert config.node_labels == (("a", "b"), ("zone", "z1"))
    assert config.node_status_update_frequency == 5.0 and config.resolv_conf is None


def test_a_token_file_needs_the_cluster_ca_to_join():
    with pytest.raises(ValueError, match="--ca-file"):
        parse("--server", "https://127.0.0.1:6443", "--token-file", "t")
    config = parse("--server", "https://127.0.0.1:6443", "--token-file", "t", "--ca-file", "c")
    assert config.token_file is not None and config.kubeconfig is None


@pytest.mark.parametrize("argv, message", [
    (("--kubeconfig", "k", "--pod-cidr", "10.0.0.0/33"), "pod-cidr"),
    (("--kubeconfig", "k", "--tls-cert-file", "c"), "go together"),
    (("--kubeconfig", "k", "--port", "70000"), "port"),
    (("--node-name", "x"), "kubeconfig"),
], ids=["bad cidr", "cert without key", "bad port", "no credentials"])
def test_invalid_flags_are_refused(argv, message):
    with pytest.raises(ValueError, match=message):
        parse(*argv)


def test_the_local_agent_component_gets_a_ca_signed_serving_certificate(tmp_path: Path):
    ca = load_or_create_ca(tmp_path / "pki")
    component = cli.local_agent_component(data_dir=tmp_path, ca=ca,
                                          kubeconfig=tmp_path / "kubelet.kubeconfig",
                                          node_name="local", port=10250)
    assert component.name == "agent" and component.argv[0] == "agent"
    argv = list(component.argv)
    cert = x509.load_pem_x509_certificate(
        Path(argv[argv.index("--tls-cert-file") + 1]).read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "local" in sans.get_values_for_type(x509.DNSName)
    assert cert.issuer == ca.cert.subject
    assert argv[argv.index("--client-ca-file") + 1] == str(ca.pair.cert)
