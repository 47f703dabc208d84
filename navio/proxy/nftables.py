"""nftables rules for service ports, in kube-proxy's nftables layout, as text for `nft -f`.

Why: the kernel does the forwarding; this module only says what the table `ip navio-proxy`
must contain, so that it can be tested without a kernel (pkg/proxy/nftables/proxier.go).

Layout (kube-proxy's names): `services` dispatches `ip daddr . meta l4proto . th dport` through
the verdict map `service-ips` (and NodePorts on local addresses through `service-nodeports`) to
a per-port chain `service-…` (Cluster policy) or `local-…` (Local policy); external traffic goes
through `external-…` first. A policy chain picks an endpoint chain `endpoint-…` with
`numgen random mod N vmap`, after ClientIP-affinity lookups in per-endpoint timeout sets
`affinity-…`; the endpoint chain marks hairpin traffic for masquerade, refreshes affinity and
DNATs. Ports without endpoints are rejected (or dropped, for an empty Local policy) by the
filter chains through `no-endpoint-services` / `no-endpoint-nodeports`; other ports of a
cluster IP are rejected and unallocated service-CIDR addresses dropped (`cluster-ips-check`),
except addresses local to the node (the node-local DNS Service address on `lo`).

What is guaranteed:
- Pure and deterministic: equal inputs render equal text.
- `full_transaction` replaces the whole table in one atomic transaction (`delete table` then
  rebuild), for start-up and recovery. `delta_transaction` turns the old rendering of the
  changed services into the new one: it touches only chains, sets and map elements that differ,
  in an order the kernel accepts in one transaction (flush before delete, delete elements before
  the chains they name, create chains and sets before rules and elements refer to them).
  Applying the delta to a table that holds the old state gives the same table as a full load of
  the new state (tests check this against the kernel).
- Stale chains are deleted in the same transaction as the references to them go. kube-proxy
  defers that by a second for kernels before 6.2; navio's platform runs a newer kernel, and a
  failed delta makes the caller fall back to a full transaction.
- Refusals: `reject-chain` answers TCP with a reset (kube-proxy sends ICMP port-unreachable,
  which the kernel swallows for packets forwarded across a br_netfilter bridge) and other
  protocols with ICMP; a UDP client behind such a bridge therefore sees a timeout.
- nft 1.0.6 syntax: numeric base-chain priorities (`dstnat` is refused in output nat chains),
  `meta l4proto` before `dnat to ip:port`, every `}` after `;` or a newline.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from navio.proxy.model import Endpoint, ServicePort

__all__ = ["TABLE", "FAMILY", "RuleOptions", "Fragment", "render_service",
           "full_transaction", "delta_transaction", "cleanup_transaction", "setup_commands"]

FAMILY = "ip"
TABLE = "navio-proxy"
_T = f"{FAMILY} {TABLE}"

SERVICES = "services"
SERVICE_IPS = "service-ips"
SERVICE_NODEPORTS = "service-nodeports"
NODEPORT_IPS = "nodeport-ips"
CLUSTER_IPS = "cluster-ips"
CLUSTER_IPS_CHECK = "cluster-ips-check"
SERVICE_EP_CHECK = "service-endpoints-check"
NODEPORT_EP_CHECK = "nodeport-endpoints-check"
NO_EP_SERVICES = "no-endpoint-services"
NO_EP_NODEPORTS = "no-endpoint-nodeports"
REJECT_CHAIN = "reject-chain"
MARK_MASQ = "mark-for-masquerade"
MASQUERADING = "masquerading"

# Base chains: (name, type, hook, priority). Numeric priorities: nft 1.0.6 refuses `dstnat`
# in output nat chains. filter-* run before DNAT (-110), on pre-DNAT addresses.
_BASE_CHAINS = (
    ("filter-input", "filter", "input", -110),
    ("filter-forward", "filter", "forward", -110),
    ("filter-output", "filter", "output", -110),
    ("filter-output-post-dnat", "filter", "output", -90),
    ("nat-prerouting", "nat", "prerouting", -100),
    ("nat-output", "nat", "output", -100),
    ("nat-postrouting", "nat", "postrouting", 100),
)
_JUMPS = (  # (target, from, match)
    (NODEPORT_EP_CHECK, "filter-input", "ct state new "),
    (SERVICE_EP_CHECK, "filter-input", "ct state new "),
    (SERVICE_EP_CHECK, "filter-forward", "ct state new "),
    (SERVICE_EP_CHECK, "filter-output", "ct state new "),
    (SERVICES, "nat-output", ""),
    (SERVICES, "nat-prerouting", ""),
    (MASQUERADING, "nat-postrouting", ""),
    (CLUSTER_IPS_CHECK, "filter-forward", "ct state new "),
    (CLUSTER_IPS_CHECK, "filter-output-post-dnat", "ct state new "),
)
_ADDR_PROTO_PORT = "ipv4_addr . inet_proto . inet_service : verdict"
_ELEMENT_BATCH = 500


@dataclass(frozen=True, slots=True)
class RuleOptions:
    """Node-wide choices that shape the rules (kube-proxy flags of the same meaning)."""

    cluster_cidr: str | None = None       # --cluster-cidr: pod traffic is not masqueraded
    service_cidr: str | None = None       # unallocated cluster IPs are dropped
    masquerade_all: bool = False          # --masquerade-all
    masquerade_bit: int = 14              # --masquerade-bit
    nodeport_addresses: tuple[str, ...] = ()   # node IPs for NodePorts; () = every local IP

    @property
    def mark(self) -> str:
        return f"{1 << self.masquerade_bit:#08x}"


@dataclass(frozen=True, slots=True)
class Fragment:
    """Everything one Service puts in the table. Treat the mappings as read-only.

    chains: name → rules (in order); sets: affinity set name → timeout seconds;
    elements: (map or set, key) → verdict ('' for a set element), plus its comment."""

    chains: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    sets: Mapping[str, int] = field(default_factory=dict)
    elements: Mapping[tuple[str, str], tuple[str, str]] = field(default_factory=dict)


_EMPTY = Fragment()


@functools.lru_cache(maxsize=1 << 16)
def _hashed(name: str) -> str:
    """kube-proxy's hashAndTruncate: an 8-character hash prefix keeps names distinct and
    readable; nft names are at most 256 bytes and our prefixes at most 16."""
    digest = base64.b32encode(hashlib.sha256(name.encode()).digest()).decode()
    name = f"{digest[:8]}-{name}"
    return name if len(name) <= 240 else name[:237] + "..."


def _port_base(sp: ServicePort) -> str:
    return _hashed(f"{sp.namespace}/{sp.name}/{sp.protocol.lower()}/{sp.port_name}")


def _endpoint_base(sp: ServicePort, ep: Endpoint) -> str:
    return _hashed(f"{sp.namespace}/{sp.name}/{sp.protocol.lower()}/{sp.port_name}"
                   f"__{ep.ip}/{ep.port}")


def setup_commands(opts: RuleOptions) -> list[str]:
    """The table's fixed part; every command is an idempotent `add`."""
    out = [f'add table {_T} {{ comment "rules for navio proxy" ; }}']
    for name, kind, hook, prio in _BASE_CHAINS:
        out.append(f"add chain {_T} {name} {{ type {kind} hook {hook} priority {prio} ; "
                   "policy accept ; }")
    for name in (NODEPORT_EP_CHECK, SERVICE_EP_CHECK, SERVICES, MASQUERADING, MARK_MASQ,
                 CLUSTER_IPS_CHECK):
        out.append(f"add chain {_T} {name}")
    out.append(f'add chain {_T} {REJECT_CHAIN} {{ comment "helper for @{NO_EP_SERVICES} / '
               f'@{NO_EP_NODEPORTS}" ; }}')
    # TCP gets a reset: with br_netfilter (pods on a Linux bridge) the kernel drops the ICMP
    # error that a plain `reject` makes for forwarded packets, and the client would hang
    # instead of being refused. Other protocols keep kube-proxy's ICMP port-unreachable.
    out.append(f"add rule {_T} {REJECT_CHAIN} meta l4proto tcp reject with tcp reset")
    out.append(f"add rule {_T} {REJECT_CHAIN} reject")
    for target, source, match in _JUMPS:
        out.append(f"add rule {_T} {source} {match}jump {target}")
    mark = opts.mark
    out += [f"add rule {_T} {MARK_MASQ} mark set mark or {mark}",
            f"add rule {_T} {MASQUERADING} mark and {mark} == 0 return",
            f"add rule {_T} {MASQUERADING} mark set mark xor {mark}",
            f"add rule {_T} {MASQUERADING} masquerade fully-random"]
    out += [f'add set {_T} {CLUSTER_IPS} {{ type ipv4_addr ; comment "Active ClusterIPs" ; }}',
            # A service address held by the node itself (the node-local DNS on `lo`, whose
            # Service names another proxy) is served locally, not checked.
            f"add rule {_T} {CLUSTER_IPS_CHECK} fib daddr type local return",
            f"add rule {_T} {CLUSTER_IPS_CHECK} ip daddr @{CLUSTER_IPS} goto {REJECT_CHAIN}"]
    if opts.service_cidr:
        out.append(f"add rule {_T} {CLUSTER_IPS_CHECK} ip daddr {{ {opts.service_cidr} }} drop")
    out += [f'add map {_T} {NO_EP_SERVICES} {{ type {_ADDR_PROTO_PORT} ; comment "vmap to drop '
            'or reject packets to services with no endpoints" ; }',
            f'add map {_T} {NO_EP_NODEPORTS} {{ type inet_proto . inet_service : verdict ; '
            'comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }',
            f'add map {_T} {SERVICE_IPS} {{ type {_ADDR_PROTO_PORT} ; comment "ClusterIP, '
            'ExternalIP and LoadBalancer IP traffic" ; }',
            f'add map {_T} {SERVICE_NODEPORTS} {{ type inet_proto . inet_service : verdict ; '
            'comment "NodePort traffic" ; }',
            f"add rule {_T} {SERVICE_EP_CHECK} ip daddr . meta l4proto . th dport "
            f"vmap @{NO_EP_SERVICES}",
            f"add rule {_T} {SERVICES} ip daddr . meta l4proto . th dport vmap @{SERVICE_IPS}"]
    if opts.nodeport_addresses:
        ips = ", ".join(opts.nodeport_addresses)
        out += [f'add set {_T} {NODEPORT_IPS} {{ type ipv4_addr ; comment "IPs that accept '
                'NodePort traffic" ; }', f"add element {_T} {NODEPORT_IPS} {{ {ips} }}"]
        local = f"ip daddr @{NODEPORT_IPS}"
    else:
        local = "fib daddr type local ip daddr != 127.0.0.0/8"
    out += [f"add rule {_T} {NODEPORT_EP_CHECK} {local} meta l4proto . th dport "
            f"vmap @{NO_EP_NODEPORTS}",
            f"add rule {_T} {SERVICES} {local} meta l4proto . th dport vmap @{SERVICE_NODEPORTS}"]
    return out


def render_service(ports: Iterable[ServicePort], opts: RuleOptions) -> Fragment:
    """The chains, affinity sets and map elements of one Service's ports."""
    chains: dict[str, tuple[str, ...]] = {}
    sets: dict[str, int] = {}
    elements: dict[tuple[str, str], tuple[str, str]] = {}
    for sp in ports:
        _render_port(sp, opts, chains, sets, elements)
    return Fragment(chains, sets, elements)


def _render_port(sp: ServicePort, opts: RuleOptions, chains: dict[str, tuple[str, ...]],
                 sets: dict[str, int], elements: dict[tuple[str, str], tuple[str, str]]) -> None:
    proto = sp.protocol.lower()
    base = _port_base(sp)
    cluster_chain, local_chain, external_chain = (f"service-{base}", f"local-{base}",
                                                  f"external-{base}")
    cluster_eps, local_eps, has_eps = sp.cluster_endpoints, sp.local_endpoints, sp.has_endpoints
    uses_cluster = bool(cluster_eps) and sp.uses_cluster_endpoints
    uses_local = bool(local_eps) and sp.uses_local_endpoints
    internal_chain = local_chain if sp.internal_policy_local else cluster_chain
    has_internal = has_eps and (not sp.internal_policy_local or bool(local_eps))
    external_policy_chain = local_chain if sp.external_policy_local else cluster_chain
    has_external = has_eps and (not sp.external_policy_local or bool(local_eps))
    uses_external = has_eps and sp.externally_accessible
    if not has_eps:
        internal_verdict = external_verdict = f"goto {REJECT_CHAIN}"
    else:
        internal_verdict = external_verdict = "drop"
    comment = str(sp)

    elements[(CLUSTER_IPS, sp.cluster_ip)] = ("", "")
    key = f"{sp.cluster_ip} . {proto} . {sp.port}"
    if has_internal:
        elements[(SERVICE_IPS, key)] = (f"goto {internal_chain}", "")
    else:
        elements[(NO_EP_SERVICES, key)] = (internal_verdict, comment)
    for ip in sp.external_ips + sp.load_balancer_ips:
        key = f"{ip} . {proto} . {sp.port}"
        if has_eps:
            elements[(SERVICE_IPS, key)] = (f"goto {external_chain}", "")
        if not has_external:
            elements[(NO_EP_SERVICES, key)] = (external_verdict, comment)
    if sp.node_port:
        key = f"{proto} . {sp.node_port}"
        if has_eps:
            elements[(SERVICE_NODEPORTS, key)] = (f"goto {external_chain}", "")
        if not has_external:
            elements[(NO_EP_NODEPORTS, key)] = (external_verdict, comment)

    # Rules of the policy chains: masquerade where needed, then endpoint selection.
    policy_rules: dict[str, list[str]] = {}
    if uses_cluster:
        policy_rules[cluster_chain] = []
    if uses_local:
        policy_rules[local_chain] = []
    if has_internal and internal_chain in policy_rules:
        match = f"ip daddr {sp.cluster_ip} {proto} dport {sp.port}"
        if opts.masquerade_all:
            policy_rules[internal_chain].append(f"{match} jump {MARK_MASQ}")
        elif opts.cluster_cidr:
            # Off-cluster sources reaching a cluster IP through this node are masqueraded, so
            # that replies come back through it.
            policy_rules[internal_chain].append(
                f"{match} ip saddr != {opts.cluster_cidr} jump {MARK_MASQ}")
    if uses_external:
        rules = []
        if not sp.external_policy_local:
            rules.append(f"jump {MARK_MASQ}")
        else:
            if opts.cluster_cidr:
                rules.append(f'ip saddr {opts.cluster_cidr} goto {cluster_chain} '
                             'comment "short-circuit pod traffic"')
            rules.append(f'fib saddr type local jump {MARK_MASQ} '
                         'comment "masquerade local traffic"')
            rules.append(f'fib saddr type local goto {cluster_chain} '
                         'comment "short-circuit local traffic"')
        if has_external:
            rules.append(f"goto {external_policy_chain}")
        chains[external_chain] = tuple(rules)

    reachable = sp.reachable_endpoints
    names = {str(ep): _endpoint_base(sp, ep) for ep in reachable}
    if sp.affinity_timeout:
        for ep in reachable:
            sets[f"affinity-{names[str(ep)]}"] = sp.affinity_timeout
    for chain, eps in ((cluster_chain, cluster_eps), (local_chain, local_eps)):
        if chain not in policy_rules:
            continue
        rules = policy_rules[chain]
        if sp.affinity_timeout:
            rules += [f"ip saddr @affinity-{names[str(ep)]} goto endpoint-{names[str(ep)]}"
                      for ep in eps]
        vmap = ", ".join(f"{i} : goto endpoint-{names[str(ep)]}" for i, ep in enumerate(eps))
        rules.append(f"numgen random mod {len(eps)} vmap {{ {vmap} }}")
        chains[chain] = tuple(rules)
    for ep in reachable:
        name = names[str(ep)]
        rules = [f"ip saddr {ep.ip} jump {MARK_MASQ}"]      # hairpin: the pod calls itself
        if sp.affinity_timeout:
            rules.append(f"update @affinity-{name} {{ ip saddr }}")
        rules.append(f"meta l4proto {proto} dnat to {ep.ip}:{ep.port}")
        chains[f"endpoint-{name}"] = tuple(rules)


def _element_lines(verb: str, items: Iterable[tuple[tuple[str, str], tuple[str, str]]]
                   ) -> list[str]:
    by_container: dict[str, list[str]] = {}
    for (container, key), (value, comment) in items:
        text = key
        if verb == "add":
            if comment:
                text += f' comment "{comment}"'
            if value:
                text += f" : {value}"
        by_container.setdefault(container, []).append(text)
    out = []
    for container, texts in by_container.items():
        for i in range(0, len(texts), _ELEMENT_BATCH):
            out.append(f"{verb} element {_T} {container} {{ "
                       f"{', '.join(texts[i:i + _ELEMENT_BATCH])} }}")
    return out


def _set_decl(name: str, timeout: int) -> str:
    return (f"add set {_T} {name} {{ type ipv4_addr ; flags dynamic,timeout ; "
            f"timeout {timeout}s ; }}")


def delta_transaction(changes: Iterable[tuple[Fragment | None, Fragment | None]]) -> str:
    """The commands that turn each old fragment into its new one (None: absent); '' if
    nothing differs. An element key claimed by two services goes to the first."""
    flush: list[str] = []
    del_elements: list[tuple[tuple[str, str], tuple[str, str]]] = []
    delete: list[str] = []
    create: list[str] = []
    rules: list[str] = []
    add_elements: dict[tuple[str, str], tuple[str, str]] = {}
    for old, new in changes:
        old, new = old or _EMPTY, new or _EMPTY
        if old is new:
            continue
        changed_sets = {n for n, t in old.sets.items() if new.sets.get(n) != t}
        for name, timeout in new.sets.items():
            if old.sets.get(name) != timeout:
                create.append(_set_decl(name, timeout))
        for name in changed_sets:
            delete.append(f"delete set {_T} {name}")
        refs = tuple(f"@{n} " for n in changed_sets)
        for name, old_rules in old.chains.items():
            new_rules = new.chains.get(name)
            stale = refs and any(r in rule for rule in old_rules for r in refs)
            if new_rules == old_rules and not stale:
                continue
            flush.append(f"flush chain {_T} {name}")
            if new_rules is None:
                delete.append(f"delete chain {_T} {name}")
            else:
                rules += [f"add rule {_T} {name} {r}" for r in new_rules]
        for name, new_rules in new.chains.items():
            if name not in old.chains:
                create.append(f"add chain {_T} {name}")
                rules += [f"add rule {_T} {name} {r}" for r in new_rules]
        for k, v in old.elements.items():
            nv = new.elements.get(k)
            if nv is None or nv[0] != v[0]:
                del_elements.append((k, v))
        for k, v in new.elements.items():
            ov = old.elements.get(k)
            if (ov is None or ov[0] != v[0]) and k not in add_elements:
                add_elements[k] = v
    lines = (flush + _element_lines("delete", del_elements) + delete + create + rules
             + _element_lines("add", add_elements.items()))
    return "\n".join(lines) + "\n" if lines else ""


def full_transaction(fragments: Iterable[Fragment], opts: RuleOptions) -> str:
    """One atomic transaction that replaces the whole table with `fragments`."""
    merged_elements: dict[tuple[str, str], tuple[str, str]] = {}
    changes: list[tuple[Fragment | None, Fragment | None]] = []
    for frag in fragments:
        # Element keys are de-duplicated across services here (first wins), so that two
        # services claiming one external IP:port cannot make the whole load fail.
        own = {k: v for k, v in frag.elements.items() if k not in merged_elements}
        merged_elements.update(own)
        changes.append((None, Fragment(frag.chains, frag.sets, own)))
    head = [f"add table {_T}", f"delete table {_T}"] + setup_commands(opts)
    return "\n".join(head) + "\n" + delta_transaction(changes)


def cleanup_transaction() -> str:
    """Remove the table; safe when it does not exist."""
    return f"add table {_T}\ndelete table {_T}\n"
