"""Container runtimes behind one CRI-shaped protocol (protocol.py): `process` (host processes,
namespaced when root), `sim` (runs nothing). Only the kubelet imports this package.

Nothing is imported here on purpose: the pause, supervisor and exec helpers are started as
`python -m navio.runtime.<helper>` and must stay small and quick to start.
"""
