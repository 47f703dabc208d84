"""`navio secrets rotate-key`: a new encryption key for secrets at rest, old values re-encrypted.

kube's procedure is manual (add a key, restart every API server, make it first, restart,
rewrite all secrets, remove the old key, restart); navio does it in one command, without a
restart and safely interruptible:

1. write the EncryptionConfiguration with a new key first and the old keys still listed (so
   every stored value stays readable, whatever happens next);
2. the running server notices the file, encrypts new writes with the new key and rewrites each
   value still under an old key (if no server is running, this command does it on the store);
3. once the store file shows no live value under an old key, the old keys are dropped.

Killed at any point, nothing is lost: step 1 and 3 are atomic file replacements, and step 2
is one conditional update per value; running the command again finishes the job.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import re
import socket
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from navio.pki.privatefiles import KeyFileError
from navio.storage.encryption import EncryptedStore, key_name_of
from navio.storage.encryptionconfig import (EncryptionConfig, load_config, new_key,
                                            save_config)
from navio.storage.sqlite_schema import key_range, list_sql

__all__ = ["add_parser", "rotate"]


def _default_data_dir() -> Path:
    from navio.cli.server import _default_data_dir as default
    return default()


def add_parser(sub: Any) -> None:
    p = sub.add_parser("secrets", help="manage the encryption of secrets at rest")
    s = p.add_subparsers(dest="secrets_command", required=True, metavar="COMMAND")
    r = s.add_parser("rotate-key", help="make a new key primary, re-encrypt every secret, "
                                        "drop the old keys")
    r.add_argument("--data-dir", type=Path, default=_default_data_dir())
    r.add_argument("--encryption-provider-config", dest="config", type=Path,
                   help="default: DATA/pki/encryption-config.yaml")
    r.add_argument("--timeout", type=float, default=300.0,
                   help="seconds to wait for the running server to re-encrypt")
    r.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    config = args.config or args.data_dir / "pki" / "encryption-config.yaml"
    try:
        return asyncio.run(rotate(args.data_dir, config, timeout=args.timeout))
    except KeyFileError as exc:
        print(f"navio secrets: {exc}", file=sys.stderr)
        return 1


def _next_name(names: list[str]) -> str:
    numbers = [int(m.group(1)) for n in names if (m := re.fullmatch(r"key(\d+)", n))]
    return f"key{max(numbers, default=0) + 1}"


def _with_new_primary(config: EncryptionConfig) -> EncryptionConfig:
    entries = []
    for e in config.entries:
        key = new_key(_next_name([k.name for k in e.keys]))
        entries.append(dataclasses.replace(e, keys=(key, *e.keys), encrypt=True))
    return EncryptionConfig(tuple(entries))


def _primary_only(config: EncryptionConfig) -> EncryptionConfig:
    return EncryptionConfig(tuple(dataclasses.replace(e, keys=e.keys[:1])
                                  for e in config.entries))


def stale_in_file(db: Path, config: EncryptionConfig) -> int:
    """Live values in the store file not under their primary key (read-only look)."""
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        stale = 0
        for e in config.entries:
            for prefix in e.prefixes:
                sql, params = list_sql(*key_range(prefix), 0, -1)
                for row in conn.execute(sql, params):
                    stale += key_name_of(bytes(row[3])) != e.keys[0].name
        return stale
    finally:
        conn.close()


def _server_running(data_dir: Path) -> bool:
    """Whether the API server of `data_dir` answers on its port."""
    try:
        doc = yaml.safe_load((data_dir / "admin.kubeconfig").read_text())
        url = urlsplit(doc["clusters"][0]["cluster"]["server"])
    except (OSError, KeyError, IndexError, TypeError, yaml.YAMLError):
        return False
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", url.port or 443), 2):
            return True
    except OSError:
        return False


async def rotate(data_dir: Path, config_path: Path, *, timeout: float = 300.0) -> int:
    db = data_dir / "db" / "state.db"
    rotated = _with_new_primary(load_config(config_path))
    save_config(config_path, rotated)
    names = ", ".join(e.keys[0].name for e in rotated.entries)
    print(f"navio: new primary key {names} written to {config_path}", flush=True)
    if _server_running(data_dir):
        print("navio: the running server re-encrypts; waiting", flush=True)
        deadline = time.monotonic() + timeout
        while (left := stale_in_file(db, rotated)) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        if left:
            print(f"navio secrets: {left} values still under an old key after {timeout:.0f}s; "
                  "the old keys are kept (every value stays readable); run the command "
                  "again once the server is up", file=sys.stderr)
            return 1
    else:
        from navio.storage.sqlite import SQLiteStore
        store = EncryptedStore(await SQLiteStore.open(db), config_path)
        try:
            count = await store.reencrypt()
        finally:
            await store.close()
        print(f"navio: re-encrypted {count} values (no server was running)", flush=True)
        if stale_in_file(db, rotated):
            print("navio secrets: values still under an old key; the old keys are kept",
                  file=sys.stderr)
            return 1
    save_config(config_path, _primary_only(rotated))
    print("navio: every secret is under the new key; old keys removed", flush=True)
    return 0
