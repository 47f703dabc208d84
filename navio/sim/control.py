"""The sim's control endpoint on loopback: fail and recover nodes on demand, read its state.

Why: tests and benchmarks run `navio sim` as a separate process and need to fail nodes at a
moment of their choosing (kwok changes node state through the API; our failure is the
*absence* of API writes, so it is driven from outside the API).

    GET  /state                          the Simulator.state() summary (JSON)
    POST /fail?count=N | ?fraction=5%    fail N (or that fraction of all) healthy nodes at
                                         random; reply {"failed": [names]}
    POST /fail?nodes=a,b                 fail these nodes
    POST /recover[?nodes=a,b]            recover these (default all failed) nodes

It listens only on 127.0.0.1 (port `--control-port`; 0 picks one, printed at start) and has
no authentication: anyone on the machine who can reach loopback can fail simulated nodes,
which is all it can do. SIGUSR1 fails `--fail`'s share again, SIGUSR2 recovers every node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from navio.sim.simulator import parse_fraction

if TYPE_CHECKING:
    from navio.sim.simulator import Simulator

__all__ = ["control_app", "serve_control"]


def control_app(sim: "Simulator") -> web.Application:
    async def state(request: web.Request) -> web.Response:
        return web.json_response(sim.state())

    async def fail(request: web.Request) -> web.Response:
        q = request.query
        try:
            if "nodes" in q:
                names = sim.fail(n for n in q["nodes"].split(",") if n)
            else:
                spec = q.get("count") or q.get("fraction")
                if spec is None:
                    raise ValueError("give count=N, fraction=P% or nodes=a,b")
                names = sim.fail_random(parse_fraction(spec, len(sim.nodes)))
        except (KeyError, ValueError) as exc:
            return web.json_response({"error": str(exc).strip("'\"")}, status=400)
        return web.json_response({"failed": names})

    async def recover(request: web.Request) -> web.Response:
        nodes = request.query.get("nodes")
        try:
            names = sim.recover(n for n in nodes.split(",") if n) if nodes else sim.recover()
        except KeyError as exc:
            return web.json_response({"error": str(exc).strip("'\"")}, status=400)
        return web.json_response({"recovered": names})

    app = web.Application()
    app.router.add_get("/state", state)
    app.router.add_post("/fail", fail)
    app.router.add_post("/recover", recover)
    return app


async def serve_control(sim: "Simulator", port: int) -> tuple[web.AppRunner, int]:
    """Start the endpoint on 127.0.0.1:`port`; the runner (to clean up) and the bound port."""
    runner = web.AppRunner(control_app(sim), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True)
    await site.start()
    server = site._server
    bound = int(server.sockets[0].getsockname()[1]) if server and server.sockets else port
    return runner, bound
