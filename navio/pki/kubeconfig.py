"""kubeconfig files: what kubectl and navio's own components read to reach the API server."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from navio.pki.certs import CertPair, write_private

__all__ = ["write_kubeconfig"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write_kubeconfig(path: Path, *, server: str, ca_cert: Path, client: CertPair,
                     user: str, cluster: str = "navio",
                     servers: tuple[str, ...] = ()) -> None:
    """Write a kubeconfig (0600) with the CA and client credentials embedded. `servers`
    (several API servers) go in the cluster's `navio.dev/servers` extension; kubectl uses
    `server` alone, navio's client fails over between them."""
    body: dict[str, object] = {"server": server,
                               "certificate-authority-data": _b64(ca_cert.read_bytes())}
    if len(servers) > 1:
        body["extensions"] = [{"name": "navio.dev/servers",
                               "extension": {"servers": list(servers)}}]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": body}],
        "users": [{"name": user, "user": {
            "client-certificate-data": _b64(client.cert_pem()),
            "client-key-data": _b64(client.key_pem())}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
        "current-context": cluster,
        "preferences": {},
    }
    write_private(path, yaml.safe_dump(config, sort_keys=False).encode())
