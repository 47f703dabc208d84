"""The WebSocket channel protocol of exec/attach (`v4.channel.k8s.io`, `v5.channel.k8s.io`).

Why: kubectl (client-go tools/remotecommand) speaks it over the API server to the kubelet;
see kubectl-compat.md §5.2 and apimachinery/pkg/util/httpstream/wsstream.

Wire format: every binary message is one channel byte followed by the payload. Channels:
0 stdin, 1 stdout, 2 stderr, 3 error (a metav1.Status as JSON, sent once at the end), 4
resize (`{"Width":W,"Height":H}`), and in v5 only 255 close (payload: the channel whose
writer is done, e.g. `\\xff\\x00` = stdin ended).

Guarantees: pure encoding and decoding; `decode` refuses empty messages; status messages
match the kubelet's (Success; Failure/NonZeroExitCode with an ExitCode cause; InternalError).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["STDIN", "STDOUT", "STDERR", "ERROR", "RESIZE", "CLOSE", "PROTOCOLS", "V5", "V4",
           "ChannelError", "decode", "encode", "exit_status", "internal_error",
           "parse_resize", "success_status"]

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255
V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
PROTOCOLS = (V5, V4)


class ChannelError(ValueError):
    """A message that is not a valid channel message."""


def encode(channel: int, payload: bytes = b"") -> bytes:
    if not 0 <= channel <= 255:
        raise ChannelError(f"invalid channel {channel}")
    return bytes((channel,)) + payload


def decode(message: bytes) -> tuple[int, bytes]:
    if not message:
        raise ChannelError("empty message")
    return message[0], bytes(message[1:])


@dataclass(frozen=True, slots=True)
class Resize:
    width: int
    height: int


def parse_resize(payload: bytes) -> Resize:
    try:
        data = json.loads(payload.decode())
        return Resize(int(data.get("Width", 0)), int(data.get("Height", 0)))
    except (ValueError, AttributeError, TypeError) as exc:
        raise ChannelError(f"invalid resize message: {exc}") from None


def _status(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def success_status() -> bytes:
    return _status({"metadata": {}, "status": "Success"})


def exit_status(code: int) -> bytes:
    return _status({"metadata": {}, "status": "Failure",
                    "message": f"command terminated with non-zero exit code: exit status {code}",
                    "reason": "NonZeroExitCode",
                    "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}})


def internal_error(message: str) -> bytes:
    return _status({"metadata": {}, "status": "Failure",
                    "message": f"Internal error occurred: {message}", "reason": "InternalError",
                    "details": {"causes": [{"message": message}]}, "code": 500})
