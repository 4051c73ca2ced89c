"""Server-side sessions in Redis: opaque ids, JSON data, sliding + absolute expiry.

Layout: ``cdb:v1:session:{sha256(id)}`` holds ``{n}:{user key}{"u": user_id, "c": created_at,
"d": data}`` (``n`` = the user key's length; the JSON is ASCII) with a TTL;
``cdb:v1:user_sessions:{user_id}`` is a SET of the hashed ids of that user's sessions (for
"log out everywhere"). Only the SHA-256 of a session id is stored, so someone able to list Redis
keys (or read a replica, a backup, a log of slow commands) cannot hijack sessions. Session ids
never appear in logs, reprs or exception messages.

Sessions are state, not cache: Redis failures raise :class:`dataaccess.errors.Unavailable`
rather than pretending the user is logged out.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from dataaccess.errors import Unavailable
from dataaccess.keys import KeySpace, validate_key_part
from dataaccess.redis_client import drop_stale_connections

__all__ = ["Session", "SessionStore"]

_ID_RE = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)

# Stored value: "{n}:{user key}{json}" where n is the user key's length in bytes, so the touch
# script finds the user's index without parsing JSON (cjson rejects what Python's json accepts,
# e.g. an escaped lone surrogate, and the index then expired under a live session). Values written
# before this format ("{json}" with a "k" field) are still read, and rewritten on update.
# KEYS: session.  ARGV: ttl_ms, user-index key prefix.  Sliding refresh of the session and of its
# user's index; returns the value or nil.
_TOUCH = """
local v = redis.call('GET', KEYS[1])
if not v then return false end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local k
local n = string.match(v, '^(%d+):')
if n then
  k = string.sub(v, #n + 2, #n + 1 + tonumber(n))
else
  local ok, s = pcall(cjson.decode, v)
  if ok and type(s) == 'table' and type(s.k) == 'string' then k = s.k end
end
if k then
  if redis.call('PEXPIRE', ARGV[2] .. k, ARGV[1], 'GT') == 0 and redis.call('PTTL', ARGV[2] .. k) == -2 then
    -- index gone (expired or lost) while the session lives: recreate it with this session
    redis.call('SADD', ARGV[2] .. k, ARGV[3])
    redis.call('PEXPIRE', ARGV[2] .. k, ARGV[1])
  end
end
return v
"""

# KEYS: session, user index.  ARGV: hashed id, value, ttl_ms.
_CREATE = """
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[1])
if redis.call('PEXPIRE', KEYS[2], ARGV[3], 'GT') == 0 and redis.call('PTTL', KEYS[2]) < 0 then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return 1
"""

# KEYS: user index.  ARGV: session key prefix.  Deletes every session of the user + the index.
_DESTROY_ALL = """
local ids = redis.call('SMEMBERS', KEYS[1])
local n = 0
for _, h in ipairs(ids) do n = n + redis.call('DEL', ARGV[1] .. h) end
redis.call('DEL', KEYS[1])
return n
"""

_REDIS_ERRORS = (RedisError, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class Session:
    """One session. ``id`` is the bearer secret: it is excluded from ``repr``."""

    id: str = field(repr=False)
    user_id: int | str
    data: dict[str, Any]
    created_at: float
    """Unix time of creation (drives the absolute lifetime)."""


class SessionStore:
    """Create, read (sliding expiry), update and destroy sessions.

    :param redis: asyncio client on the Redis primary.
    :param namespace: key namespace. Default: ``"cdb"``.
    :param key_version: key schema version. Default: ``1``.
    :param ttl: idle timeout in seconds; every :meth:`get`/:meth:`update` pushes expiry to
        ``now + ttl``. Default: ``1800`` (30 min).
    :param absolute_ttl: hard lifetime in seconds from creation regardless of activity, or None for
        none. Default: ``86400`` (24 h).
    :param max_data_bytes: largest accepted JSON encoding of ``data``. Default: ``16384``.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        namespace: str = "cdb",
        key_version: int = 1,
        ttl: float = 1800.0,
        absolute_ttl: float | None = 86400.0,
        max_data_bytes: int = 16_384,
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"ttl must be > 0 seconds, got {ttl}")
        if absolute_ttl is not None and absolute_ttl < ttl:
            raise ValueError(f"absolute_ttl ({absolute_ttl}) must be >= ttl ({ttl}) or None")
        if max_data_bytes < 2:
            raise ValueError(f"max_data_bytes must be >= 2, got {max_data_bytes}")
        self._redis = redis
        self.keys = KeySpace(namespace, key_version)
        self.ttl = ttl
        self.absolute_ttl = absolute_ttl
        self.max_data_bytes = max_data_bytes
        self._touch = redis.register_script(_TOUCH)
        self._create = redis.register_script(_CREATE)
        self._destroy_all = redis.register_script(_DESTROY_ALL)

    # -- keys ---------------------------------------------------------------------------------
    @staticmethod
    def _hash(session_id: str) -> str:
        return hashlib.sha256(session_id.encode()).hexdigest()

    def _session_key(self, hashed: str) -> str:
        return self.keys.key("session", hashed)

    def _index_key(self, user_id: int | str) -> str:
        return self.keys.key("user_sessions", _user(user_id))

    # -- API ----------------------------------------------------------------------------------
    async def create(self, user_id: int | str, data: Mapping[str, Any] | None = None) -> Session:
        """Create a session for ``user_id`` holding ``data`` (JSON-serialisable mapping).

        :returns: the new :class:`Session`; give ``session.id`` to the client (cookie), nothing else.
        :raises ValueError: bad ``user_id``, non-JSON or oversized ``data``.
        :raises Unavailable: Redis unreachable.
        """
        payload = self._encode(user_id, data or {}, time.time())
        session_id = secrets.token_urlsafe(32)
        hashed = self._hash(session_id)
        await self._call(
            self._create(
                keys=[self._session_key(hashed), self._index_key(user_id)],
                args=[hashed, payload, self._ms(self.ttl)],
            )
        )
        created = json.loads(_json_part(payload.encode()))
        return Session(session_id, created["u"], created["d"], created["c"])

    async def get(self, session_id: str) -> Session | None:
        """Return the session and slide its expiry, or None if unknown/expired/malformed.

        :raises Unavailable: Redis unreachable.
        """
        if not _valid_id(session_id):
            return None
        hashed = self._hash(session_id)
        key = self._session_key(hashed)
        raw = await self._call(
            self._touch(keys=[key], args=[self._ms(self.ttl), self.keys.kind_prefix("user_sessions"), hashed])
        )
        if raw is None:
            return None
        session = self._decode(session_id, raw)
        if session is None:
            await self._call(self._redis.delete(key))
            return None
        if self.absolute_ttl is not None:
            remaining = session.created_at + self.absolute_ttl - time.time()
            if remaining <= 0:
                await self.destroy(session_id)
                return None
            if remaining < self.ttl:
                await self._call(self._redis.pexpire(key, self._ms(remaining)))
        return session

    async def update(self, session_id: str, data: Mapping[str, Any]) -> bool:
        """Replace the session's data (and slide its expiry). Returns False if it does not exist.

        :raises ValueError: non-JSON or oversized ``data``. :raises Unavailable: Redis unreachable.
        """
        current = await self.get(session_id)
        if current is None:
            return False
        payload = self._encode(current.user_id, data, current.created_at)
        key = self._session_key(self._hash(session_id))
        ttl_ms = self._ms(self.ttl)
        if self.absolute_ttl is not None:
            ttl_ms = min(ttl_ms, self._ms(current.created_at + self.absolute_ttl - time.time()))
        # XX: never resurrect a session destroyed since the read above.
        return bool(await self._call(self._redis.set(key, payload, px=ttl_ms, xx=True)))

    async def destroy(self, session_id: str) -> bool:
        """Delete one session (logout). Returns True if it existed."""
        if not _valid_id(session_id):
            return False
        hashed = self._hash(session_id)
        key = self._session_key(hashed)
        raw = await self._call(self._redis.get(key))
        if raw is None:
            return False
        user_key = _user_key_of(raw)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if user_key is not None:
                pipe.srem(self.keys.kind_prefix("user_sessions") + user_key, hashed)
            deleted, *_ = await self._call(pipe.execute())
        return bool(deleted)

    async def destroy_all_for_user(self, user_id: int | str) -> int:
        """Delete every session of ``user_id`` ("log out everywhere"). Returns how many existed."""
        index = self._index_key(user_id)
        return int(await self._call(self._destroy_all(keys=[index], args=[self.keys.kind_prefix("session")])))

    async def count_for_user(self, user_id: int | str) -> int:
        """Number of live sessions of ``user_id`` (prunes index entries whose session expired)."""
        index = self._index_key(user_id)
        hashed = [h.decode() for h in await self._call(self._redis.smembers(index))]
        if not hashed:
            return 0
        async with self._redis.pipeline(transaction=False) as pipe:
            for h in hashed:
                pipe.exists(self._session_key(h))
            alive = await self._call(pipe.execute())
        dead = [h for h, ok in zip(hashed, alive, strict=True) if not ok]
        if dead:
            await self._call(self._redis.srem(index, *dead))
        return len(hashed) - len(dead)

    # -- helpers ------------------------------------------------------------------------------
    def _encode(self, user_id: int | str, data: Mapping[str, Any], created_at: float) -> str:
        user_key = _user(user_id)
        if not isinstance(data, Mapping):
            raise TypeError(f"session data must be a mapping, got {type(data).__name__}")
        try:
            payload = json.dumps(
                {"u": user_id, "k": str(user_id), "c": created_at, "d": dict(data)}, separators=(",", ":")
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"session data must be JSON-serialisable: {exc}") from exc
        if len(payload) > self.max_data_bytes:
            raise ValueError(
                f"session data is {len(payload)} bytes encoded; at most {self.max_data_bytes} allowed"
            )
        # ensure_ascii (json.dumps' default) keeps the payload ASCII: lone surrogates are escaped.
        return f"{len(user_key.encode())}:{user_key}{payload}"

    @staticmethod
    def _decode(session_id: str, raw: bytes) -> Session | None:
        try:
            obj = json.loads(_json_part(raw))
            return Session(session_id, obj["u"], dict(obj["d"]), float(obj["c"]))
        except (ValueError, KeyError, TypeError):
            return None

    @staticmethod
    def _ms(seconds: float) -> int:
        return max(1, int(seconds * 1000))

    async def _call(self, aw: Any) -> Any:
        try:
            return await aw
        except _REDIS_ERRORS as exc:
            await drop_stale_connections(self._redis, exc)
            raise Unavailable(f"session store unavailable ({type(exc).__name__})") from exc


def _json_part(raw: bytes) -> bytes:
    """The JSON of a stored session value (``{n}:{user key}{json}``, or legacy plain JSON)."""
    head, sep, rest = raw.partition(b":")
    if raw[:1] == b"{" or not sep or not head.isdigit():
        return raw
    return rest[int(head) :]


def _user_key_of(raw: bytes) -> str | None:
    """The user key recorded in a stored session value (None if unreadable)."""
    head, sep, rest = raw.partition(b":")
    if raw[:1] != b"{" and sep and head.isdigit():
        return rest[: int(head)].decode()
    try:
        k = json.loads(raw).get("k")
    except (ValueError, AttributeError):
        return None
    return k if isinstance(k, str) else None


def _user(user_id: int | str) -> str:
    if isinstance(user_id, bool) or not isinstance(user_id, int | str):
        raise TypeError(f"user_id must be an int or str, got {type(user_id).__name__}")
    return validate_key_part(str(user_id), what="user_id")


def _valid_id(session_id: object) -> bool:
    return isinstance(session_id, str) and _ID_RE.fullmatch(session_id) is not None
