"""Namespaced, versioned Redis key builders shared by the Redis features.

Durable keys (sessions, queues, dead letters, counters, rate limits) have the shape
``{namespace}:v{version}:{kind}:{ident}``, for example ``cdb:v1:session:ab12``. Cache entries live
in their own area, ``{namespace}:cache:v{version}:{kind}:{ident}`` (``cdb:cache:v1:product:42``):
the only keys the cache ever purges wholesale (``SCAN cdb:cache:v1:*``), a pattern no durable key
can match, because a namespace may not contain ``:`` and durable keys start with ``{namespace}:v``.
Bumping ``version`` (e.g. after changing a cached dataclass) makes all old entries unreachable at
once; they then age out through their TTLs.

Keys assume a non-clustered Redis (ElastiCache cluster mode disabled: one primary + replicas),
so multi-key Lua scripts may touch a value key and its lease/marker keys together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CACHE_AREA", "KeySpace", "validate_key_part"]

CACHE_AREA = "cache"
"""The key area of cache entries: the only area ever purged by pattern."""

_MAX_PART = 512
# Unicode whitespace (what str.isspace() accepts) or a control character. A regex, because this
# runs on every cache read and a per-character Python loop showed up in profiles.
_BAD_CHARS = re.compile(r"[\s\x00-\x1f]")


def validate_key_part(part: str, *, what: str = "key") -> str:
    """Return ``part`` if it is a usable key fragment, else raise ``ValueError`` naming ``what``.

    Rejects empty strings, whitespace/control characters and parts longer than 512 characters
    (keys travel in every command; long keys waste memory and bandwidth).
    """
    if not isinstance(part, str):
        raise TypeError(f"{what} must be a str, got {type(part).__name__}")
    if not part:
        raise ValueError(f"{what} must be a non-empty string")
    if len(part) > _MAX_PART:
        raise ValueError(f"{what} is {len(part)} characters long; at most {_MAX_PART} allowed")
    if _BAD_CHARS.search(part):
        raise ValueError(f"{what} {part[:40]!r} contains whitespace or control characters")
    if not part.isascii():
        try:
            part.encode()
        except UnicodeEncodeError:
            raise ValueError(f"{what} is not valid UTF-8 text (it contains a lone surrogate)") from None
    return part


@dataclass(frozen=True, slots=True)
class KeySpace:
    """Builds keys under one namespace and schema version.

    :param namespace: leading key segment. Default: ``"cdb"``.
    :param version: schema version segment (``v1``). Default: ``1``.
    :param area: ``None`` for durable keys (``cdb:v1:``) or ``"cache"`` for purgeable cache entries
        (``cdb:cache:v1:``). Default: ``None``.
    """

    namespace: str = "cdb"
    version: int = 1
    area: str | None = None

    def __post_init__(self) -> None:
        validate_key_part(self.namespace, what="namespace")
        if ":" in self.namespace:
            raise ValueError(f"namespace {self.namespace!r} must not contain ':'")
        if not isinstance(self.version, int) or self.version < 1:
            raise ValueError(f"version must be an int >= 1, got {self.version!r}")
        if self.area not in (None, CACHE_AREA):
            raise ValueError(f"area must be None (durable keys) or {CACHE_AREA!r}, got {self.area!r}")

    @property
    def prefix(self) -> str:
        """``"cdb:v1:"`` (durable) or ``"cdb:cache:v1:"`` (cache): every key of this space starts
        with it."""
        if self.area is None:
            return f"{self.namespace}:v{self.version}:"
        return f"{self.namespace}:{self.area}:v{self.version}:"

    def key(self, *parts: object) -> str:
        """Join ``parts`` under the prefix: ``key("product", 42)`` -> ``"cdb:v1:product:42"``."""
        if not parts:
            raise ValueError("key() needs at least one part")
        text = [validate_key_part(str(p), what="key part") for p in parts]
        return self.prefix + ":".join(text)

    def kind_prefix(self, kind: str) -> str:
        """Prefix of every key of one kind: ``kind_prefix("session")`` -> ``"cdb:v1:session:"``."""
        return self.prefix + validate_key_part(kind, what="key kind") + ":"

    def pattern(self) -> str:
        """SCAN pattern matching every key of this space (``"cdb:v1:*"``, ``"cdb:cache:v1:*"``)."""
        return self.prefix + "*"
