"""DNS queries in, DNS responses out, from the record set (dnspython wire format; no I/O).

Why: the server's sockets only move bytes; every protocol decision lives here, so that it can be
tested without sockets and answered synchronously on the hot path (no task per query).

What is guaranteed:
- A datagram that is not a query (shorter than a header, or with QR set) gets no answer, so
  the server can never be made to answer answers. A query that does not parse gets FORMERR
  (header only) when its header is readable.
- One question of class IN with opcode QUERY and EDNS version 0 is answered; otherwise FORMERR,
  REFUSED (other classes, zone transfers), NOTIMP (other opcodes) or BADVERS.
- Names the record set is authoritative for are answered from it with AA set; all responses
  set RA, since other names are forwarded. Until the record set has synced, its names get
  SERVFAIL rather than a false NXDOMAIN. Other names, and CNAME targets outside the cluster
  zone, come back as a `Deferred` for the server to resolve upstream and `finish`.
- UDP responses fit 512 bytes, or the client's EDNS payload up to 1232 bytes (DNS flag day
  2020); TCP responses up to 65535. A response that does not fit is cut at whole RRsets, with
  TC set when the answer or authority section was cut (RFC 2181 §9), so the client retries
  over TCP.
- Rendered authoritative responses are cached by transport and query bytes after the ID, and
  the cache is dropped whenever the record set's generation moves; at most `cache_size`
  entries are kept.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from navio.dns.records import Answer, RecordSet

__all__ = ["Responder", "Deferred", "UDP_PAYLOAD"]

UDP_PAYLOAD = 1232
_TCP_MAX = 65535
_NO_EDNS_MAX = 512
_TRANSFERS = (dns.rdatatype.AXFR, dns.rdatatype.IXFR)


@dataclass(frozen=True, slots=True)
class Deferred:
    """A query that needs an upstream answer for (`qname`, `rdtype`). `partial` is the CNAME
    chain answered so far (an ExternalName service), or None for a plain forward."""
    query: dns.message.Message
    qname: dns.name.Name
    rdtype: int
    max_size: int
    partial: Answer | None = None


class Responder:
    def __init__(self, records: RecordSet, *, cache_size: int = 4096) -> None:
        self.records = records
        self.cache_size = cache_size
        self._cache: dict[tuple[bool, bytes], bytes] = {}
        self._generation = -1

    def respond(self, wire: bytes, *, tcp: bool) -> bytes | Deferred | None:
        """The response to one query: bytes, a Deferred to resolve upstream, or None (drop)."""
        if len(wire) < 12 or wire[2] & 0x80:
            return None
        if self._generation != self.records.generation:
            self._cache.clear()
            self._generation = self.records.generation
        key = (tcp, wire[2:])
        hit = self._cache.get(key)
        if hit is not None:
            return wire[:2] + hit
        try:
            query = dns.message.from_wire(wire)
        except Exception:   # malformed input can fail anywhere in the parser
            return _formerr(wire)
        max_size = _max_size(query, tcp)
        error = _check(query)
        if error is not None:
            return self._error(query, error, max_size)
        question = query.question[0]
        answer = self.records.lookup(question.name, question.rdtype)
        if answer is None:
            return Deferred(query, question.name, question.rdtype, max_size)
        if not self.records.synced:
            return self._error(query, dns.rcode.SERVFAIL, max_size)
        if answer.chase is not None:
            return Deferred(query, answer.chase, question.rdtype, max_size, answer)
        out = _render(_build(query, answer), max_size)
        if self.cache_size:
            if len(self._cache) >= self.cache_size:
                self._cache.clear()
            self._cache[key] = out[2:]
        return out

    def finish(self, deferred: Deferred, upstream: dns.message.Message | None, *,
               rcode: int = dns.rcode.SERVFAIL) -> bytes:
        """The response to a deferred query given the upstream answer (None: it failed)."""
        partial = deferred.partial
        if partial is not None:
            if upstream is None:        # as CoreDNS: the CNAME alone when the target fails
                return _render(_build(deferred.query, partial), deferred.max_size)
            final = upstream.rcode() if upstream.rcode() == dns.rcode.NXDOMAIN else \
                dns.rcode.NOERROR
            merged = Answer(final, (*partial.answer, *upstream.answer),
                            () if upstream.answer else tuple(upstream.authority))
            return _render(_build(deferred.query, merged), deferred.max_size)
        if upstream is None:
            return self._error(deferred.query, rcode, deferred.max_size)
        response = _response(deferred.query)
        response.set_rcode(upstream.rcode())
        if deferred.query.flags & dns.flags.AD or deferred.query.ednsflags & dns.flags.DO:
            response.flags |= upstream.flags & dns.flags.AD
        response.answer = list(upstream.answer)
        response.authority = list(upstream.authority)
        response.additional = list(upstream.additional)
        return _render(response, deferred.max_size)

    def error(self, deferred: Deferred, rcode: int) -> bytes:
        """An error response (SERVFAIL, REFUSED) to a deferred query."""
        return self._error(deferred.query, rcode, deferred.max_size)

    @staticmethod
    def _error(query: dns.message.Message, rcode: int, max_size: int) -> bytes:
        response = _response(query)
        response.set_rcode(dns.rcode.Rcode(rcode))
        return _render(response, max_size)


def _check(query: dns.message.Message) -> int | None:
    if query.opcode() != dns.opcode.QUERY:
        return dns.rcode.NOTIMP
    if query.edns > 0:
        return dns.rcode.BADVERS
    if len(query.question) != 1:
        return dns.rcode.FORMERR
    question = query.question[0]
    if question.rdclass != dns.rdataclass.IN or question.rdtype in _TRANSFERS:
        return dns.rcode.REFUSED
    return None


def _max_size(query: dns.message.Message, tcp: bool) -> int:
    if tcp:
        return _TCP_MAX
    if query.edns >= 0:
        return max(_NO_EDNS_MAX, min(query.payload, UDP_PAYLOAD))
    return _NO_EDNS_MAX


def _response(query: dns.message.Message) -> dns.message.Message:
    response = dns.message.make_response(query, recursion_available=True,
                                         our_payload=UDP_PAYLOAD)
    response.flags |= query.flags & dns.flags.CD
    return response


def _build(query: dns.message.Message, answer: Answer) -> dns.message.Message:
    response = _response(query)
    response.flags |= dns.flags.AA
    response.set_rcode(dns.rcode.Rcode(answer.rcode))
    response.answer = list(answer.answer)
    response.authority = list(answer.authority)
    response.additional = list(answer.additional)
    return response


def _render(response: dns.message.Message, max_size: int) -> bytes:
    return response.to_wire(max_size=max_size, prefer_truncation=True)


def _formerr(wire: bytes) -> bytes:
    """A header-only FORMERR for a query dnspython could not parse."""
    qid, flags = struct.unpack_from("!HH", wire)
    flags = (flags & 0x7900) | 0x8000 | dns.rcode.FORMERR   # keep opcode and RD; set QR
    return struct.pack("!HHHHHH", qid, flags, 0, 0, 0, 0)
