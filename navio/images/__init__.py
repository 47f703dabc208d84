"""Container images: references, a registry client, a content-addressed store, tarball import.

Why: issue 11 — the `oci` runtime runs real images. This package knows nothing of pods or
runtimes: it pulls, imports, lists, removes and unpacks images and hands out root filesystems.
"""
