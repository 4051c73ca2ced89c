"""Resolve wiring values (ARNs, ids, endpoints, names) back to the resources that produced them.

Under the mock engine every computed attribute is a readable string derived from the logical
name (``commerce_db.mock_engine.RecordingMocks``), so an input such as ``replicateSourceDb`` or
an export such as ``writerEndpoint`` can be traced to the registered resource it came from.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from commerce_db.mock_engine import RegisteredResource, SecretValue
from commerce_db.policy_rules.inputs import short_type

# State keys that identify a resource strongly; "name" is weaker (many types share names).
_STRONG_KEYS = (
    "arn",
    "id",
    "endpoint",
    "address",
    "identifier",
    "clusterIdentifier",
    "primaryEndpointAddress",
    "readerEndpointAddress",
    "configurationEndpointAddress",
    "globalReplicationGroupId",
    "keyId",
    "bucket",
)


class RefIndex:
    """Maps attribute strings to the resource (and attribute) that produced them."""

    def __init__(self, resources: Iterable[RegisteredResource]) -> None:
        self._strong: dict[str, tuple[RegisteredResource, str]] = {}
        self._weak: dict[str, list[RegisteredResource]] = {}
        for r in resources:
            if not r.custom:
                continue
            state = r.state or {}
            for key in _STRONG_KEYS:
                v = state.get(key)
                if isinstance(v, str) and v and v not in self._strong:
                    self._strong[v] = (r, key)
            name = state.get("name")
            if isinstance(name, str) and name:
                self._weak.setdefault(name, []).append(r)

    def resolve(self, value: Any, prefer: Iterable[str] = ()) -> RegisteredResource | None:
        """The resource ``value`` refers to, or None. ``prefer``: type tokens to pick among name matches."""
        if not isinstance(value, str) or not value:
            return None
        hit = self._strong.get(value)
        if hit:
            return hit[0]
        if value.endswith(":5432") or value.endswith(":6379"):
            hit = self._strong.get(value.rsplit(":", 1)[0])
            if hit:
                return hit[0]
        # Names are only unique per type: prefer the expected types, else the first registered.
        candidates = self._weak.get(value, [])
        wanted = set(prefer)
        pool = [c for c in candidates if c.type in wanted] or candidates
        return pool[0] if pool else None

    def attribute(self, value: Any) -> str | None:
        """Which attribute of its resource ``value`` is (``endpoint``, ``arn``...), if known."""
        if isinstance(value, str):
            hit = self._strong.get(value)
            if hit:
                return hit[1]
        return None

    def label(self, value: Any, prefer: Iterable[str] = ()) -> Any:
        """``value`` shown as the resource name it refers to (secrets masked, unknown values as-is)."""
        if isinstance(value, SecretValue):
            return "[secret]"
        if isinstance(value, list):
            return [self.label(v, prefer) for v in value]
        r = self.resolve(value, prefer)
        return r.name if r is not None else value

    def describe_endpoint(self, value: Any) -> str | None:
        """``"rds.Proxy 'use1-proxy' endpoint"`` for an endpoint/address string, else None."""
        if not isinstance(value, str):
            return None
        key = value.rsplit(":", 1)[0] if value.endswith((":5432", ":6379")) else value
        hit = self._strong.get(key)
        if not hit:
            return None
        r, attr = hit
        return f"{short_type(r.type)} '{r.name}' {attr}"
