"""Cache-aside over Redis with leases, single-flight, TTL jitter and fail-open behaviour.

How a read works (:meth:`CacheAside.get_or_load`)::

    plain GET in the caller's task: hit -> decode -> return   (no task, token or script)
    otherwise in-process single-flight: one task per key, concurrent callers await it
      └─ GET_OR_LEASE script (one round trip):
           hit                 -> decode -> return      (undecodable -> delete, count, retry as miss)
           miss, lease granted -> loader() -> FILL script (SET only if our lease token still holds)
           miss, lease busy    -> poll briefly for the holder's value; take over the lease if it
                                  frees up; after ``lease_wait`` load from the source (no fill)
           recently invalidated-> loader(), no fill (see "guarantee" below)
      Redis error / breaker open -> loader() directly (fail-open, counted)

Guarantee against the stale-set race (Facebook leases, NSDI'13 §3.2.1): a value is written to
Redis only by a caller that (1) obtained lease token *t* **before** calling its loader and (2)
still finds *t* in the lease key at fill time. :meth:`CacheAside.invalidate` deletes the value
and the lease in one script, so any loader that was running when a writer invalidated — whatever
it read — can no longer fill. Expired leases (a loader slower than ``lease_ttl``) fail the same
check. In addition, ``invalidate`` leaves a marker for ``invalidation_grace`` seconds during which
no lease is granted and no fill is accepted: a loader that starts *after* the invalidation but
reads a source lagging behind the write (a read replica) cannot cache pre-write data either, as
long as the lag is below the grace period. Callers must invalidate **after** their DB commit.

Fail-open: Redis ``ConnectionError``/``TimeoutError``/``OSError``/``ResponseError`` (READONLY,
LOADING, ...) never reach callers of ``get_or_load``; they are counted and the value comes from
the loader. A circuit breaker skips Redis while it is open. Invalidations that cannot reach Redis
are kept (bounded set) and flushed before any cached read is served again, and by a background
task as soon as Redis answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import random
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from dataaccess import _lua
from dataaccess._aio import cancel_and_wait
from dataaccess._breaker import BreakerState, CircuitBreaker
from dataaccess.keys import CACHE_AREA, KeySpace, validate_key_part
from dataaccess.near_cache import NearCache
from dataaccess.redis_client import drop_stale_connections

__all__ = ["BreakerState", "CacheAside", "CacheStats", "CircuitBreaker"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Errors that mean "Redis unusable right now" -> fail open. ResponseError covers READONLY (stale
#: connection to a demoted primary), LOADING, NOSCRIPT storms, OOM; asyncio.TimeoutError = builtin.
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)

# Stored format: 1 tag byte + payload. Anything else is "corrupt".
_TAG_VALUE = b"\x01"
_TAG_NONE = b"\x00"

_HIT, _LEASED, _BUSY, _RECENT = 1, 2, 0, 3

MAX_BATCH = 1_000
"""get_or_load_many handles at most this many keys per MGET, script and loader call (more are
split into such batches, run concurrently): a Redis script blocks the server while it runs."""

_MISS: Any = object()  # _peek's "not served from the cache" (None is a valid cached value)


class _RedisDownError(Exception):
    """Internal: a Redis call failed or was skipped by the breaker; load from the source."""


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Read-only snapshot of cache counters (monotonic since the CacheAside was created)."""

    hits: int = 0
    """Values served from Redis."""
    misses: int = 0
    """Reads not served from Redis (absent, corrupt, Redis down, lease fallback)."""
    errors: int = 0
    """Redis calls that failed (connection, timeout, READONLY, ...)."""
    skipped: int = 0
    """Redis calls skipped because the breaker was open."""
    loads: int = 0
    """Loader calls (source reads)."""
    fills: int = 0
    """Values written to Redis under a valid lease."""
    stale_fills_rejected: int = 0
    """Fills refused because the lease was killed by an invalidation (or expired)."""
    fills_skipped: int = 0
    """Loads not cached because the key was invalidated within ``invalidation_grace``."""
    corrupt: int = 0
    """Undecodable entries found, deleted and treated as misses."""
    lease_waits: int = 0
    """Reads that found another caller's lease and polled for its value."""
    lease_fallbacks: int = 0
    """Reads that gave up waiting after ``lease_wait`` and loaded from the source themselves."""
    coalesced: int = 0
    """Callers that joined an in-process load of the same key instead of starting one."""
    breaker_opens: int = 0
    """Times the circuit breaker opened."""
    invalidations: int = 0
    """Keys invalidated in Redis (directly or by a flush)."""
    invalidations_deferred: int = 0
    """Keys whose invalidation could not reach Redis and was queued."""
    pending_invalidations: int = 0
    """Keys queued right now, waiting for Redis (gauge, not a counter)."""
    namespace_purges: int = 0
    """Times the pending queue overflowed and the whole namespace was purged on recovery."""


_GAUGES = ("breaker_opens", "pending_invalidations")
"""CacheStats fields read from elsewhere when the snapshot is taken (not counted in ``_c``)."""
_COUNTED = tuple(f.name for f in dataclasses.fields(CacheStats) if f.name not in _GAUGES)
"""The counters of a CacheAside: the fields of :class:`CacheStats` (declared once, there)."""


@dataclass(slots=True)
class _Codec(Generic[T]):
    encode: Callable[[T], bytes]
    decode: Callable[[bytes], T]
    cache_none: bool


class CacheAside:
    """Lease-protected, fail-open cache-aside over one Redis primary.

    :param redis: asyncio client with ``decode_responses=False`` (see
        :func:`dataaccess.redis_client.create_redis`). Must point at the primary: leases need writes.
    :param namespace: first key segment. Default: ``"cdb"``.
    :param key_version: schema version segment; bump to orphan all entries. Default: ``1``.
    :param ttl_jitter: fraction by which each TTL is randomly *shortened*, so keys filled together do
        not expire together; the stored TTL lies in ``[ttl * (1 - ttl_jitter), ttl]``. Default: ``0.1``.
    :param lease_ttl: seconds a fill lease lives; also how long a dead lease holder can delay
        other processes' fills. Default: ``2.0``.
    :param lease_wait: max seconds a caller polls for another process's fill before loading from
        the source itself (never deadlocks on a dead holder). Default: ``0.5``.
    :param poll_interval: first poll delay while waiting on a lease, grows x1.5 up to 50 ms.
        Default: ``0.005``.
    :param invalidation_grace: seconds after an invalidation during which no fill is accepted
        (covers loaders reading lagging replicas); ``0`` disables the marker. Default: ``1.0``.
    :param max_pending_invalidations: bound of the queue of invalidations that could not reach
        Redis; on overflow the whole namespace is purged once Redis is back. Default: ``10_000``.
    :param breaker: circuit breaker. Default: ``CircuitBreaker()`` (3 consecutive failures open it
        for 2 s, then one probe).
    :param flush_interval: seconds between background attempts to flush queued invalidations.
        Default: ``0.5``.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        namespace: str = "cdb",
        key_version: int = 1,
        ttl_jitter: float = 0.1,
        lease_ttl: float = 2.0,
        lease_wait: float = 0.5,
        poll_interval: float = 0.005,
        invalidation_grace: float = 1.0,
        max_pending_invalidations: int = 10_000,
        breaker: CircuitBreaker | None = None,
        flush_interval: float = 0.5,
    ) -> None:
        if redis.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("CacheAside needs a Redis client with decode_responses=False (values are bytes)")
        if not 0.0 <= ttl_jitter < 1.0:
            raise ValueError(f"ttl_jitter must be in [0, 1), got {ttl_jitter}")
        for name, value in (
            ("lease_ttl", lease_ttl),
            ("lease_wait", lease_wait),
            ("poll_interval", poll_interval),
            ("flush_interval", flush_interval),
        ):
            if value <= 0:
                raise ValueError(f"{name} must be > 0 seconds, got {value}")
        if invalidation_grace < 0:
            raise ValueError(f"invalidation_grace must be >= 0 seconds, got {invalidation_grace}")
        if max_pending_invalidations < 1:
            raise ValueError(f"max_pending_invalidations must be >= 1, got {max_pending_invalidations}")
        self._redis = redis
        # Own key area (cdb:cache:v1:...): the overflow purge must never reach durable keys.
        self.keys = KeySpace(namespace, key_version, CACHE_AREA)
        self.ttl_jitter = ttl_jitter
        self.lease_ttl = lease_ttl
        self.lease_wait = lease_wait
        self.poll_interval = poll_interval
        self.invalidation_grace = invalidation_grace
        self.max_pending_invalidations = max_pending_invalidations
        self.flush_interval = flush_interval
        self._breaker = breaker or CircuitBreaker()
        self._c: dict[str, int] = dict.fromkeys(_COUNTED, 0)
        self._inflight: dict[str, asyncio.Future[Any]] = {}
        self._live: set[asyncio.Future[Any]] = set()  # strong refs: detached loads must not be GC'd
        self._pending: set[str] = set()  # full Redis value keys
        self._purge_needed = False
        self._flush_lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False
        self.near: NearCache | None = None
        """Optional in-process layer for hot keys (set by ``DataAccess`` when ``near_cache_ttl``
        > 0): consulted before Redis, filled only from Redis hits, invalidated with every key."""
        self._prerequisite: Callable[[], Awaitable[bool]] | None = None
        self._get_or_lease = redis.register_script(_lua.GET_OR_LEASE)
        self._get_or_lease_many = redis.register_script(_lua.GET_OR_LEASE_MANY)
        self._fill_many = redis.register_script(_lua.FILL_MANY)
        self._fill = redis.register_script(_lua.FILL)
        self._invalidate = redis.register_script(_lua.INVALIDATE)
        self._compare_delete = redis.register_script(_lua.COMPARE_DELETE)

    # ------------------------------------------------------------------ public API

    @property
    def stats(self) -> CacheStats:
        """Snapshot of the counters (a new frozen object on every access)."""
        return CacheStats(
            **self._c,
            breaker_opens=self._breaker.opens,
            pending_invalidations=len(self._pending),
        )

    @property
    def breaker_state(self) -> BreakerState:
        """``CLOSED`` (using Redis), ``OPEN`` (skipping Redis) or ``HALF_OPEN`` (probing)."""
        return self._breaker.state

    @property
    def breaker_open(self) -> bool:
        """True while Redis is being skipped or probed (state is not ``CLOSED``)."""
        return self._breaker.is_open

    def set_flush_prerequisite(self, fn: Callable[[], Awaitable[bool]] | None) -> None:
        """Writes that must reach Redis before any invalidation is sent (the read-your-writes
        markers): ``fn()`` sends what it still owes and returns True when nothing is owed. While
        it returns False, invalidations are queued like during an outage, so this process serves
        no cached read and a miss in another process finds the marker before the entry is gone.
        Default: none."""
        self._prerequisite = fn

    def key(self, key: str) -> str:
        """The Redis key under which ``key`` is stored (``"product:42"`` -> ``"cdb:cache:v1:product:42"``)."""
        return self.keys.prefix + validate_key_part(key, what="cache key")

    async def get_or_load(
        self,
        key: str,
        loader: Callable[[], Awaitable[T | None]],
        *,
        ttl: float,
        encode: Callable[[T], bytes],
        decode: Callable[[bytes], T],
        cache_none: bool = False,
    ) -> T | None:
        """Return the cached value for ``key``, or load it, cache it and return it.

        :param key: logical key, e.g. ``"product:42"`` (namespaced to ``cdb:cache:v1:product:42``).
        :param loader: coroutine function reading the source of truth; ``None`` means "absent".
            Its exceptions propagate to every caller waiting on this key.
        :param ttl: seconds to keep the value (shortened by up to ``ttl_jitter``); must be > 0.
        :param encode: value -> bytes. :param decode: bytes -> value; any exception = corrupt entry.
        :param cache_none: also cache an absent result (negative caching). Default: False.

        Concurrent calls for the same key in this process share one load (the first caller's
        ``loader``/``ttl`` win). Cancelling a caller does not cancel the shared load.
        """
        rkey = self.key(key)
        if not (isinstance(ttl, int | float) and ttl > 0):
            raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
        task = self._inflight.get(rkey)
        redis_down = False
        near = self.near
        near_token = -1
        if near is not None and task is None and near.accepts(rkey):
            if not (self._pending or self._purge_needed or self._breaker.is_open):
                hit = near.get(rkey)
                if not near.is_miss(hit):
                    return hit  # type: ignore[no-any-return]
            near_token = near.token()  # before the GET: a later invalidation rejects the fill
        if task is None:
            # Fast path: serve a hit with one plain GET, in the caller's task (no single-flight
            # task, lease token or script). Safe: a hit never needs the lease (that guards fills),
            # and the script's hit branch is this same GET. Misses fall through to the lease path.
            try:
                value = await self._peek(rkey, decode)
            except _RedisDownError:
                redis_down = True
            else:
                if value is not _MISS:
                    if near is not None and near_token >= 0:
                        near.put(rkey, value, near_token)
                    return value  # type: ignore[no-any-return]
            task = self._inflight.get(rkey)  # a concurrent caller may have started the load
        if task is None:
            codec = _Codec(encode, decode, cache_none)
            task = asyncio.ensure_future(self._fetch(rkey, loader, ttl, codec, redis_down=redis_down))
            self._inflight[rkey] = task
            self._live.add(task)
            task.add_done_callback(functools.partial(self._task_done, rkey))
        else:
            self._c["coalesced"] += 1
        # shield: one caller's cancellation must not cancel the load the others are awaiting.
        return await asyncio.shield(task)  # type: ignore[no-any-return]

    async def get_cached_many(self, keys: list[str], *, decode: Callable[[bytes], T]) -> dict[str, T | None]:
        """The entries of ``keys`` that are in the cache, read with one ``MGET``: ``{key: value}``
        (``None`` for a cached negative result). Keys absent from the result were not served from
        the cache (absent, undecodable, Redis down, invalidations still owed, breaker open): load
        them with :meth:`get_or_load_many` or :meth:`get_or_load`, which take the lease. Never
        raises on Redis failures.
        """
        out, _ = await self._mget(keys, decode)
        return out

    async def get_or_load_many(
        self,
        keys: list[str],
        loader: Callable[[list[str]], Awaitable[dict[str, T]]],
        *,
        ttl: float,
        encode: Callable[[T], bytes],
        decode: Callable[[bytes], T],
        cache_none: bool = False,
    ) -> dict[str, T | None]:
        """:meth:`get_or_load` for many keys, with one source read for all misses.

        :param keys: logical keys (duplicates allowed).
        :param loader: ``loader(missing_keys)`` reads the source of truth once for all of them and
            returns ``{key: value}`` for those that exist (absent keys mean ``None``). Its
            exceptions propagate to every caller waiting on one of those keys.
        :param ttl: / :param encode: / :param decode: / :param cache_none: as for :meth:`get_or_load`.
        :returns: ``{key: value or None}`` for every key.

        Round trips for ``n`` uncached keys (at most :data:`MAX_BATCH` per batch): one ``MGET``
        (hits, also from the near cache), one script taking every missing key's lease, one
        ``loader`` call, one script filling the leased keys — instead of ``n`` independent loads.
        The lease guarantee is the one of :meth:`get_or_load`, key by key: the loader runs only
        after the leases were taken, and a key is filled only while its lease still holds (an
        invalidation during the load rejects its fill). Keys this process is already loading
        join that load (single-flight, both ways: a concurrent :meth:`get_or_load` of a key being
        batch-loaded joins the batch). Keys another process holds the lease of, and undecodable
        entries, take the single-key path (poll for the holder's value, take over its lease).
        Redis failures fail open: the loader still runs once, nothing is filled.
        """
        if not (isinstance(ttl, int | float) and ttl > 0):
            raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
        uniq = list(dict.fromkeys(keys))
        if len(uniq) > MAX_BATCH:
            # Each Redis script runs alone on the server: keep any one of them short.
            parts = [uniq[i : i + MAX_BATCH] for i in range(0, len(uniq), MAX_BATCH)]
            out = {}
            for got in await asyncio.gather(
                *(
                    self.get_or_load_many(
                        part, loader, ttl=ttl, encode=encode, decode=decode, cache_none=cache_none
                    )
                    for part in parts
                )
            ):
                out.update(got)
            return out
        out, redis_down = await self._mget(uniq, decode)
        waits: dict[str, asyncio.Future[Any]] = {}
        mine: dict[str, asyncio.Future[Any]] = {}
        loop = asyncio.get_running_loop()
        for key in uniq:
            if key in out:
                continue
            rkey = self.key(key)
            running = self._inflight.get(rkey)
            if running is not None:
                self._c["coalesced"] += 1
                waits[key] = running
                continue
            fut: asyncio.Future[Any] = loop.create_future()
            self._inflight[rkey] = fut
            self._live.add(fut)
            fut.add_done_callback(functools.partial(self._task_done, rkey))
            mine[key] = waits[key] = fut
        if mine:
            codec = _Codec(encode, decode, cache_none)
            batch = asyncio.ensure_future(self._fetch_many(mine, loader, ttl, codec, redis_down=redis_down))
            self._live.add(batch)
            batch.add_done_callback(self._live.discard)
        if waits:
            # shield: one caller's cancellation must not cancel loads other callers are awaiting.
            values = await asyncio.gather(*(asyncio.shield(f) for f in waits.values()))
            out.update(zip(waits, values, strict=True))
        return out

    async def _mget(self, keys: list[str], decode: Callable[[bytes], T]) -> tuple[dict[str, T | None], bool]:
        """Hits of ``keys`` from the near cache and one ``MGET``; second item: Redis just failed."""
        rkeys = [self.key(k) for k in keys]
        if not rkeys or self._pending or self._purge_needed or self._breaker.is_open:
            return {}, False
        out: dict[str, T | None] = {}
        near = self.near
        near_token = -1
        if near is not None:
            todo = []
            for key, rkey in zip(keys, rkeys, strict=True):
                hit = near.get(rkey)
                if near.is_miss(hit):
                    todo.append((key, rkey))
                else:
                    out[key] = hit
            if not todo:
                return out, False
            keys, rkeys = [k for k, _ in todo], [r for _, r in todo]
            near_token = near.token()
        try:
            raws = cast("list[bytes | None]", await self._redis.mget(rkeys))  # decode_responses=False
        except REDIS_ERRORS as exc:
            self._on_error("read", exc)
            await drop_stale_connections(self._redis, exc)
            return out, True
        self._breaker.record_success()
        served = 0
        for key, rkey, raw in zip(keys, rkeys, raws, strict=True):
            if raw is None:
                continue
            if raw == _TAG_NONE:
                out[key] = None
            elif raw[:1] == _TAG_VALUE:
                try:
                    out[key] = decode(raw[1:])
                except Exception:  # corrupt: the lease path counts and deletes it
                    continue
            else:
                continue
            served += 1
            if near is not None:
                near.put(rkey, out[key], near_token)
        self._c["hits"] += served
        return out, False

    async def invalidate(self, *keys: str) -> None:
        """Delete the cached values of ``keys`` and kill their outstanding leases.

        Call after the DB commit. Never raises on Redis failures: keys that cannot be invalidated
        now are queued (see ``stats.pending_invalidations``) and flushed before the next cached
        read and by a background task once Redis answers again.
        """
        rkeys = [self.key(k) for k in keys]
        if not rkeys:
            return
        near = self.near
        near_keys = [r for r in rkeys if near.accepts(r)] if near is not None else []
        if near is not None and near_keys:
            near.invalidate(near_keys)  # before: no read of this process serves the old value
        try:
            if not self._breaker.allow():
                self._c["skipped"] += 1
                self._defer(rkeys)
                return
            try:
                if self._pending or self._purge_needed:
                    await self._flush_pending()
                await self._require_prerequisite()
                await self._run_invalidate(rkeys)
            except REDIS_ERRORS as exc:
                self._on_error("invalidate", exc)
                self._defer(rkeys)
                await drop_stale_connections(self._redis, exc)
                return
            self._breaker.record_success()
        finally:
            # A read that starts after invalidate() returns must not join a load that began
            # before (it may have read the old row, or hit the old entry before the DEL):
            # detach in-flight loads; their current waiters still get their (concurrent) result.
            for rkey in rkeys:
                self._inflight.pop(rkey, None)
            if near is not None and near_keys:
                # and after: a fill whose GET raced the Redis DEL is rejected (its token is older)
                near.invalidate(near_keys)

    async def flush_pending(self) -> bool:
        """Try to flush queued invalidations now. Returns True when none remain queued."""
        if not (self._pending or self._purge_needed):
            return True
        if not self._breaker.allow():
            self._c["skipped"] += 1
            return False
        try:
            await self._flush_pending()
        except REDIS_ERRORS as exc:
            self._on_error("flush", exc)
            await drop_stale_connections(self._redis, exc)
            return False
        self._breaker.record_success()
        return True

    async def aclose(self) -> None:
        """Stop the background flusher (does not close the Redis client, which the caller owns)."""
        self._closed = True
        if self._flusher is not None:
            # Not suppress(CancelledError): that would also swallow our caller's own cancellation.
            await cancel_and_wait(self._flusher, what="cache invalidation flusher")
            self._flusher = None

    # ------------------------------------------------------------------ read path

    def _task_done(self, rkey: str, task: asyncio.Future[Any]) -> None:
        self._live.discard(task)
        if self._inflight.get(rkey) is task:
            del self._inflight[rkey]
        if not task.cancelled():
            task.exception()  # mark retrieved: callers may all have been cancelled

    async def _peek(self, rkey: str, decode: Callable[[bytes], Any]) -> Any:
        """One plain GET: the decoded value on a hit, ``_MISS`` when the lease path must decide
        (absent, undecodable, invalidations still owed, breaker not closed). Raises
        ``_RedisDownError`` if Redis failed (counted like any read-path failure)."""
        if self._pending or self._purge_needed or self._breaker.is_open:
            return _MISS  # the lease path flushes owed invalidations / handles the breaker
        try:
            raw = cast("bytes | None", await self._redis.get(rkey))  # decode_responses=False
        except REDIS_ERRORS as exc:
            self._on_error("read", exc)
            await drop_stale_connections(self._redis, exc)
            raise _RedisDownError from exc
        self._breaker.record_success()
        if raw is None:
            return _MISS
        if raw == _TAG_NONE:
            value = None
        elif raw[:1] == _TAG_VALUE:
            try:
                value = decode(raw[1:])
            except Exception:  # corrupt: the lease path counts and deletes it
                return _MISS
        else:
            return _MISS
        self._c["hits"] += 1
        return value

    async def _fetch(
        self,
        rkey: str,
        loader: Callable[[], Awaitable[T | None]],
        ttl: float,
        codec: _Codec[T],
        *,
        redis_down: bool = False,
    ) -> T | None:
        if redis_down:  # the caller's GET just failed: do not pay a second timeout
            return await self._load(loader)
        lease_key, marker_key = rkey + ":lease", rkey + ":inv"
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        delay = self.poll_interval
        corrupt_seen = 0
        while True:
            token = secrets.token_hex(8)
            try:
                reply = await self._redis_call(
                    self._get_or_lease,
                    keys=[rkey, lease_key, marker_key],
                    args=[token, max(1, int(self.lease_ttl * 1000))],
                )
            except _RedisDownError:
                return await self._load(loader)
            status = int(reply[0])
            if status == _HIT:
                raw = reply[1]
                try:
                    value = self._decode(raw, codec)
                except Exception as exc:  # any decoder failure = corrupt entry
                    self._c["corrupt"] += 1
                    corrupt_seen += 1
                    log.warning("cache: undecodable entry for %s (%s); deleting", rkey, type(exc).__name__)
                    with contextlib.suppress(_RedisDownError):
                        await self._redis_call(self._compare_delete, keys=[rkey], args=[raw])
                    if corrupt_seen > 1:  # something keeps writing junk: do not loop
                        return await self._load(loader)
                    continue
                self._c["hits"] += 1
                return value
            if status == _LEASED:
                return await self._load_and_fill(rkey, lease_key, marker_key, token, loader, ttl, codec)
            if status == _RECENT:
                self._c["fills_skipped"] += 1
                return await self._load(loader)
            # _BUSY: another caller (likely another process) is loading this key.
            now = loop.time()
            if deadline is None:
                self._c["lease_waits"] += 1
                deadline = now + self.lease_wait
            elif now >= deadline:
                self._c["lease_fallbacks"] += 1
                return await self._load(loader)
            await asyncio.sleep(min(delay, max(0.0, deadline - now)))
            delay = min(delay * 1.5, 0.05)

    async def _load(self, loader: Callable[[], Awaitable[T | None]]) -> T | None:
        self._c["misses"] += 1
        self._c["loads"] += 1
        return await loader()

    async def _fetch_many(
        self,
        futures: dict[str, asyncio.Future[Any]],
        loader: Callable[[list[str]], Awaitable[dict[str, T]]],
        ttl: float,
        codec: _Codec[T],
        *,
        redis_down: bool,
    ) -> None:
        """The batched miss path of :meth:`get_or_load_many`: resolves every future in ``futures``
        (key -> future, registered in ``_inflight``)."""

        def settle(key: str, value: Any = None, exc: BaseException | None = None) -> None:
            fut = futures[key]
            if fut.done():
                return
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(value)

        keys = list(futures)
        try:
            token = secrets.token_hex(8)
            reply: list[Any] | None = None
            if not redis_down:
                with contextlib.suppress(_RedisDownError):
                    reply = await self._redis_call(
                        self._get_or_lease_many,
                        keys=_triples(self.key(k) for k in keys),
                        args=[token, max(1, int(self.lease_ttl * 1000))],
                    )
            leased: list[str] = []
            to_load: list[str] = []
            single: list[str] = []
            if reply is None:  # Redis unusable: load everything, fill nothing
                to_load = keys
            else:
                for key, entry in zip(keys, reply, strict=True):
                    status = int(entry[0])
                    if status == _HIT:
                        try:
                            value = self._decode(entry[1], codec)
                        except Exception:  # corrupt: the single-key path counts and deletes it
                            single.append(key)
                            continue
                        self._c["hits"] += 1
                        settle(key, value)
                    elif status == _LEASED:
                        leased.append(key)
                        to_load.append(key)
                    elif status == _RECENT:
                        self._c["fills_skipped"] += 1
                        to_load.append(key)
                    else:  # _BUSY: another process is loading it; poll for its value
                        single.append(key)
            singles = [
                asyncio.ensure_future(self._fetch(self.key(k), _one(loader, k), ttl, cast(Any, codec)))
                for k in single
            ]
            try:
                if to_load:
                    await self._load_fill_many(to_load, leased, token, loader, ttl, codec, settle)
            finally:  # the single-key loads are always awaited and handed out, even if ours failed
                results = await asyncio.gather(*singles, return_exceptions=True)
                for key, res in zip(single, results, strict=True):
                    if isinstance(res, BaseException):
                        settle(key, exc=res)
                    else:
                        settle(key, res)
        except BaseException as exc:
            for key in keys:
                if isinstance(exc, asyncio.CancelledError):
                    futures[key].cancel()
                else:
                    settle(key, exc=exc)
            if isinstance(exc, asyncio.CancelledError) or not isinstance(exc, Exception):
                raise
            # Handed to every waiting caller; nobody awaits this task itself.

    async def _load_fill_many(
        self,
        to_load: list[str],
        leased: list[str],
        token: str,
        loader: Callable[[list[str]], Awaitable[dict[str, T]]],
        ttl: float,
        codec: _Codec[T],
        settle: Callable[..., None],
    ) -> None:
        filled = False
        try:
            self._c["misses"] += len(to_load)
            self._c["loads"] += 1
            values = await loader(to_load)
            payloads: list[bytes] = []
            for key in leased:
                value = values.get(key)
                if value is None and not codec.cache_none:
                    payloads.append(b"")  # nothing to cache: release the lease
                    continue
                try:
                    payloads.append(_TAG_NONE if value is None else _TAG_VALUE + codec.encode(value))
                except Exception:  # an encoder bug must not fail a read that already has its value
                    log.exception("cache: encode failed for %s; value served uncached", key)
                    payloads.append(b"")
            if leased:
                args: list[Any] = [token]
                for payload in payloads:
                    args += [payload, self._ttl_ms(ttl)]
                with contextlib.suppress(_RedisDownError):
                    results = await self._redis_call(
                        self._fill_many, keys=_triples(self.key(k) for k in leased), args=args
                    )
                    filled = True  # the script consumed (or found gone) every lease either way
                    for key, result in zip(leased, results, strict=True):
                        if result == 1:
                            self._c["fills"] += 1
                        elif result == -1:
                            self._c["fills_skipped"] += 1
                        elif result == 0:
                            self._c["stale_fills_rejected"] += 1
                            log.info("cache: stale fill rejected for %s (invalidated or lease expired)", key)
            for key in to_load:
                settle(key, values.get(key))
        finally:
            if leased and not filled:
                # Release our leases so waiters in other processes take over without waiting.
                await asyncio.shield(self._release_leases(leased, token))

    async def _release_leases(self, keys: list[str], token: str) -> None:
        with contextlib.suppress(_RedisDownError):
            args: list[Any] = [token]
            for _ in keys:
                args += [b"", 1]
            await self._redis_call(self._fill_many, keys=_triples(self.key(k) for k in keys), args=args)

    async def _load_and_fill(
        self,
        rkey: str,
        lease_key: str,
        marker_key: str,
        token: str,
        loader: Callable[[], Awaitable[T | None]],
        ttl: float,
        codec: _Codec[T],
    ) -> T | None:
        filled = False
        try:
            value = await self._load(loader)
            if value is None and not codec.cache_none:
                return None
            try:
                payload = _TAG_NONE if value is None else _TAG_VALUE + codec.encode(value)
            except Exception:  # an encoder bug must not fail a read that already has its value
                log.exception("cache: encode failed for %s; value served uncached", rkey)
                return value
            try:
                result = await self._redis_call(
                    self._fill,
                    keys=[rkey, lease_key, marker_key],
                    args=[token, payload, self._ttl_ms(ttl)],
                )
            except _RedisDownError:
                return value
            filled = True  # the script consumed (or found gone) our lease either way
            if result == 1:
                self._c["fills"] += 1
            elif result == -1:
                self._c["fills_skipped"] += 1
            else:
                self._c["stale_fills_rejected"] += 1
                log.info("cache: stale fill rejected for %s (invalidated or lease expired)", rkey)
            return value
        finally:
            if not filled:
                # Release our lease so waiters in other processes take over without waiting.
                await asyncio.shield(self._release_lease(lease_key, token))

    async def _release_lease(self, lease_key: str, token: str) -> None:
        with contextlib.suppress(_RedisDownError):
            await self._redis_call(self._compare_delete, keys=[lease_key], args=[token])

    def _decode(self, raw: bytes, codec: _Codec[T]) -> T | None:
        if raw == _TAG_NONE:
            return None
        if not raw.startswith(_TAG_VALUE):
            raise ValueError("unknown cache entry tag")
        return codec.decode(raw[1:])

    def _ttl_ms(self, ttl: float) -> int:
        factor = 1.0 - self.ttl_jitter * random.random()
        return max(1, int(ttl * 1000 * factor))

    async def _redis_call(self, script: Any, *, keys: list[str], args: list[Any]) -> Any:
        """Run one cache script with breaker + fail-open semantics (raises only ``_RedisDownError``)."""
        if not self._breaker.allow():
            self._c["skipped"] += 1
            raise _RedisDownError
        try:
            if self._pending or self._purge_needed:
                # Never serve or fill a cached value while an invalidation is still owed.
                await self._flush_pending()
            result = await script(keys=keys, args=args)
        except REDIS_ERRORS as exc:
            self._on_error("read", exc)
            await drop_stale_connections(self._redis, exc)
            raise _RedisDownError from exc
        self._breaker.record_success()
        return result

    def _on_error(self, op: str, exc: BaseException) -> None:
        self._c["errors"] += 1
        was_open = self._breaker.is_open
        self._breaker.record_failure()
        if self._breaker.is_open and not was_open:
            log.warning(
                "cache: Redis unavailable (%s during %s); circuit breaker open", type(exc).__name__, op
            )

    # ------------------------------------------------------------------ invalidation path

    async def _run_invalidate(self, rkeys: list[str]) -> None:
        flat: list[str] = []
        for rkey in rkeys:
            flat.extend((rkey, rkey + ":lease", rkey + ":inv"))
        await self._invalidate(keys=flat, args=[int(self.invalidation_grace * 1000)])
        self._c["invalidations"] += len(rkeys)

    def _defer(self, rkeys: list[str]) -> None:
        self._c["invalidations_deferred"] += len(rkeys)
        if not self._purge_needed:
            self._pending.update(rkeys)
            if len(self._pending) > self.max_pending_invalidations:
                # Cannot remember them all: purge the namespace on recovery instead (never lose one).
                log.warning(
                    "cache: %d pending invalidations exceed the bound; will purge namespace",
                    len(self._pending),
                )
                self._pending.clear()
                self._purge_needed = True
        self._ensure_flusher()

    async def _require_prerequisite(self) -> None:
        if self._prerequisite is not None and not await self._prerequisite():
            # Markers not in Redis yet: an invalidation now would let another process refill the
            # entry from a lagging replica without seeing the marker. Treated as a Redis failure.
            raise RedisConnectionError("read-your-writes markers not written yet")

    async def _flush_pending(self) -> None:
        """Flush queued invalidations (raises Redis errors; callers handle the breaker)."""
        await self._require_prerequisite()
        async with self._flush_lock:
            if self._purge_needed:
                await self._purge_namespace()
                self._purge_needed = False
                self._c["namespace_purges"] += 1
            while self._pending:
                batch = list(self._pending)[:500]
                await self._run_invalidate(batch)
                self._pending.difference_update(batch)

    async def _purge_namespace(self) -> None:
        async for chunk in _chunks(self._redis.scan_iter(match=self.keys.pattern(), count=1000), 500):
            await self._redis.unlink(*chunk)

    def _ensure_flusher(self) -> None:
        if self._closed or (self._flusher is not None and not self._flusher.done()):
            return
        self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        # Why a background task: another process could read a stale value from a recovered Redis
        # before this process gets traffic again; flushing promptly keeps that window short.
        while self._pending or self._purge_needed:
            await asyncio.sleep(self.flush_interval)
            if await self.flush_pending():
                log.info("cache: pending invalidations flushed after Redis recovery")


def _triples(rkeys: Iterable[str]) -> list[str]:
    """Value, lease and marker key of every item (the key layout of the cache scripts)."""
    out: list[str] = []
    for rkey in rkeys:
        out.extend((rkey, rkey + ":lease", rkey + ":inv"))
    return out


def _one(loader: Callable[[list[str]], Awaitable[dict[str, Any]]], key: str) -> Callable[[], Awaitable[Any]]:
    """A single-key loader over a many-key one."""

    async def load() -> Any:
        return (await loader([key])).get(key)

    return load


async def _chunks(source: Any, size: int) -> Any:
    chunk: list[Any] = []
    async for item in source:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
