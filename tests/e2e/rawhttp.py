"""Raw HTTPS requests to a navio server with the admin client certificate."""

from __future__ import annotations

import http.client
import json
import ssl
from typing import Any

from cluster import NavioServer


def request(server: NavioServer, method: str, path: str, body: bytes | str | None = None,
            headers: dict[str, str] | None = None, *, timeout: float = 30.0
            ) -> tuple[int, dict[str, str], bytes]:
    pki = server.data_dir / "pki"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=timeout)
    try:
        if isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers={"Content-Type": "application/json",
                                                       **(headers or {})})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def status_of(server: NavioServer, method: str, path: str, body: Any = None,
              headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    raw = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
    code, _, data = request(server, method, path, raw, headers)
    return code, json.loads(data) if data else {}
