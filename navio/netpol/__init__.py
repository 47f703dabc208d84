"""NetworkPolicy enforcement by every agent (issue 14): `model` computes each local pod's
allow lists from the API objects, `nftables` renders them as one nftables table, and
`controller` keeps that table in step with pods, namespaces and policies."""

from navio.netpol.model import Allow, Peer, PodPolicy, PortRange, compute

__all__ = ["Allow", "Peer", "PodPolicy", "PortRange", "compute"]
