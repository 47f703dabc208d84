"""Garbage-collector settings for a serving API server process.

An API server holds a large, long-lived heap (the type schemas, the registry, every watch
cache's objects) and allocates many short-lived containers per request. With CPython's default
thresholds (700, 10, 10) the cyclic collector ran about every few requests and, every few
thousand writes, a full collection walked the whole heap: measured on a create load, ~80 µs of
CPU per create and single pauses of 50-60 ms, which alone exceed a 50 ms p99. Request garbage is
acyclic and freed by reference counting, so the collector has little to find; it runs far less
often here, and the heap present once the server is up is frozen out of collections
(`gc.freeze`), as long-running CPython services do.
"""

from __future__ import annotations

import gc

__all__ = ["tune_for_serving", "THRESHOLDS"]

# Young collections every 20,000 net allocations (pauses of a few ms), a middle one every 20 of
# them, a full one every 50 middle ones (and only once the long-lived heap grew by 25%).
THRESHOLDS = (20_000, 20, 50)

_done = False


def tune_for_serving() -> None:
    """Collect once, freeze what is alive (the startup heap), and raise the thresholds. Call
    once the server is up; later calls do nothing."""
    global _done
    if _done:
        return
    _done = True
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
