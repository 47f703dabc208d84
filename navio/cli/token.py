"""`navio token create|list|delete`: bootstrap tokens for joining nodes (kubeadm token).

`create` makes a random `abcdef.0123456789abcdef` token, stores it as kube does (Secret
`kube-system/bootstrap-token-<id>`, type `bootstrap.kubernetes.io/token`, usages
authentication and signing, extra group `system:bootstrappers:kubeadm:default-node-token`,
expiring after `--ttl`, default 24h, 0 = never) and prints it on stdout — or, with
`--output-file`, writes it to that file (0600) and prints nothing secret. The token is never
taken from argv or the environment: `navio agent --token-file` reads it from a file.
`--print-join-command` prints the `navio agent` command line that joins with it.

The API server is reached with `--kubeconfig` (default: `<data dir>/admin.kubeconfig`).
`list` shows token IDs, never secrets.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from navio.api import bootstraptoken as bt
from navio.api import errors
from navio.cli.flags import duration
from navio.pki.certs import write_private

__all__ = ["add_parser"]


def _default_data_dir() -> Path:
    from navio.cli.server import _default_data_dir as server_default
    return server_default()


def add_parser(sub: Any) -> None:
    p = sub.add_parser("token", help="manage bootstrap tokens for joining nodes")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="the server's data dir (its admin.kubeconfig is used)")
    p.add_argument("--kubeconfig", type=Path, default=None,
                   help="credentials to reach the API server (default: <data dir>/"
                        "admin.kubeconfig)")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    c = verbs.add_parser("create", help="create a bootstrap token and print it")
    c.add_argument("--ttl", type=duration, default=24 * 3600.0,
                   help="how long the token is valid (default 24h; 0: never expires)")
    c.add_argument("--description", default="")
    c.add_argument("--groups", default=",".join(bt.DEFAULT_EXTRA_GROUPS),
                   help="extra groups (each system:bootstrappers:...), comma-separated")
    c.add_argument("--output-file", type=Path,
                   help="write the token to this file (0600) instead of stdout")
    c.add_argument("--print-join-command", action="store_true",
                   help="also print the `navio agent` command that joins with this token "
                        "(needs --output-file)")
    verbs.add_parser("list", help="list bootstrap tokens (IDs only)")
    d = verbs.add_parser("delete", help="delete bootstrap tokens")
    d.add_argument("ids", nargs="+", metavar="TOKEN_ID",
                   help="token IDs (the 6 characters before the dot)")
    for q in (c,) + tuple(verbs.choices[v] for v in ("list", "delete")):
        # (also accepted after the verb: `navio token create --data-dir D`)
        q.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS,
                       help=argparse.SUPPRESS)
        q.add_argument("--kubeconfig", type=Path, default=argparse.SUPPRESS,
                       help=argparse.SUPPRESS)
        q.set_defaults(run=_run)
    p.set_defaults(run=_run)


def _kubeconfig(args: argparse.Namespace) -> Path:
    if args.kubeconfig is not None:
        return Path(args.kubeconfig)
    return (args.data_dir or _default_data_dir()) / "admin.kubeconfig"


def _run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_main(args))
    except errors.ApiError as exc:
        print(f"navio token: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"navio token: {exc}", file=sys.stderr)
        return 1


async def _main(args: argparse.Namespace) -> int:
    from navio.client import SECRETS, Client
    kubeconfig = _kubeconfig(args)
    async with Client.from_kubeconfig(kubeconfig, component="navio-token") as client:
        if args.verb == "create":
            return await _create(args, client)
        if args.verb == "list":
            return await _list(client)
        for token_id in args.ids:
            token_id = token_id.split(".", 1)[0]
            try:
                await client.delete(SECRETS, bt.SECRET_PREFIX + token_id, bt.NAMESPACE)
            except errors.NotFound:
                print(f"navio token: bootstrap token {token_id!r} not found", file=sys.stderr)
                return 1
            print(f"bootstrap token {token_id!r} deleted")
    return 0


async def _create(args: argparse.Namespace, client: Any) -> int:
    from navio.client import SECRETS
    if args.print_join_command and args.output_file is None:
        raise ValueError("--print-join-command needs --output-file (the token goes in a file)")
    groups = tuple(g.strip() for g in args.groups.split(",") if g.strip())
    token = bt.generate()
    secret = bt.secret_for(token, ttl_seconds=args.ttl, now=dt.datetime.now(dt.timezone.utc),
                           description=args.description, extra_groups=groups)
    await client.create(SECRETS, secret, bt.NAMESPACE)
    if args.output_file is None:
        print(token, flush=True)
        return 0
    write_private(args.output_file, (token + "\n").encode())
    print(f"bootstrap token {token.split('.')[0]!r} written to {args.output_file}",
          file=sys.stderr)
    if args.print_join_command:
        from navio.kubelet.bootstrap import ca_cert_hash
        ca = Path(kubeconfig_ca_hint(args))
        pin = ca_cert_hash(client.config.ca_data or b"")
        print(f"navio agent --server {client.config.server} --token-file "
              f"{args.output_file.resolve()} --ca-file {ca} --ca-cert-hash {pin}")
    return 0


def kubeconfig_ca_hint(args: argparse.Namespace) -> str:
    """Where the cluster CA certificate (public) lives for the join command."""
    data_dir = args.data_dir or _default_data_dir()
    return str((data_dir / "pki" / "ca.crt").resolve())


async def _list(client: Any) -> int:
    from navio.client import SECRETS
    body = await client.list(SECRETS, bt.NAMESPACE)
    rows = [("TOKEN-ID", "TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA GROUPS")]
    now = dt.datetime.now(dt.timezone.utc)
    for s in body.get("items") or ():
        if s.get("type") != bt.SECRET_TYPE:
            continue
        f = bt.token_fields(s)
        expires = f.get("expiration", "")
        ttl = "<forever>"
        if expires:
            try:
                left = dt.datetime.fromisoformat(expires.replace("Z", "+00:00")) - now
                ttl = f"{max(0, int(left.total_seconds() // 3600))}h" if left.total_seconds() \
                    > 0 else "<expired>"
            except ValueError:
                ttl = "<invalid>"
        usages = ",".join(k[len("usage-bootstrap-"):] for k, v in sorted(f.items())
                          if k.startswith("usage-bootstrap-") and v == "true")
        rows.append((f.get("token-id", ""), ttl, expires or "<never>", usages,
                     f.get("description", "<none>"), f.get("auth-extra-groups", "")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0
