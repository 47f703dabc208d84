"""Container restart back-off, as client-go's util/flowcontrol.Backoff that the kubelet uses.

Why: a crashing container is restarted after 10 s, then 20 s, 40 s, ... at most 5 min
(kubelet's `backOffPeriod` and `MaxContainerBackOff`), and the delay resets once the
container ran for longer than twice the maximum (10 min) — exactly what users see as
CrashLoopBackOff with "back-off 40s restarting failed container=...".

Guarantees (flowcontrol/backoff.go, without jitter as the kubelet builds it):
- `in_backoff_since(key, t)` is true while less than the current delay has passed since `t`
  (the finish time of the container's last exit); false for unknown keys.
- `next(key, t)` starts at `initial` for an unknown key or one whose last update is more than
  2 × `cap` before `t`, and otherwise doubles the delay up to `cap`.
- Time comes from an injected clock (seconds, monotonic or wall — one kind per instance).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

__all__ = ["Backoff", "go_duration", "INITIAL_BACKOFF", "MAX_BACKOFF"]

INITIAL_BACKOFF = 10.0      # kubelet.go backOffPeriod
MAX_BACKOFF = 300.0         # kubelet.go MaxContainerBackOff


@dataclass(slots=True)
class _Entry:
    backoff: float
    last_update: float


class Backoff:
    def __init__(self, initial: float = INITIAL_BACKOFF, cap: float = MAX_BACKOFF, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.initial = initial
        self.cap = cap
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    def get(self, key: str) -> float:
        """The current delay of `key` (0 when unknown)."""
        entry = self._entries.get(key)
        return entry.backoff if entry else 0.0

    def _expired(self, event_time: float, entry: _Entry) -> bool:
        # "consider stable if it's ok for twice the maxDuration"
        return event_time - entry.last_update > self.cap * 2

    def in_backoff_since(self, key: str, event_time: float) -> bool:
        entry = self._entries.get(key)
        if entry is None or self._expired(event_time, entry):
            return False
        return self._clock() - event_time < entry.backoff

    def remaining(self, key: str, event_time: float) -> float:
        """Seconds until the back-off that started at `event_time` ends (0 if it has)."""
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        return max(0.0, entry.backoff - (self._clock() - event_time))

    def next(self, key: str, event_time: float) -> None:
        entry = self._entries.get(key)
        if entry is None or self._expired(event_time, entry):
            entry = _Entry(self.initial, 0.0)
            self._entries[key] = entry
        else:
            entry.backoff = min(entry.backoff * 2, self.cap)
        entry.last_update = self._clock()

    def forget(self, key_prefix: str) -> None:
        """Drop every key starting with `key_prefix` (a pod that is gone)."""
        for key in [k for k in self._entries if k.startswith(key_prefix)]:
            del self._entries[key]


def go_duration(seconds: float) -> str:
    """A duration as Go's time.Duration.String() prints it: 10s, 1m20s, 5m0s, 1.5s, 250ms."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return sign + _trim(ns / size) + unit
    hours, rest = divmod(ns, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    secs = _trim(rest / 1e9)
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"


def _trim(value: float) -> str:
    text = f"{value:.9f}".rstrip("0").rstrip(".")
    return text or "0"
