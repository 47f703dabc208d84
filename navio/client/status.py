"""Turning the API server's error replies back into `navio.api.errors` exceptions.

Why: callers write `except errors.NotFound` / `errors.Conflict` whether the error was raised in
process or came over HTTP, as client-go's apierrors.FromObject lets Go callers use IsNotFound.

Guarantees: the class is chosen by the Status `reason` when navio knows it, else by the HTTP
code (409 without a known reason is Conflict, 410 is Expired as for reason `Gone`), else the
base `ApiError`; the instance keeps the wire's `code`, `reason`, `message` and `details`
(`Invalid` also gets `causes`). A reply that is not a Status gets a generic message; the body
is never copied into the exception beyond a Status's own message.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson

from navio.api import errors

__all__ = ["error_from_status", "error_from_response"]

_CLASSES: tuple[type[errors.ApiError], ...] = (
    errors.BadRequest, errors.Unauthorized, errors.Forbidden, errors.NotFound,
    errors.MethodNotAllowed, errors.NotAcceptable, errors.AlreadyExists, errors.Conflict,
    errors.Expired, errors.TooLarge, errors.UnsupportedMediaType, errors.Invalid,
    errors.TooManyRequests, errors.InternalError, errors.ServiceUnavailable, errors.Timeout,
)
_BY_REASON = {cls.reason: cls for cls in _CLASSES}
# By code: the first class with that code wins, so 409 maps to AlreadyExists only by reason.
_BY_CODE: dict[int, type[errors.ApiError]] = {409: errors.Conflict}
for _cls in _CLASSES:
    _BY_CODE.setdefault(_cls.code, _cls)


def error_from_status(status: dict[str, Any], http_code: int | None = None) -> errors.ApiError:
    """The exception for a `Status` object (from a reply body or a watch ERROR event)."""
    code = status.get("code") or http_code or 500
    try:
        code = int(code)
    except (TypeError, ValueError):
        code = http_code or 500
    reason = status.get("reason") or ""
    details = status.get("details")
    details = details if isinstance(details, dict) else {}
    message = status.get("message") or _default_message(code)
    cls = _BY_REASON.get(reason) or _BY_CODE.get(code) or errors.ApiError
    exc = cls.__new__(cls)
    errors.ApiError.__init__(exc, str(message), details=details)
    # Keep what the server said even where it differs from the class's own pair.
    if exc.code != code:
        exc.code = code
    if reason and exc.reason != reason:
        exc.reason = reason
    elif not reason and cls is errors.ApiError:
        exc.reason = _default_reason(code)
    if isinstance(exc, errors.Invalid):
        causes = details.get("causes")
        exc.causes = causes if isinstance(causes, list) else []
    return exc


def error_from_response(http_code: int, body: bytes) -> errors.ApiError:
    """The exception for a non-2xx reply; a non-Status body gives a generic message."""
    status: Any = None
    if body:
        try:
            status = orjson.loads(body)
        except orjson.JSONDecodeError:
            status = None
    if not isinstance(status, dict) or status.get("kind") != "Status":
        status = {}
    return error_from_status(status, http_code)


def _default_message(code: int) -> str:
    # apimachinery's NewGenericServerResponse words unknown replies this way.
    try:
        phrase = HTTPStatus(code).phrase.lower()
    except ValueError:
        phrase = "unknown"
    return f"the server responded with the status code {code} ({phrase})"


def _default_reason(code: int) -> str:
    try:
        return HTTPStatus(code).phrase.replace(" ", "")
    except ValueError:
        return "Unknown"
