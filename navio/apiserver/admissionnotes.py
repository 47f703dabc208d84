"""What admission tells the client and the audit log beside its verdict.

kube's admission plugins add `Warning` response headers (warning.AddWarning) and audit
annotations (audit.AddAuditAnnotation) through the request context. navio's equivalent is one
context variable per request: the API server's middleware opens it (`begin`), admission adds
to it (`warn`, `annotate`), and the middleware writes the warnings into the response headers
and the annotations into `request["audit_annotations"]`, which the audit log records.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field

__all__ = ["Notes", "begin", "current", "warn", "annotate"]

# Audit levels at which an annotation is recorded (kube's AddAnnotationWithLevel).
REQUEST_LEVELS = ("Request", "RequestResponse")


@dataclass(slots=True)
class Notes:
    warnings: list[str] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)
    # Recorded only in audit events of level Request or above (they may carry object data).
    request_annotations: dict[str, str] = field(default_factory=dict)


_NOTES: ContextVar[Notes | None] = ContextVar("navio_admission_notes", default=None)


def begin() -> Notes:
    """Fresh notes for the request this task now serves (aiohttp reuses a task for the
    requests of one keep-alive connection, so every request starts anew)."""
    notes = Notes()
    _NOTES.set(notes)
    return notes


def current() -> Notes | None:
    return _NOTES.get()


def warn(message: str) -> None:
    notes = _NOTES.get()
    if notes is not None and message not in notes.warnings:
        notes.warnings.append(message)


def annotate(key: str, value: str, *, request_level: bool = False) -> None:
    notes = _NOTES.get()
    if notes is not None:
        (notes.request_annotations if request_level else notes.annotations)[key] = value
