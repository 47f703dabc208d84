"""Where the API server keeps its state (`--datastore`), and `navio datastore migrate`.

`--datastore` takes `sqlite:PATH` (default: `<data dir>/db/state.db`, the embedded store of a
single-machine cluster) or `etcd://host:2379[,host:2379…]` (an etcd cluster, which several
API servers can share: the HA control plane). TLS to etcd uses kube-apiserver's flags,
`--etcd-cafile`, `--etcd-certfile`, `--etcd-keyfile` (the key must be a 0600 file).

`navio datastore migrate --from sqlite:PATH --to etcd://…` copies a cluster's state: every
live object with its data, byte for byte (so encrypted secrets stay encrypted under the same
keys). resourceVersions become the new store's revisions, as after a kube etcd restore;
clients re-list, which every Kubernetes client does when its watch gets a 410.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from navio.storage.protocol import KeyExists, StorageError, Store

__all__ = ["add_datastore_flags", "add_parser", "open_datastore", "migrate",
           "DatastoreSpec"]


class DatastoreSpec:
    """A parsed `--datastore` value with its TLS files."""

    def __init__(self, url: str, *, cafile: Path | None = None, certfile: Path | None = None,
                 keyfile: Path | None = None) -> None:
        self.url = url.strip()
        self.cafile, self.certfile, self.keyfile = cafile, certfile, keyfile
        if self.is_etcd:
            from navio.storage.etcd_client import parse_datastore
            self.etcd = parse_datastore(self.url, cafile=cafile, certfile=certfile,
                                        keyfile=keyfile)
        elif self.url and not self.url.startswith("sqlite:") and self.url != "sqlite":
            raise ValueError(f"--datastore {self.url!r}: want sqlite:PATH or "
                             "etcd://host:port[,host:port...]")

    @property
    def is_etcd(self) -> bool:
        return self.url.startswith(("etcd://", "http://", "https://"))

    def sqlite_path(self, data_dir: Path) -> Path:
        path = self.url[len("sqlite:"):] if self.url.startswith("sqlite:") else ""
        return Path(path) if path else data_dir / "db" / "state.db"

    def describe(self) -> str:
        return self.url or "sqlite"


def add_datastore_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--datastore", "--datastore-endpoint", dest="datastore", default="",
                   help="sqlite:PATH (default: DATA/db/state.db) or "
                        "etcd://host:2379[,host:2379...] to share state between API servers")
    p.add_argument("--etcd-cafile", type=Path,
                   help="CA that signed the etcd members' serving certificates (TLS to etcd)")
    p.add_argument("--etcd-certfile", type=Path,
                   help="client certificate navio presents to etcd")
    p.add_argument("--etcd-keyfile", type=Path,
                   help="its private key (a 0600 file)")


def spec_from_args(args: argparse.Namespace) -> DatastoreSpec:
    return DatastoreSpec(args.datastore, cafile=args.etcd_cafile,
                         certfile=args.etcd_certfile, keyfile=args.etcd_keyfile)


async def open_datastore(spec: DatastoreSpec, data_dir: Path) -> Any:
    """The raw store (no encryption layer): SQLiteStore or EtcdStore."""
    if spec.is_etcd:
        from navio.storage.etcd import EtcdStore
        return await EtcdStore.open(spec.etcd)
    from navio.storage.sqlite import SQLiteStore
    return await SQLiteStore.open(spec.sqlite_path(data_dir))


async def migrate(source: Store, target: Store, *, page: int = 500,
                  out: Any = None) -> int:
    """Copy every live key of `source` into `target` (which must not hold them yet); returns
    how many. One snapshot of the source (a list at one revision, paged)."""
    copied = 0
    revision = 0
    start = ""
    while True:
        revision, items, more = await source.list("/registry/", revision=revision,
                                                  start=start, limit=page)
        for kv in items:
            try:
                await target.create(kv.key, kv.value)
            except KeyExists:
                raise StorageError(f"{kv.key} exists in the target already; migrate into an "
                                   "empty datastore") from None
            copied += 1
        if out is not None and items:
            print(f"navio datastore: copied {copied} objects", file=out, flush=True)
        if not more or not items:
            return copied
        start = items[-1].key + "\x00"


def add_parser(sub: Any) -> None:
    p = sub.add_parser("datastore", help="datastore tools (migrate a cluster's state)")
    dsub = p.add_subparsers(dest="datastore_command", required=True, metavar="COMMAND")
    m = dsub.add_parser("migrate", help="copy every object from one datastore to another "
                        "(stop the API servers first)")
    m.add_argument("--from", dest="source", required=True,
                   help="sqlite:PATH or etcd://host:port[,...]")
    m.add_argument("--to", dest="target", required=True,
                   help="sqlite:PATH or etcd://host:port[,...] (empty)")
    m.add_argument("--etcd-cafile", type=Path)
    m.add_argument("--etcd-certfile", type=Path)
    m.add_argument("--etcd-keyfile", type=Path)
    m.set_defaults(run=_run_migrate)


def _run_migrate(args: argparse.Namespace) -> int:
    tls = {"cafile": args.etcd_cafile, "certfile": args.etcd_certfile,
           "keyfile": args.etcd_keyfile}
    try:
        source = DatastoreSpec(args.source, **tls)
        target = DatastoreSpec(args.target, **tls)
        if not (source.url.startswith("sqlite:") or source.is_etcd) or \
                not (target.url.startswith("sqlite:") or target.is_etcd):
            raise ValueError("--from and --to need sqlite:PATH or etcd://host:port")
        if not source.is_etcd and not source.sqlite_path(Path(".")).exists():
            raise ValueError(f"{source.url}: no such database")
    except ValueError as exc:
        print(f"navio datastore migrate: {exc}", file=sys.stderr)
        return 2

    async def run() -> int:
        src = await open_datastore(source, Path("."))
        try:
            dst = await open_datastore(target, Path("."))
            try:
                n = await migrate(src, dst, out=sys.stdout)
            finally:
                await dst.close()
        finally:
            await src.close()
        print(f"navio datastore: migrated {n} objects from {source.describe()} to "
              f"{target.describe()}", flush=True)
        return 0

    try:
        return asyncio.run(run())
    except StorageError as exc:
        print(f"navio datastore migrate: {exc}", file=sys.stderr)
        return 1
