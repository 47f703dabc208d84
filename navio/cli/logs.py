"""One structured log format for every navio process: a constant message plus key=value facts.

`--v` follows klog: 0 is the default, 2 adds decisions, 4 per-event detail.
"""

from __future__ import annotations

import logging
import sys
import time

__all__ = ["setup_logging"]

_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message", "asctime", "taskName"}


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [f"{ts}.{int(record.msecs):03d}Z", record.levelname[0],
                 record.name.removeprefix("navio."), f'"{record.getMessage()}"']
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                parts.append(f"{key}={_value(value)}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _value(v: object) -> str:
    s = str(v)
    return f'"{s}"' if (" " in s or not s) else s


def setup_logging(verbosity: int = 0) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbosity >= 4 else logging.INFO)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
