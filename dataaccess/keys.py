"""Namespaced, versioned Redis key builders shared by the Redis features.

Every key the data layer writes has the shape ``{namespace}:v{version}:{kind}:{ident}``, for
example ``cdb:v1:product:42``. Bumping ``version`` (e.g. after changing a cached dataclass) makes
all old entries unreachable at once; they then age out through their TTLs.

Keys assume a non-clustered Redis (ElastiCache cluster mode disabled: one primary + replicas),
so multi-key Lua scripts may touch a value key and its lease/marker keys together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["KeySpace", "validate_key_part"]

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
    return part


@dataclass(frozen=True, slots=True)
class KeySpace:
    """Builds keys under one namespace and schema version.

    :param namespace: leading key segment. Default: ``"cdb"``.
    :param version: schema version segment (``v1``). Default: ``1``.
    """

    namespace: str = "cdb"
    version: int = 1

    def __post_init__(self) -> None:
        validate_key_part(self.namespace, what="namespace")
        if ":" in self.namespace:
            raise ValueError(f"namespace {self.namespace!r} must not contain ':'")
        if not isinstance(self.version, int) or self.version < 1:
            raise ValueError(f"version must be an int >= 1, got {self.version!r}")

    @property
    def prefix(self) -> str:
        """``"cdb:v1:"`` — every key of this space starts with it."""
        return f"{self.namespace}:v{self.version}:"

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
        """SCAN pattern matching every key of this space (``"cdb:v1:*"``)."""
        return self.prefix + "*"
