"""The `navio` command: one entry point, one subcommand per component."""

from __future__ import annotations

import argparse
import sys

from navio import KUBERNETES_VERSION, __version__

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="navio", description="A small, complete, "
                                "Kubernetes-compatible container orchestrator.")
    p.add_argument("--version", action="version",
                   version=f"navio {__version__} (Kubernetes {KUBERNETES_VERSION})")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from navio.cli import (agent, apiserver, cert, controllermanager, datastore, dns, image,
                           proxy, scheduler, secrets, server, sim, token)
    server.add_parser(sub)
    apiserver.add_parser(sub)
    datastore.add_parser(sub)
    agent.add_parser(sub)
    controllermanager.add_parser(sub)
    scheduler.add_parser(sub)
    secrets.add_parser(sub)
    cert.add_parser(sub)
    proxy.add_parser(sub)
    dns.add_parser(sub)
    token.add_parser(sub)
    image.add_parser(sub)
    sim.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
