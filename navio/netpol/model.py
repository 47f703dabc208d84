"""NetworkPolicy semantics as pure computation: API objects in, per-pod allow lists out.

Why: issue 14 — a NetworkPolicy the API accepts must be enforced exactly as Kubernetes
defines it. This module holds the whole meaning; `nftables.py` only renders it and
`controller.py` only feeds it. Pure and deterministic, so the semantics table is unit-tested
without a kernel.

Kubernetes' rules (networking/v1 NetworkPolicy), as computed here:
- a pod selected by no policy whose `policyTypes` holds a direction is not isolated for that
  direction: all traffic passes (`PodPolicy.ingress`/`egress` is None);
- once selected, only traffic some selecting policy's rule allows passes (an isolated pod
  with no rule gets an empty tuple: deny all); rules of all selecting policies add up;
- a rule with no peers matches every address, a rule with no ports every port; a peer is
  `podSelector` (pods of the policy's namespace), `namespaceSelector` (all pods of the
  matching namespaces), both (matching pods in matching namespaces) or `ipBlock` (`cidr`
  minus `except`);
- a port is a protocol (TCP by default; UDP, SCTP) with a number, a number range
  (`endPort`), a name, or nothing (every port of the protocol). Names resolve against the
  *destination* pod's container ports: for ingress the selected pod, for egress each peer pod
  (a named port toward an `ipBlock` or "anywhere" matches the known pods inside it only);
- peers are pods with an IP that are not host-network and have not finished; replies to
  allowed connections are allowed by the renderer (conntrack), not here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from navio.api.selectors import NOTHING, LabelSelector, label_selector_from_spec

__all__ = ["PortRange", "Peer", "Allow", "PodPolicy", "compute", "policy_types",
           "pod_ips", "ANY"]

Obj = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class PortRange:
    """A protocol and a destination port range; `first` None means every port."""
    protocol: str
    first: int | None = None
    last: int | None = None


@dataclass(frozen=True, slots=True)
class Peer:
    """An address match: `cidr` (None: any address) minus `excepts`."""
    cidr: str | None
    excepts: tuple[str, ...] = ()


ANY = Peer(None)


@dataclass(frozen=True, slots=True)
class Allow:
    """Traffic from/to any of `peers` on any of `ports` (empty `ports`: every port)."""
    peers: tuple[Peer, ...]
    ports: tuple[PortRange, ...] = ()


@dataclass(frozen=True, slots=True)
class PodPolicy:
    """One local pod's verdicts: None = not isolated in that direction (allow all)."""
    namespace: str
    name: str
    ips: tuple[str, ...]
    ingress: tuple[Allow, ...] | None
    egress: tuple[Allow, ...] | None


def _meta(obj: Obj) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def pod_ips(pod: Obj) -> tuple[str, ...]:
    """The pod's IPs when it takes part in pod networking, else ()."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    if spec.get("hostNetwork") or status.get("phase") in ("Succeeded", "Failed"):
        return ()
    if _meta(pod).get("deletionTimestamp") is not None and not status.get("podIP"):
        return ()
    ips = [p.get("ip") for p in status.get("podIPs") or [] if p.get("ip")]
    if not ips and status.get("podIP"):
        ips = [status["podIP"]]
    return tuple(ips)


def policy_types(policy: Obj) -> tuple[bool, bool]:
    """(applies to ingress, applies to egress), with the API's defaulting for unset types."""
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes")
    if not types:
        return True, bool(spec.get("egress"))
    return "Ingress" in types, "Egress" in types


def _host(ip: str) -> str:
    return f"{ip}/{ipaddress.ip_address(ip).max_prefixlen}"


# Parsed selectors by their JSON form: a memo (selectors repeat across pods and syncs).
_SELECTORS: dict[str, LabelSelector] = {}


def _parse(selector: Any) -> LabelSelector:
    key = repr(selector)
    parsed = _SELECTORS.get(key)
    if parsed is None:
        try:
            parsed = label_selector_from_spec(selector or {})
        except Exception:     # invalid selectors cannot be stored; match nothing if one is
            parsed = NOTHING
        if len(_SELECTORS) > 10000:
            _SELECTORS.clear()
        _SELECTORS[key] = parsed
    return parsed


def _selects(selector: Any, labels: Mapping[str, str] | None) -> bool:
    return _parse(selector).matches(labels or {})


class _PolicyIndex:
    """One namespace's policies, indexed by one `matchLabels` pair of their podSelector, so
    that a pod is matched only against the policies that can select it (with S pods and S
    policies, S candidates in all instead of S*S selector checks). Policies without
    matchLabels are checked against every pod. Order is the policies' own."""

    def __init__(self, policies: list[Obj]) -> None:
        self.by_pair: dict[tuple[str, str], list[tuple[int, Obj, LabelSelector]]] = {}
        self.rest: list[tuple[int, Obj, LabelSelector]] = []
        for i, pol in enumerate(policies):
            selector = (pol.get("spec") or {}).get("podSelector") or {}
            entry = (i, pol, _parse(selector))
            pairs = selector.get("matchLabels") if isinstance(selector, dict) else None
            if pairs and isinstance(pairs, dict):
                k = min(pairs)
                self.by_pair.setdefault((k, str(pairs[k])), []).append(entry)
            else:
                self.rest.append(entry)

    def selecting(self, labels: Mapping[str, str]) -> list[Obj]:
        found = list(self.rest)
        for pair in labels.items():
            found += self.by_pair.get(pair, ())
        found.sort(key=lambda e: e[0])
        return [pol for _, pol, parsed in found if parsed.matches(labels)]


class _World:
    """Indexes of the cluster's pods and namespaces for one computation."""

    def __init__(self, pods: Iterable[Obj], namespaces: Iterable[Obj]) -> None:
        self.ns_labels = {_meta(n).get("name", ""): _meta(n).get("labels") or {}
                          for n in namespaces}
        self.pods = [p for p in pods if pod_ips(p)]
        self._peer_cache: dict[tuple[str, str], tuple[tuple[Peer, ...], list[Obj]]] = {}

    def peers(self, policy_ns: str, peers: list[Obj]) -> tuple[tuple["Peer", ...], list[Obj]]:
        """`_peers_of`, computed once per distinct (namespace, peers) in this computation."""
        key = (policy_ns, repr(peers))
        hit = self._peer_cache.get(key)
        if hit is None:
            hit = self._peer_cache[key] = _peers_of(self, policy_ns, peers)
        return hit

    def peer_pods(self, policy_ns: str, peer: Obj) -> list[Obj]:
        pod_sel, ns_sel = peer.get("podSelector"), peer.get("namespaceSelector")
        out = []
        for p in self.pods:
            ns = _meta(p).get("namespace", "")
            if ns_sel is None:
                if ns != policy_ns:
                    continue
            elif ns not in self.ns_labels or not _selects(ns_sel, self.ns_labels[ns]):
                continue
            if pod_sel is not None and not _selects(pod_sel, _meta(p).get("labels")):
                continue
            out.append(p)
        return out


def _named_port(pod: Obj, name: str, protocol: str) -> int | None:
    for c in (pod.get("spec") or {}).get("containers") or []:
        for port in c.get("ports") or []:
            if port.get("name") == name and (port.get("protocol") or "TCP") == protocol:
                return int(port["containerPort"])
    return None


def _ports(ports: list[Obj], dest: Obj | None) -> tuple[PortRange, ...] | None:
    """The rule's ports as ranges toward destination pod `dest`, or None when a named port is
    listed and `dest` is unknown (the caller then resolves per destination pod). A named port
    `dest` lacks is dropped: a non-empty port list that comes out empty matches nothing."""
    out: list[PortRange] = []
    for p in ports:
        proto = p.get("protocol") or "TCP"
        value = p.get("port")
        if value is None:
            out.append(PortRange(proto))
        elif isinstance(value, int):
            end = p.get("endPort")
            out.append(PortRange(proto, value, end if end is not None else value))
        else:
            if dest is None:
                return None
            num = _named_port(dest, str(value), proto)
            if num is not None:
                out.append(PortRange(proto, num, num))
    return tuple(out)


def _peers_of(world: _World, policy_ns: str, peers: list[Obj]
              ) -> tuple[tuple[Peer, ...], list[Obj]]:
    """Address matches and the pods behind them (for named-port resolution)."""
    matches: list[Peer] = []
    pods: list[Obj] = []
    for peer in peers:
        block = peer.get("ipBlock")
        if block is not None:
            matches.append(Peer(block.get("cidr", ""), tuple(block.get("except") or ())))
            continue
        for p in world.peer_pods(policy_ns, peer):
            pods.append(p)
            matches.extend(Peer(_host(ip)) for ip in pod_ips(p))
    # One tuple per distinct peer group, shared by every allow list built from it (tuple()
    # of a tuple is itself): the renderer caches its set by the tuple's identity.
    return tuple(matches), pods


def _in_peer(ip: str, peer: Peer) -> bool:
    addr = ipaddress.ip_address(ip)
    if peer.cidr is None:
        return True
    try:
        if addr not in ipaddress.ip_network(peer.cidr, strict=False):
            return False
        return not any(addr in ipaddress.ip_network(e, strict=False) for e in peer.excepts)
    except (ValueError, TypeError):
        return False


def _ingress_rule(world: _World, ns: str, rule: Obj, pod: Obj) -> Allow | None:
    ports_spec = rule.get("ports") or []
    ports = _ports(ports_spec, pod)
    if ports_spec and not ports:
        return None                  # only named ports this pod does not have
    peers_spec = rule.get("from") or []
    if not peers_spec:
        return Allow((ANY,), ports or ())
    matches, _ = world.peers(ns, peers_spec)
    return Allow(tuple(matches), ports or ()) if matches else None


def _egress_rule(world: _World, ns: str, rule: Obj) -> list[Allow]:
    ports_spec = rule.get("ports") or []
    peers_spec = rule.get("to") or []
    ports = _ports(ports_spec, None)
    if ports is not None:            # numbered ports only
        if ports_spec and not ports:
            return []
        if not peers_spec:
            return [Allow((ANY,), ports)]
        matches, _ = world.peers(ns, peers_spec)
        return [Allow(tuple(matches), ports)] if matches else []
    # Named ports: resolve against each destination pod.
    if peers_spec:
        _, dests = world.peers(ns, peers_spec)
        blocks = [Peer(b["ipBlock"].get("cidr", ""), tuple(b["ipBlock"].get("except") or ()))
                  for b in peers_spec if b.get("ipBlock") is not None]
        dests = dests + [p for p in world.pods
                         if any(_in_peer(ip, b) for ip in pod_ips(p) for b in blocks)]
    else:
        dests = list(world.pods)
    out: list[Allow] = []
    seen: set[str] = set()
    for dest in dests:
        key = f"{_meta(dest).get('namespace')}/{_meta(dest).get('name')}"
        if key in seen:
            continue
        seen.add(key)
        dports = _ports(ports_spec, dest)
        if dports:
            out.append(Allow(tuple(Peer(_host(ip)) for ip in pod_ips(dest)), dports))
    return out


def compute(local_pods: Iterable[Obj], pods: Iterable[Obj], namespaces: Iterable[Obj],
            policies: Iterable[Obj]) -> list[PodPolicy]:
    """Each local pod's ingress and egress allow lists under `policies` (all namespaces)."""
    world = _World(pods, namespaces)
    by_ns_list: dict[str, list[Obj]] = {}
    for pol in policies:
        by_ns_list.setdefault(_meta(pol).get("namespace", ""), []).append(pol)
    by_ns = {ns: _PolicyIndex(pols) for ns, pols in by_ns_list.items()}
    out: list[PodPolicy] = []
    egress_cache: dict[tuple[str, str], list[Allow]] = {}
    for pod in local_pods:
        ips = pod_ips(pod)
        if not ips:
            continue
        ns, labels = _meta(pod).get("namespace", ""), _meta(pod).get("labels") or {}
        ingress: list[Allow] | None = None
        egress: list[Allow] | None = None
        index = by_ns.get(ns)
        for pol in index.selecting(labels) if index is not None else ():
            spec = pol.get("spec") or {}
            does_in, does_out = policy_types(pol)
            if does_in:
                ingress = ingress if ingress is not None else []
                for rule in spec.get("ingress") or []:
                    allow = _ingress_rule(world, ns, rule, pod)
                    if allow is not None:
                        ingress.append(allow)
            if does_out:
                egress = egress if egress is not None else []
                for rule in spec.get("egress") or []:
                    key = (ns, repr(rule))       # egress rules do not depend on the source
                    if key not in egress_cache:
                        egress_cache[key] = _egress_rule(world, ns, rule)
                    egress.extend(egress_cache[key])
        out.append(PodPolicy(ns, _meta(pod).get("name", ""), ips,
                             None if ingress is None else tuple(ingress),
                             None if egress is None else tuple(egress)))
    return out
