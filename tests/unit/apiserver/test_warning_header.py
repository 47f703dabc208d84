"""Warning headers are quoted-strings kubectl can parse (it drops malformed ones)."""

from __future__ import annotations

from navio.apiserver.handlers import warning_header


def test_quotes_backslashes_and_newlines_are_escaped() -> None:
    assert warning_header('unknown field "spec.foo"') == \
        '299 - "unknown field \\"spec.foo\\""'
    assert warning_header("a\\b\nc") == '299 - "a\\\\b c"'
