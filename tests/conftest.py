"""Shared test helpers: bounded waiting, never bare sleeps."""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable


async def wait_until(check: Callable[[], Awaitable[bool]], *, timeout: float, what: str,
                     interval: float = 0.05) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(interval)
    except TimeoutError:
        raise AssertionError(f"gave up after {timeout}s waiting for {what}") from None


def wait_until_sync(check: Callable[[], bool], *, timeout: float, what: str,
                    interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout}s waiting for {what}")
        time.sleep(interval)
