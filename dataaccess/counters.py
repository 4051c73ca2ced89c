"""Real-time counters in Redis: product views, top-N products, unique visitors, rate limiting.

Keys (UTC days, ``YYYYMMDD``)::

    cdb:v1:views:{product_id}             all-time views (INCR, no TTL)
    cdb:v1:views:{product_id}:{day}       views per day (INCR, expires retention_days after the day)
    cdb:v1:top:views:{day}                sorted set product_id -> views that day (ZINCRBY)
    cdb:v1:uv:{day}                       HyperLogLog of visitor ids that day (PFADD; ~0.81% error)
    cdb:v1:ratelimit:{name}               fixed-window counter (INCR + PEXPIRE on first hit)

Writes are batched in one pipeline round trip per call. Recording is *fail-open*: analytics must
never break a product page, so Redis errors while recording are logged and counted in
``dropped`` instead of raised. Reads raise :class:`dataaccess.errors.Unavailable`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from dataaccess.errors import Unavailable
from dataaccess.keys import KeySpace, validate_key_part
from dataaccess.redis_client import drop_stale_connections

__all__ = ["Counters", "RateLimitResult"]

log = logging.getLogger(__name__)

_REDIS_ERRORS = (RedisError, OSError, TimeoutError)

# KEYS: counter.  ARGV: window_ms.  Returns {count, pttl_ms}.
_FIXED_WINDOW = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}
"""


@dataclass(frozen=True, slots=True)
class RateLimitResult:
    """Outcome of :meth:`Counters.rate_limit`."""

    allowed: bool
    remaining: int
    """Calls still allowed in the current window (0 when denied)."""
    reset_after: float
    """Seconds until the window resets."""


class Counters:
    """Product view counters, top-N, unique visitors and a fixed-window rate limiter.

    :param redis: asyncio client on the Redis primary.
    :param namespace: key namespace. Default: ``"cdb"``.
    :param key_version: key schema version. Default: ``1``.
    :param retention_days: days per-day keys are kept after their day ends. Default: ``35``.
    :param rate_limit_fail_open: allow calls when Redis is unreachable (True) or deny them.
        Default: ``True`` (a dead Redis should not take the shop down).
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        namespace: str = "cdb",
        key_version: int = 1,
        retention_days: int = 35,
        rate_limit_fail_open: bool = True,
    ) -> None:
        if not isinstance(retention_days, int) or retention_days < 1:
            raise ValueError(f"retention_days must be an int >= 1, got {retention_days!r}")
        self._redis = redis
        self.keys = KeySpace(namespace, key_version)
        self.retention_days = retention_days
        self.rate_limit_fail_open = rate_limit_fail_open
        self.dropped = 0
        """Events not recorded because Redis was unreachable."""
        self._window = redis.register_script(_FIXED_WINDOW)

    # -- recording ----------------------------------------------------------------------------
    async def record_view(
        self, product_id: int, *, visitor_id: str | None = None, at: datetime | None = None
    ) -> None:
        """Count one view of ``product_id`` (and ``visitor_id`` as a unique visitor of the day)."""
        await self.record_views([(product_id, visitor_id)], at=at)

    async def record_views(
        self, views: Iterable[tuple[int, str | None]], *, at: datetime | None = None
    ) -> int:
        """Count many ``(product_id, visitor_id | None)`` views in one pipeline round trip.

        :param at: when the views happened. Default: now (UTC).
        :returns: number of views recorded (0 if Redis was unreachable — never raises for that).
        :raises ValueError: bad product or visitor id (nothing is recorded).
        """
        events = [(_product(pid), _visitor(vid)) for pid, vid in views]
        if not events:
            return 0
        day = _day(at)
        expire_at = self._expire_at(day)
        per_product: dict[int, int] = {}
        visitors: set[str] = set()
        for pid, vid in events:
            per_product[pid] = per_product.get(pid, 0) + 1
            if vid is not None:
                visitors.add(vid)
        top_key = self._top_key(day)
        async with self._redis.pipeline(transaction=False) as pipe:
            for pid, n in per_product.items():
                pipe.incrby(self.keys.key("views", pid), n)
                daily = self._daily_key(pid, day)
                pipe.incrby(daily, n)
                pipe.expireat(daily, expire_at)
                pipe.zincrby(top_key, n, str(pid))
            pipe.expireat(top_key, expire_at)
            if visitors:
                uv = self._uv_key(day)
                pipe.pfadd(uv, *sorted(visitors))
                pipe.expireat(uv, expire_at)
            try:
                await pipe.execute()
            except _REDIS_ERRORS as exc:
                await drop_stale_connections(self._redis, exc)
                self.dropped += len(events)
                log.warning(
                    "counters: %d views dropped, Redis unavailable (%s)", len(events), type(exc).__name__
                )
                return 0
        return len(events)

    # -- reading ------------------------------------------------------------------------------
    async def views(self, product_id: int) -> int:
        """All-time views of ``product_id``."""
        raw = await self._read(self._redis.get(self.keys.key("views", _product(product_id))))
        return int(raw or 0)

    async def views_on(self, product_id: int, day: date) -> int:
        """Views of ``product_id`` on one UTC ``day`` (0 once the day is past retention)."""
        raw = await self._read(self._redis.get(self._daily_key(_product(product_id), day)))
        return int(raw or 0)

    async def views_last(self, product_id: int, *, days: int = 7, at: datetime | None = None) -> int:
        """Views of ``product_id`` over the last ``days`` UTC days including today. Default: 7."""
        pid = _product(product_id)
        keys = [self._daily_key(pid, d) for d in _window(days, at, self.retention_days)]
        return sum(int(v or 0) for v in await self._read(self._redis.mget(keys)))

    async def top_products(
        self, n: int = 10, *, days: int = 1, at: datetime | None = None
    ) -> list[tuple[int, int]]:
        """The ``n`` most viewed products over the last ``days`` UTC days as ``(product_id, views)``,
        most viewed first (ties in Redis' reverse lexicographic member order).
        Defaults: ``n=10``, today only."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an int >= 1, got {n!r}")
        keys = [self._top_key(d) for d in _window(days, at, self.retention_days)]
        if len(keys) == 1:
            rows = await self._read(self._redis.zrevrange(keys[0], 0, n - 1, withscores=True))
        else:
            tmp = self.keys.key("tmp", "top", secrets.token_hex(8))
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zunionstore(tmp, keys)
                pipe.zrevrange(tmp, 0, n - 1, withscores=True)
                pipe.delete(tmp)
                _, rows, _ = await self._read(pipe.execute())
        return [(int(member), int(score)) for member, score in rows]

    async def unique_visitors(self, *, days: int = 1, at: datetime | None = None) -> int:
        """Approximate distinct visitors over the last ``days`` UTC days (HyperLogLog union)."""
        keys = [self._uv_key(d) for d in _window(days, at, self.retention_days)]
        return int(await self._read(self._redis.pfcount(*keys)))

    # -- rate limiting ------------------------------------------------------------------------
    async def rate_limit(self, name: str, *, limit: int, window: float) -> RateLimitResult:
        """Fixed-window limiter: at most ``limit`` calls per ``window`` seconds for ``name``.

        Fixed windows allow up to 2x ``limit`` across a window boundary; good enough for abuse
        protection (login attempts, checkout spam), cheap (one round trip, one key).
        """
        validate_key_part(name, what="rate limit name")
        if not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be an int >= 1, got {limit!r}")
        if window <= 0:
            raise ValueError(f"window must be > 0 seconds, got {window}")
        window_ms = max(1, int(window * 1000))
        try:
            count, ttl_ms = await self._window(keys=[self.keys.key("ratelimit", name)], args=[window_ms])
        except _REDIS_ERRORS as exc:
            await drop_stale_connections(self._redis, exc)
            log.warning("counters: rate limiter unavailable (%s)", type(exc).__name__)
            return RateLimitResult(self.rate_limit_fail_open, 0, window)
        allowed = int(count) <= limit
        return RateLimitResult(allowed, max(0, limit - int(count)), int(ttl_ms) / 1000)

    # -- helpers ------------------------------------------------------------------------------
    def _daily_key(self, pid: int, day: date) -> str:
        return self.keys.key("views", pid, day.strftime("%Y%m%d"))

    def _top_key(self, day: date) -> str:
        return self.keys.key("top", "views", day.strftime("%Y%m%d"))

    def _uv_key(self, day: date) -> str:
        return self.keys.key("uv", day.strftime("%Y%m%d"))

    def _expire_at(self, day: date) -> int:
        end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1 + self.retention_days)
        return int(end.timestamp())

    async def _read(self, aw: Any) -> Any:
        try:
            return await aw
        except _REDIS_ERRORS as exc:
            await drop_stale_connections(self._redis, exc)
            raise Unavailable(f"counters unavailable ({type(exc).__name__})") from exc


def _day(at: datetime | None) -> date:
    if at is None:
        return datetime.now(UTC).date()
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware (days are UTC)")
    return at.astimezone(UTC).date()


def _window(days: int, at: datetime | None, retention_days: int) -> list[date]:
    if not isinstance(days, int) or not 1 <= days <= retention_days:
        raise ValueError(f"days must be an int in [1, {retention_days}], got {days!r}")
    last = _day(at)
    return [last - timedelta(days=i) for i in range(days)]


def _product(product_id: object) -> int:
    if isinstance(product_id, bool) or not isinstance(product_id, int) or product_id < 1:
        raise ValueError(f"product_id must be a positive int, got {product_id!r}")
    return product_id


def _visitor(visitor_id: object) -> str | None:
    if visitor_id is None:
        return None
    if not isinstance(visitor_id, str):
        raise ValueError(f"visitor_id must be a str or None, got {type(visitor_id).__name__}")
    return validate_key_part(visitor_id, what="visitor_id")
