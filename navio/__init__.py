"""navio: a small, complete, Kubernetes-compatible container orchestrator."""

__version__ = "0.1.0"
KUBERNETES_VERSION = "v1.32.4"
