"""Times and durations as the node lifecycle controller reads and writes them.

Why: node conditions carry RFC 3339 timestamps at seconds precision, Lease renewals carry
microseconds, and kube-controller-manager's flags are Go durations (`40s`, `1m30s`).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

__all__ = ["timestamp", "parse_time", "duration_option"]

def timestamp(when: datetime | None = None) -> str:
    """RFC 3339 at seconds precision in UTC, as metav1.Time serializes."""
    return (when or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")


def duration_option(options: dict[str, Any], name: str, default: float) -> float:
    """A flag value in seconds: a number, or a Go duration such as `40s` or `1m30s`."""
    value = options.get(name, default)
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"invalid duration for {name}: {value!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)

