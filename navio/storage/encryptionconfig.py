"""The encryption-at-rest configuration: kube-apiserver's EncryptionConfiguration file.

Why: secrets must never sit in the store in plain text (the 2019 audit; CIS 1.2.27/1.2.28,
`--encryption-provider-config`). navio keeps the keys in the very file format kube-apiserver
reads (`apiserver.config.k8s.io/v1` EncryptionConfiguration), so an operator's knowledge and
tools carry over:

    resources:
    - resources: [secrets]
      providers:
      - aesgcm: {keys: [{name: key2, secret: <base64 32 bytes>}, {name: key1, ...}]}
      - identity: {}

Guarantees:
- The first provider encrypts every write; every listed provider can read (so after a rotation
  values under the older key, and plain values while `identity` is listed, stay readable).
- The file is created on first start with one fresh 256-bit key, and is 0600 (a key file
  readable by group or others is refused at load, naming the file and the fix).
- Writes of the file are atomic (write, fsync, rename): a crash leaves the old or the new file.
"""

from __future__ import annotations

import base64
import os
import secrets as _random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from navio.pki.privatefiles import KeyFileError, check_private_file

__all__ = ["AESGCMKey", "EncryptionConfig", "ResourceEncryption", "KeyFileError",
           "check_private_file", "load_config", "save_config", "load_or_create_config",
           "new_key", "resource_prefix"]


@dataclass(frozen=True, slots=True)
class AESGCMKey:
    name: str
    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) not in (16, 24, 32):
            raise KeyFileError(f"aesgcm key {self.name!r}: want 16, 24 or 32 bytes, got "
                               f"{len(self.secret)}")
        if not self.name or ":" in self.name:
            raise KeyFileError(f"aesgcm key name {self.name!r}: must be non-empty, no ':'")


@dataclass(frozen=True, slots=True)
class ResourceEncryption:
    """One `resources` entry: storage prefixes and their providers, in order."""

    resources: tuple[str, ...]
    keys: tuple[AESGCMKey, ...]      # the aesgcm provider's keys, first = primary
    identity: bool                   # plain values are readable
    encrypt: bool                    # the first provider is aesgcm (else: writes stay plain)

    @property
    def prefixes(self) -> tuple[str, ...]:
        return tuple(resource_prefix(r) for r in self.resources)


@dataclass(frozen=True, slots=True)
class EncryptionConfig:
    entries: tuple[ResourceEncryption, ...]


def resource_prefix(resource: str) -> str:
    """navio's registry prefix of `resource` (`secrets`, `widgets.example.com`)."""
    plural, _, group = resource.partition(".")
    return f"/registry/{group or 'core'}/{plural}/"


def new_key(name: str) -> AESGCMKey:
    return AESGCMKey(name, _random.token_bytes(32))


def _parse_entry(raw: dict[str, Any], path: Path) -> ResourceEncryption:
    keys: list[AESGCMKey] = []
    identity = False
    first: str | None = None
    for provider in raw.get("providers") or ():
        (ptype, body), = provider.items()
        first = first or ptype
        if ptype == "identity":
            identity = True
        elif ptype == "aesgcm":
            for k in (body or {}).get("keys") or ():
                try:
                    secret = base64.b64decode(str(k["secret"]), validate=True)
                except (KeyError, ValueError):
                    raise KeyFileError(f"{path}: aesgcm key {k.get('name')!r} has no valid "
                                       "base64 secret") from None
                keys.append(AESGCMKey(str(k.get("name", "")), secret))
        else:
            raise KeyFileError(f"{path}: provider {ptype!r} is not supported (aesgcm, "
                               "identity)")
    resources = tuple(str(r) for r in raw.get("resources") or ())
    if not resources or first is None:
        raise KeyFileError(f"{path}: each entry needs resources and providers")
    return ResourceEncryption(resources, tuple(keys), identity, first == "aesgcm")


def load_config(path: Path) -> EncryptionConfig:
    check_private_file(path)
    try:
        doc = yaml.safe_load(path.read_text()) or {}
        entries = tuple(_parse_entry(e, path) for e in doc.get("resources") or ())
    except (yaml.YAMLError, AttributeError, TypeError, ValueError) as exc:
        raise KeyFileError(f"{path}: not an EncryptionConfiguration ({type(exc).__name__})"
                           ) from None
    return EncryptionConfig(entries)


def _dump(config: EncryptionConfig) -> bytes:
    resources = []
    for e in config.entries:
        aes = {"aesgcm": {"keys": [{"name": k.name,
                                    "secret": base64.b64encode(k.secret).decode()}
                                   for k in e.keys]}}
        providers: list[dict[str, Any]] = []
        if e.keys and e.encrypt:
            providers.append(aes)
        if e.identity:
            providers.append({"identity": {}})
        if e.keys and not e.encrypt:
            providers.append(aes)
        resources.append({"resources": list(e.resources), "providers": providers})
    return yaml.safe_dump({"apiVersion": "apiserver.config.k8s.io/v1",
                           "kind": "EncryptionConfiguration", "resources": resources},
                          sort_keys=False).encode()


def save_config(path: Path, config: EncryptionConfig) -> None:
    """Write atomically, 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, _dump(config))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def load_or_create_config(path: Path) -> EncryptionConfig:
    """The configuration at `path`; on first use: secrets under one fresh aesgcm key, with
    `identity` readable so values stored before encryption was on still read (and migrate)."""
    if not path.exists():
        save_config(path, EncryptionConfig((ResourceEncryption(
            ("secrets",), (new_key("key1"),), identity=True, encrypt=True),)))
    return load_config(path)
