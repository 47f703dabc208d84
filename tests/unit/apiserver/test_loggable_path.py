"""Error logs name the request, never a secret (issue 3: no secret names in logs)."""

from __future__ import annotations

from navio.apiserver.app import loggable_path


def test_a_secret_name_is_cut_from_logged_paths() -> None:
    assert loggable_path("/api/v1/namespaces/ns/secrets/db-password") == \
        "/api/v1/namespaces/ns/secrets/…"
    assert loggable_path("/api/v1/namespaces/ns/secrets/db-password/status") == \
        "/api/v1/namespaces/ns/secrets/…"
    assert loggable_path("/api/v1/namespaces/ns/secrets") == "/api/v1/namespaces/ns/secrets"
    assert loggable_path("/api/v1/namespaces/ns/configmaps/c") == \
        "/api/v1/namespaces/ns/configmaps/c"
