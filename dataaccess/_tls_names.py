"""verify-full that also accepts a list of certificate names besides the host connected to.

Why: the writer DSN names ``writer.<stack>.db.internal``, a CNAME that Route 53 ARC moves between
the regions' RDS Proxy endpoints in a failover. RDS Proxy presents a wildcard certificate for its
own endpoint (``*.proxy-<id>.<region>.rds.amazonaws.com``), which never names the CNAME, so
libpq-style verify-full (the certificate must name the host connected to) refuses every such
connection, and verify-ca would accept any certificate the CA ever signed. Here the chain is
verified against the CA as usual and the certificate must name the host connected to or one of the
accepted names (every region's proxy endpoint), checked right after the handshake, before a byte
of the protocol.

asyncio's TLS (which asyncpg uses) wraps each connection with ``SSLContext.wrap_bio``, creating an
instance of the context's ``sslobject_class``: :class:`PeerNamesContext` makes that
:class:`_PeerNamesObject`, whose ``do_handshake`` adds the name check. Only public ``ssl`` API.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterable
from typing import Any

__all__ = ["PeerNamesContext", "certificate_names_match", "peer_names_context"]


def _dns_match(pattern: str, host: str) -> bool:
    """RFC 6125 DNS-ID matching: exact, or a ``*`` that is the whole leftmost label of a pattern
    with at least two more labels (``*.example.com`` matches ``a.example.com`` only)."""
    if pattern == host:
        return True
    if not pattern.startswith("*.") or "*" in pattern[2:]:
        return False
    base = pattern[2:]
    head, dot, rest = host.partition(".")
    return bool(head) and bool(dot) and rest == base and "." in base


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _san(cert: Any, kind: str) -> list[str]:
    """The subjectAltName entries of one kind (``"DNS"``, ``"IP Address"``) of a peer certificate."""
    return [str(v) for k, v in (cert or {}).get("subjectAltName", ()) if k == kind]


def certificate_names_match(cert: Any, names: Iterable[str]) -> bool:
    """The (verified) peer certificate ``cert`` (``SSLObject.getpeercert()``) names one of
    ``names`` in its subjectAltName (DNS names, or IP addresses for IP literals). The subject's
    common name is not consulted (RFC 6125: only when there is no subjectAltName, which public
    CAs no longer issue)."""
    dns = [v.lower().rstrip(".") for v in _san(cert, "DNS")]
    ips = [_ip(v.strip()) for v in _san(cert, "IP Address")]
    for name in names:
        wanted = name.lower().rstrip(".")
        addr = _ip(wanted)
        if addr is not None:
            if addr in ips:
                return True
        elif any(_dns_match(pattern, wanted) for pattern in dns):
            return True
    return False


class _PeerNamesObject(ssl.SSLObject):
    """The TLS session of one connection: the handshake also checks the certificate's names."""

    def do_handshake(self) -> None:
        super().do_handshake()  # raises SSLWantReadError until the handshake is complete
        listed: tuple[str, ...] = getattr(self.context, "accepted_names", ())
        # The host connected to is always acceptable (plain verify-full); the list adds names.
        names = (*listed, self.server_hostname) if self.server_hostname else listed
        cert = self.getpeercert()
        if not cert or not certificate_names_match(cert, names):
            shown = sorted({*_san(cert, "DNS"), *_san(cert, "IP Address")})
            raise ssl.SSLCertVerificationError(
                f"certificate verify failed: the writer's certificate names {shown or 'nothing'}, "
                f"neither {self.server_hostname!r} nor any of writer_tls_names {list(listed)}"
            )


class PeerNamesContext(ssl.SSLContext):
    """A client context whose connections accept a certificate naming the host connected to or
    any of ``accepted_names`` (the chain is verified as usual; see the module doc). Build with
    :func:`peer_names_context`."""

    sslobject_class = _PeerNamesObject
    accepted_names: tuple[str, ...] = ()


def peer_names_context(cafile: str | None, names: Iterable[str]) -> PeerNamesContext:
    """A verify-full context that also accepts ``names``: chain verified against ``cafile`` (None:
    the system trust store), certificate must name the host connected to or one of ``names``
    (at least one required)."""
    accepted = tuple(names)
    if not accepted:
        raise ValueError("peer_names_context needs at least one accepted name")
    ctx = PeerNamesContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # the name check is _PeerNamesObject's, against every accepted name
    ctx.verify_mode = ssl.CERT_REQUIRED
    if cafile:
        ctx.load_verify_locations(cafile=cafile)
    else:
        ctx.load_default_certs()
    ctx.accepted_names = accepted
    return ctx
