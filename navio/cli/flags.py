"""Flag parsing shared by the component commands: Go-style durations, the common run loop."""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
from pathlib import Path
from typing import Any, Coroutine

from navio.cli.logs import setup_logging
from navio.pki.privatefiles import KeyFileError, check_private_files

__all__ = ["duration", "refuse_shared_credentials", "run_component", "true_false"]

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


def duration(text: str) -> float:
    """Seconds in a Go duration (`40s`, `5m`, `1h30m`, `250ms`); a bare number is seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (e.g. 40s, 5m, 1h30m)")
    return total


def true_false(text: str) -> bool:
    """A Go-style boolean flag value."""
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def refuse_shared_credentials(*paths: Path | None) -> None:
    """Exit with the file and the fix when a credential file is readable by others."""
    try:
        check_private_files(p for p in paths if p is not None)
    except KeyFileError as exc:
        raise SystemExit(f"navio: {exc}") from None


def run_component(args: argparse.Namespace, coro: Coroutine[Any, Any, None]) -> int:
    """Run one component's coroutine until SIGINT/SIGTERM, with uvloop and navio's logs."""
    setup_logging(getattr(args, "verbosity", 0))
    try:
        refuse_shared_credentials(getattr(args, "kubeconfig", None))
    except SystemExit:
        coro.close()
        raise
    try:
        import uvloop
        uvloop.install()
    except ImportError:  # pragma: no cover
        pass

    async def main() -> None:
        task = asyncio.ensure_future(coro)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            pass

    asyncio.run(main())
    return 0
