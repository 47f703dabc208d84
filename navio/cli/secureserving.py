"""The secure port of the scheduler and the controller manager: /healthz and /metrics.

Why: kube-scheduler (:10259) and kube-controller-manager (:10257) serve their health and
Prometheus metrics only over HTTPS, authenticating callers by delegation to the API server
(k8s.io/apiserver's DelegatingAuthenticationOptions / DelegatingAuthorizationOptions). So
does navio:

- TLS under navio's policy with a self-signed serving certificate made once in `--cert-dir`
  (kube makes one when no `--tls-cert-file` is given); client certificates are optional and,
  when sent, verified against `--client-ca-file` (default: the kubeconfig's CA, which in a
  navio cluster signs every client certificate).
- Identity: a verified client certificate (CN = user, O = groups), else a bearer token checked
  with a TokenReview, else anonymous.
- `--authorization-always-allow-paths` (kube's default /healthz,/readyz,/livez) need no
  authorization; anything else is decided by a SubjectAccessReview (non-resource path, verb
  `get`), so `system:masters` and the `system:monitoring` group may read /metrics. Unknown
  callers get 401, unauthorized ones 403 with kube's wording. Answers are cached 10 s, as
  kube's delegating authenticator and authorizer do.
- A port already in use is logged and the component runs on without it (it must not die
  because another process holds 10259); `--secure-port 0` picks a free port, logged.
"""

from __future__ import annotations

import logging
import ssl
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Coroutine

from aiohttp import web
from prometheus_client import REGISTRY, generate_latest

from navio.api import errors
from navio.client import Client, TransportError
from navio.kubelet.tls import ensure_self_signed, peer_identity
from navio.pki.tlspolicy import server_context

__all__ = ["SecureServing", "add_serving_flags", "with_secure_serving"]

log = logging.getLogger("navio.serving")

_CACHE_TTL = 10.0
_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_TOKENREVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
_SARS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


def add_serving_flags(p: Any, default_port: int) -> None:
    p.add_argument("--secure-port", type=int, default=default_port,
                   help=f"HTTPS port for /healthz and /metrics (default {default_port}, "
                        "kube's; 0 picks one; -1 serves nothing)")
    p.add_argument("--bind-address", default="127.0.0.1",
                   help="address of the secure port (kube's default is 0.0.0.0)")
    p.add_argument("--cert-dir", type=Path, default=None,
                   help="where the self-signed serving certificate is kept "
                        "(default: a private temporary directory)")
    p.add_argument("--client-ca-file", type=Path, default=None,
                   help="CA of client certificates (default: the kubeconfig's CA)")
    p.add_argument("--authorization-always-allow-paths", default="/healthz,/readyz,/livez")


class SecureServing:
    def __init__(self, client: Client, *, bind_address: str, port: int,
                 cert_dir: Path | None, client_ca: bytes | None,
                 always_allow: tuple[str, ...] = ("/healthz", "/readyz", "/livez")) -> None:
        self.client = client
        self.bind_address = bind_address
        self.port = port
        self.cert_dir = cert_dir
        self.client_ca = client_ca
        self.always_allow = always_allow
        self._tokens: dict[str, tuple[float, tuple[str, tuple[str, ...]] | None]] = {}
        self._decisions: dict[tuple[str, tuple[str, ...], str], tuple[float, bool]] = {}
        self._runner: web.AppRunner | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @classmethod
    def from_args(cls, client: Client, args: Any) -> "SecureServing":
        ca = args.client_ca_file.read_bytes() if args.client_ca_file else \
            client.config.ca_data
        allow = tuple(p.strip() for p in args.authorization_always_allow_paths.split(",")
                      if p.strip())
        return cls(client, bind_address=args.bind_address, port=args.secure_port,
                   cert_dir=args.cert_dir, client_ca=ca, always_allow=allow)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/healthz", self._ok)
        app.router.add_get("/readyz", self._ok)
        app.router.add_get("/livez", self._ok)
        app.router.add_get("/metrics", self._metrics)
        return app

    def _ssl(self) -> ssl.SSLContext:
        directory = self.cert_dir
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="navio-serving-")
            directory = Path(self._tmp.name)
        cert, key = ensure_self_signed(directory, ("localhost", "127.0.0.1",
                                                   self.bind_address))
        ctx = server_context(cert, key)
        if self.client_ca:
            ctx.load_verify_locations(cadata=self.client_ca.decode("ascii"))
            ctx.verify_mode = ssl.CERT_OPTIONAL
        return ctx

    async def start(self) -> int | None:
        """Serve; the bound port, or None when the port was taken (logged) or disabled."""
        if self.port < 0:
            return None
        runner = web.AppRunner(self.app(), handle_signals=False, access_log=None,
                               shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.bind_address, self.port, ssl_context=self._ssl(),
                           reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            log.warning("secure port unavailable; serving no metrics",
                        extra={"port": self.port, "error": exc.strerror or str(exc)})
            await runner.cleanup()
            return None
        self._runner = runner
        server = site._server
        port = int(server.sockets[0].getsockname()[1]) if server and server.sockets \
            else self.port
        log.info("serving securely", extra={"address": self.bind_address, "port": port})
        return port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # ---- handlers -------------------------------------------------------------------------

    async def _ok(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type":
                                                                    _CONTENT_TYPE})

    @web.middleware
    async def _auth(self, request: web.Request,
                    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                    ) -> web.StreamResponse:
        if request.path in self.always_allow:
            return await handler(request)
        try:
            who = await self._authenticate(request)
            if who is None:
                return web.json_response(_status(401, "Unauthorized", "Unauthorized"),
                                         status=401)
            if not await self._authorize(who[0], who[1], request.path):
                verb = request.method.lower()
                return web.json_response(_status(
                    403, "Forbidden", f'forbidden: User "{who[0]}" cannot {verb} path '
                                      f'"{request.path}"'), status=403)
        except (errors.ApiError, TransportError) as exc:
            log.warning("delegated authentication failed", extra={"error": str(exc)[:200]})
            return web.json_response(_status(500, "InternalError",
                                             "authentication is unavailable"), status=500)
        return await handler(request)

    async def _authenticate(self, request: web.Request
                            ) -> tuple[str, tuple[str, ...]] | None:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        if peer:
            return peer_identity(peer)
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        token = header[len("Bearer "):].strip()
        now = time.monotonic()
        cached = self._tokens.get(token)
        if cached is not None and cached[0] > now:
            return cached[1]
        review = await self.client.request("POST", _TOKENREVIEWS, body={
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": token}})
        status = review.get("status") or {}
        who = None
        if status.get("authenticated"):
            user = status.get("user") or {}
            who = (str(user.get("username", "")), tuple(user.get("groups") or ()))
        if len(self._tokens) > 1000:
            self._tokens.clear()
        self._tokens[token] = (now + _CACHE_TTL, who)
        return who

    async def _authorize(self, user: str, groups: tuple[str, ...], path: str) -> bool:
        key = (user, groups, path)
        now = time.monotonic()
        cached = self._decisions.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        review = await self.client.request("POST", _SARS, body={
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": list(groups),
                     "nonResourceAttributes": {"path": path, "verb": "get"}}})
        allowed = bool((review.get("status") or {}).get("allowed"))
        if len(self._decisions) > 1000:
            self._decisions.clear()
        self._decisions[key] = (now + _CACHE_TTL, allowed)
        return allowed


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


async def with_secure_serving(args: Any, component: Coroutine[Any, Any, None],
                              name: str) -> None:
    """Run `component` with its secure port beside it (a client of its own for reviews)."""
    if args.secure_port < 0:
        await component
        return
    client = Client.from_kubeconfig(args.kubeconfig, component=f"{name}-authn", qps=50,
                                    burst=100)
    serving = SecureServing.from_args(client, args)
    try:
        await serving.start()
        await component
    finally:
        component.close()
        await serving.stop()
        await client.close()
