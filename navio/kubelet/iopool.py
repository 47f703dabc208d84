"""The agent's own thread pool for short blocking file work (volumes, pod files, sockets).

Why: asyncio.to_thread shares the loop's default executor (cpu count + 4 threads) with the
runtime, which parks slow netlink work there; during a burst of pod starts, a pod's
millisecond-long file writes would queue behind every other pod's network setup and all pods
would become ready together at the end. A separate small pool keeps the agent's steps short.

Guarantees: `run_io(fn, *args)` runs `fn` on one of at most 4 threads and returns its result
(or raises its exception); the pool is created on first use and lives for the process.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

__all__ = ["run_io"]

_T = TypeVar("_T")
_POOL: ThreadPoolExecutor | None = None


async def run_io(fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="kubelet-io")
    return await asyncio.get_running_loop().run_in_executor(
        _POOL, functools.partial(fn, *args, **kwargs))
