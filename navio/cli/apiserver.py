"""`navio apiserver`: the API server alone, for a control plane of several (HA).

Several `navio apiserver --datastore etcd://…` processes on one etcd serve the same state,
watches included: each one's watch caches are fed by etcd's watch, so an object written
through one is seen through every other. They share the cluster's CA, service-account signing
key and encryption keys: start each additional server with `--pki-from DIR`, DIR being the
first server's `DATA/pki` or a private copy of it: only ca.crt, ca.key, sa.key,
encryption-config.yaml and revoked-serials are copied (0600); each server issues its own serving
and client certificates; a source others can read is refused. Give each server
`--advertise-address` (its routable IP): the `default/kubernetes` Endpoints list every live
server's address, kept by leases that expire 15s after a server dies. Controller managers and schedulers run beside them as `navio controller-manager` and
`navio scheduler`, with leader election.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from navio.pki.controlplane import PkiImportError, import_control_plane_pki
from navio.cli.server import ServerConfig, _config_from_args, add_apiserver_flags, run_server

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser("apiserver", help="run the API server only (several may share one "
                       "etcd: --datastore etcd://host:2379; join with --pki-from)",
                       description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    add_apiserver_flags(p)
    p.add_argument("--pki-from", type=Path, metavar="DIR",
                   help="join an existing control plane: copy its shared credentials (ca.crt, "
                        "ca.key, sa.key, encryption-config.yaml, revoked-serials) from DIR — "
                        "the first API server's DATA/pki or a private copy — into DATA/pki "
                        "(0600) before starting; refuses sources others can read and a DATA/pki "
                        "that holds a different CA; a no-op once copied")
    # The whole-cluster flags of `navio server` that do not apply here.
    p.set_defaults(run=_run, cluster_cidr="10.42.0.0/16", cluster_dns="", node_netns=None,
                   resolv_conf=None, kubelet_port=10250, proxy_mode="none", agent=False,
                   single_process=False, runtime="auto",
                   disable="controller-manager,scheduler,agent")


def _run(args: argparse.Namespace) -> int:
    try:
        config: ServerConfig = _config_from_args(args)
    except ValueError as exc:
        raise SystemExit(f"navio apiserver: {exc}") from None
    if args.pki_from is not None:
        try:
            written = import_control_plane_pki(args.pki_from, config.data_dir / "pki")
        except (PkiImportError, OSError) as exc:
            raise SystemExit(f"navio apiserver: --pki-from: {exc}") from None
        if written:
            print(f"navio: copied {', '.join(written)} from {args.pki_from}", flush=True)
    return run_server(config)
