"""RuntimeClass handlers: which runtime serves each handler name a RuntimeClass may give.

A node runs one runtime (`navio agent --runtime`); it supports the default handler (`""`, a
pod without a runtime class) and the handlers this table maps to its runtime. It reports them
in `status.runtimeHandlers`, and its kubelet refuses to create the sandbox of a pod whose class
names a handler it does not support, as a CRI runtime without that handler configured does.
A new runtime adds its handler here.
"""

from __future__ import annotations

__all__ = ["HANDLERS", "handlers_of", "supports"]

# handler name (RuntimeClass.handler) -> Runtime.name of the runtime that serves it
HANDLERS: dict[str, str] = {
    "process": "process",
    "sim": "sim",
}


def handlers_of(runtime_name: str) -> tuple[str, ...]:
    """The handlers a node on `runtime_name` supports: the default one first."""
    return ("", *sorted(h for h, r in HANDLERS.items() if r == runtime_name))


def supports(runtime_name: str, handler: str) -> bool:
    return handler in handlers_of(runtime_name)
