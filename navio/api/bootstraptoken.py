"""Bootstrap tokens: the `abcdef.0123456789abcdef` join secrets and the Secrets that hold them.

Why: a node joins with a short-lived shared token (kubeadm's `token create`), stored as kube
stores it (k8s.io/cluster-bootstrap/token/api): Secret `bootstrap-token-<id>` of type
`bootstrap.kubernetes.io/token` in `kube-system`, with `token-id`, `token-secret`,
`expiration` (RFC 3339), `usage-bootstrap-authentication`, `usage-bootstrap-signing`,
`auth-extra-groups` and `description`. The API server authenticates such a token as
`system:bootstrap:<id>` in group `system:bootstrappers` plus the extra groups.

Pure: formats, parsing and the Secret's shape; no I/O. The random token comes from `secrets`.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
from typing import Any

__all__ = ["SECRET_TYPE", "NAMESPACE", "SECRET_PREFIX", "USER_PREFIX", "GROUP",
           "TOKEN_RE", "generate", "parse", "secret_for", "token_fields",
           "DEFAULT_EXTRA_GROUPS"]

SECRET_TYPE = "bootstrap.kubernetes.io/token"
NAMESPACE = "kube-system"
SECRET_PREFIX = "bootstrap-token-"
USER_PREFIX = "system:bootstrap:"
GROUP = "system:bootstrappers"
# kubeadm's default for join tokens: the group its RBAC binds to node bootstrapping.
DEFAULT_EXTRA_GROUPS = ("system:bootstrappers:kubeadm:default-node-token",)
TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
_EXTRA_GROUP_RE = re.compile(r"^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$")
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def generate() -> str:
    """A new random token `<6 chars>.<16 chars>`."""
    return f"{_random(6)}.{_random(16)}"


def parse(token: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed token, else None."""
    m = TOKEN_RE.match(token)
    return (m.group(1), m.group(2)) if m else None


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret_for(token: str, *, ttl_seconds: float | None, now: dt.datetime,
               description: str = "", extra_groups: tuple[str, ...] = DEFAULT_EXTRA_GROUPS,
               usages: tuple[str, ...] = ("authentication", "signing")) -> dict[str, Any]:
    """The Secret that stores `token` (ttl None or 0: it never expires)."""
    parsed = parse(token)
    if parsed is None:
        raise ValueError("a bootstrap token looks like [a-z0-9]{6}.[a-z0-9]{16}")
    for group in extra_groups:
        if not _EXTRA_GROUP_RE.match(group):
            raise ValueError(f"extra group {group!r} must start with system:bootstrappers:")
    token_id, token_secret = parsed
    data = {"token-id": _b64(token_id), "token-secret": _b64(token_secret)}
    if ttl_seconds:
        expires = (now + dt.timedelta(seconds=ttl_seconds)).astimezone(dt.timezone.utc)
        data["expiration"] = _b64(expires.strftime("%Y-%m-%dT%H:%M:%SZ"))
    for usage in usages:
        data[f"usage-bootstrap-{usage}"] = _b64("true")
    if extra_groups:
        data["auth-extra-groups"] = _b64(",".join(extra_groups))
    if description:
        data["description"] = _b64(description)
    return {"apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE,
            "metadata": {"name": SECRET_PREFIX + token_id, "namespace": NAMESPACE},
            "data": data}


def token_fields(secret: dict[str, Any]) -> dict[str, str]:
    """The decoded `data` of a bootstrap-token Secret (undecodable values are dropped)."""
    out = {}
    for k, v in (secret.get("data") or {}).items():
        try:
            out[str(k)] = base64.b64decode(v, validate=True).decode()
        except (ValueError, TypeError, UnicodeDecodeError):
            continue
    return out


def expired(fields: dict[str, str], now: dt.datetime) -> bool:
    """Whether the Secret's `expiration` has passed (an unparseable one counts as passed)."""
    text = fields.get("expiration")
    if not text:
        return False
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return True
    return when <= now


def extra_groups(fields: dict[str, str]) -> tuple[str, ...] | None:
    """The valid `auth-extra-groups` (None if any is invalid: kube then refuses the token)."""
    groups = tuple(g.strip() for g in fields.get("auth-extra-groups", "").split(",")
                   if g.strip())
    if any(not _EXTRA_GROUP_RE.match(g) for g in groups):
        return None
    return groups


__all__ += ["expired", "extra_groups"]
