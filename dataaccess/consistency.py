"""Read-your-writes across processes: "written at LSN X" markers per entity, per table and for the
schema.

After a commit, the writer's WAL insert position (``pg_current_wal_insert_lsn()``) is recorded
for every entity the transaction changed, both in-process and in Redis (key
``{ns}:rw:{entity}``, value = LSN, TTL ``read_your_writes_ttl``; a Lua script only ever raises
the value). A later read of that entity, from *any* process, asks for a connection whose replay
LSN is ≥ the marker (:meth:`Pools.reader`), i.e. the writer or a caught-up replica — Facebook's
"remote markers" (NSDI'13 §5), GitLab's load-balancing "sticking". Cache fills happen inside the
loader, so a value cached after a write was read from a source at least as new as the write.

Two markers apply to *every* read (fetched in the same ``MGET`` as the entity markers):

* the **schema floor** ``{ns}:rw:@floor`` — the commit LSN of the last ``migrate()`` /
  partition creation. No TTL (only raised): a replica that has not replayed the DDL would fail
  with "relation does not exist", however long ago the migration ran. Also kept in-process, and
  read from the ``schema_lsn`` table when a process connects (see :mod:`dataaccess.facade`).
* ``@schema`` — the same, for a schema change whose LSN is unknown (``lsn_routing=False``): a
  writer-only marker with the usual TTL.

Tables whose cached query results depend on many rows (``products`` for search) also get a
**generation** counter ``{ns}:gen:{table}`` (``INCR`` after the markers, in the same pipeline, no
TTL), included in the cache key of those results: a catalogue write makes old results unreachable.

Failure handling: if Redis cannot be read, the required LSN is unknown and the read goes to the
writer (``WRITER_REQUIRED``). Markers, floors and generation bumps that could not be written are
kept in-process and re-sent before the next marker read, and by a background task every 0.5 s,
once Redis answers. The cache sends no invalidation while markers are owed
(:meth:`CacheAside.set_flush_prerequisite`): an entry deleted before its marker is visible could be
refilled by another process from a lagging replica. A marker outlives the
time a replica may lag while still receiving reads (``Settings`` enforces
``ttl > max_replica_lag + check interval``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable

import redis.asyncio as aioredis

from ._aio import cancel_and_wait
from ._breaker import CircuitBreaker
from .cache import REDIS_ERRORS
from .pools import WRITER_ONLY_LSN, WRITER_REQUIRED

__all__ = ["SCHEMA_ENTITY", "WriteMarkers", "strictest"]

log = logging.getLogger(__name__)

SCHEMA_ENTITY = "@schema"
"""Entity marked writer-only (TTL) for schema changes whose LSN is unknown; applies to every read."""
_FLOOR = "@floor"

# KEYS = marker keys; ARGV[1] = lsn, ARGV[2] = ttl ms. Keeps the max LSN, always refreshes the TTL.
_MARK_LUA = """
for i, k in ipairs(KEYS) do
  local cur = tonumber(redis.call('GET', k) or '-1')
  if tonumber(ARGV[1]) > cur then
    redis.call('SET', k, ARGV[1], 'PX', ARGV[2])
  else
    redis.call('PEXPIRE', k, ARGV[2])
  end
end
return #KEYS
"""

# KEYS[1] = floor key; ARGV[1] = lsn. Raise-only, no TTL (the schema stays changed).
_FLOOR_LUA = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > cur then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
return 0
"""

# KEYS[1] = floor key; ARGV[1] = value read before, ARGV[2] = writer LSN read after it.
# Deletes a floor the writer has never reached (left by another cluster), if unchanged since.
_DROP_BOGUS_FLOOR_LUA = """
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] and tonumber(cur) > tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


def strictest(*lsns: int | None) -> int | None:
    """Combine read requirements: ``WRITER_REQUIRED`` wins, else the highest LSN, else None."""
    if WRITER_REQUIRED in lsns:
        return WRITER_REQUIRED
    present = [v for v in lsns if v is not None]
    return max(present) if present else None


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


class WriteMarkers:
    """Per-entity last-write LSNs, local and (when ``redis`` is given) shared through Redis.

    :param redis: client for the Redis primary, or None for process-local markers only.
    :param namespace: key prefix. :param ttl: marker lifetime in seconds.
    :param breaker: shared circuit breaker (skip Redis while it is down). Default: a new one.
    :param clock: seconds from a monotonic source, for marker expiry. Default ``time.monotonic``
        (tests pass their own so expiry never depends on the host clock's resolution).
    """

    def __init__(
        self,
        redis: aioredis.Redis | None,
        *,
        namespace: str,
        ttl: float,
        breaker: CircuitBreaker | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._prefix = f"{namespace}:rw:"
        self._gen_prefix = f"{namespace}:gen:"
        self._ttl = ttl
        self._breaker = breaker or CircuitBreaker()
        self._local: dict[str, tuple[int, float]] = {}
        self._pending: dict[str, tuple[int, float]] = {}
        self._floor: int | None = None
        self._pending_floor: int | None = None
        self._pending_gens: set[str] = set()
        self._sweep_at = 10_000
        self._script = redis.register_script(_MARK_LUA) if redis is not None else None
        self._floor_script = redis.register_script(_FLOOR_LUA) if redis is not None else None
        self._drop_floor_script = redis.register_script(_DROP_BOGUS_FLOOR_LUA) if redis is not None else None
        self.redis_failures = 0
        """Marker reads/writes that could not reach Redis (reads then went to the writer)."""
        self.flush_interval = 0.5
        """Seconds between background attempts to re-send owed markers."""
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False

    def generation_key(self, table: str) -> str:
        """The Redis key of ``table``'s cache generation (tracked by the near cache)."""
        return self._gen_prefix + table

    @property
    def generation_prefix(self) -> str:
        return self._gen_prefix

    def _remember(self, table: dict[str, tuple[int, float]], entity: str, lsn: int) -> None:
        expires = self._clock() + self._ttl
        cur = table.get(entity)
        if cur is None or cur[0] < lsn or cur[1] < expires:
            table[entity] = (max(lsn, cur[0] if cur else lsn), expires)

    async def mark(self, entities: Iterable[str], lsn: int, *, generations: Iterable[str] = ()) -> None:
        """Record that ``entities`` were written at ``lsn`` and bump the cache generation of
        ``generations`` (table names) after the markers are visible (never raises)."""
        entities = list(dict.fromkeys(entities))
        gens = set(generations)
        if not entities and not gens:
            return
        if len(self._local) + len(self._pending) >= self._sweep_at:
            self._sweep()
        for e in entities:
            self._remember(self._local, e, lsn)
        if self._script is None:
            return
        for e in entities:
            self._remember(self._pending, e, lsn)
        self._pending_gens.update(gens)
        await self._flush()

    @property
    def floor_lsn(self) -> int | None:
        """The in-process schema floor: every read needs a source that replayed past it."""
        return self._floor

    def raise_floor(self, lsn: int) -> None:
        """Raise the in-process schema floor (at connect, or after a replica lacked an object)."""
        if lsn < WRITER_ONLY_LSN and (self._floor is None or lsn > self._floor):
            self._floor = lsn

    async def mark_schema(self, lsn: int) -> None:
        """Record a schema change committed at ``lsn`` (migrate, new partitions) for every read,
        in this process and, through Redis, in every other one (never raises)."""
        if lsn >= WRITER_ONLY_LSN or lsn <= 0:
            # Position unknown: writer-only for the marker TTL (like an entity write).
            await self.mark([SCHEMA_ENTITY], WRITER_ONLY_LSN)
            return
        self.raise_floor(lsn)
        if self._floor_script is None:
            return
        self._pending_floor = max(lsn, self._pending_floor or 0)
        await self._flush()

    async def drop_bogus_floor(self, writer_lsn_after: int, seen: int | None) -> None:
        """Delete the shared floor if it is above ``writer_lsn_after`` (read from the writer after
        the floor was read as ``seen``): such a value comes from another cluster (e.g. a restore)
        and would send every read to the writer forever."""
        if self._drop_floor_script is None or seen is None or seen <= writer_lsn_after:
            return
        try:
            dropped = await self._drop_floor_script(
                keys=[self._prefix + _FLOOR], args=[seen, writer_lsn_after]
            )
        except REDIS_ERRORS:
            return
        if dropped:
            log.warning(
                "schema floor %d in Redis is ahead of the writer (%d): dropped", seen, writer_lsn_after
            )

    async def shared_floor(self) -> int | None:
        """The schema floor stored in Redis (None if absent or unreadable)."""
        if self._redis is None or not self._breaker.allow():
            return None
        try:
            raw = await self._redis.get(self._prefix + _FLOOR)
        except REDIS_ERRORS:
            return None
        return int(raw) if raw is not None else None

    def _sweep(self) -> None:
        """Drop expired markers (keeps memory bounded by writes per TTL, also during an outage)."""
        now = self._clock()
        for table in (self._local, self._pending):
            for e in [e for e, (_lsn, exp) in table.items() if exp <= now]:
                del table[e]
        self._sweep_at = max(10_000, 2 * (len(self._local) + len(self._pending)))

    def _has_pending(self) -> bool:
        return bool(self._pending or self._pending_gens or self._pending_floor is not None)

    @property
    def pending(self) -> int:
        """Markers, floor and generation bumps not yet written to Redis (gauge)."""
        return len(self._pending) + len(self._pending_gens) + (self._pending_floor is not None)

    async def flush(self, *, check_breaker: bool = True) -> bool:
        """Send what is still owed to Redis now; True when nothing remains owed (never raises).

        :param check_breaker: ask the shared circuit breaker first. ``False`` is for a caller
            that already holds its permission (the cache sending owed invalidations, which must
            not go out before these markers). Default: True.
        """
        return await self._flush(check_breaker=check_breaker)

    async def aclose(self) -> None:
        """Stop the background re-sender (owed markers are dropped: they expire anyway)."""
        self._closed = True
        if self._flusher is not None:
            await cancel_and_wait(self._flusher, what="read-your-writes marker flusher")
            self._flusher = None

    def _ensure_flusher(self) -> None:
        if self._closed or (self._flusher is not None and not self._flusher.done()):
            return
        with contextlib.suppress(RuntimeError):  # no running loop: the next operation re-sends
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        # Why: markers owed by a process that then goes quiet would otherwise reach Redis only with
        # its next marker operation; other processes meanwhile read replicas without them.
        while self._has_pending() and not self._closed:
            await asyncio.sleep(self.flush_interval)
            await self._flush()

    async def _flush(self, *, check_breaker: bool = True) -> bool:
        """Send pending markers, floor and generation bumps to Redis in one pipeline (markers
        first: whoever sees a new generation also sees the markers). True when nothing remains."""
        if not self._has_pending() or self._redis is None or self._script is None:
            return True
        if check_breaker and not self._breaker.allow():
            self._ensure_flusher()
            return False
        now = self._clock()
        batch = {e: v for e, v in self._pending.items() if v[1] > now}
        floor, gens = self._pending_floor, set(self._pending_gens)
        by_lsn: dict[int, list[str]] = {}
        for e, (lsn, _exp) in batch.items():
            by_lsn.setdefault(lsn, []).append(self._prefix + e)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for lsn, keys in by_lsn.items():
                    await self._script(keys=keys, args=[lsn, max(1, int(self._ttl * 1000))], client=pipe)
                if floor is not None and self._floor_script is not None:
                    await self._floor_script(keys=[self._prefix + _FLOOR], args=[floor], client=pipe)
                for g in sorted(gens):
                    pipe.incr(self._gen_prefix + g)
                await pipe.execute()
        except REDIS_ERRORS as exc:
            self.redis_failures += 1
            self._breaker.record_failure()
            log.warning(
                "read-your-writes markers not written to Redis (%s); kept pending", type(exc).__name__
            )
            self._ensure_flusher()
            return False
        self._breaker.record_success()
        for e, v in batch.items():
            if self._pending.get(e) == v:
                del self._pending[e]
        for e in [e for e, v in self._pending.items() if v[1] <= now]:
            del self._pending[e]
        if self._pending_floor == floor:
            self._pending_floor = None
        self._pending_gens -= gens
        return not self._has_pending()

    def local_lsn(self, entity: str) -> int | None:
        """The in-process marker for ``entity`` (None when absent or expired)."""
        cur = self._local.get(entity)
        if cur is None:
            return None
        if cur[1] <= self._clock():
            del self._local[entity]
            return None
        return cur[0]

    def local_requirement(self) -> int | None:
        """What every read needs according to this process alone (schema floor / writer-only
        schema marker); used for reads that name no entity."""
        return strictest(self._floor, self.local_lsn(SCHEMA_ENTITY))

    async def required_lsn(self, entity: str) -> int | None:
        """Minimum replay LSN a source must have to serve ``entity``; None = any replica;
        ``WRITER_REQUIRED`` when the shared marker cannot be read."""
        return (await self.required_lsns([entity]))[0]

    async def required_lsns(self, entities: list[str]) -> list[int | None]:
        """:meth:`required_lsn` for several entities with one Redis round trip (the schema
        markers ride along in the same ``MGET``)."""
        return (await self._fetch(entities, []))[0]

    async def _fetch(self, entities: list[str], gens: list[str]) -> tuple[list[int | None], list[str | None]]:
        """Requirements for ``entities`` (schema markers included) and raw generation values, one
        ``MGET``. Generations are None when Redis is unusable (then requirements are writer-only)."""
        base = self.local_requirement()
        local = [strictest(base, self.local_lsn(e)) for e in entities]
        if self._redis is None or (not entities and not gens):
            return local, [None] * len(gens)
        unknown: tuple[list[int | None], list[str | None]] = (
            [WRITER_REQUIRED] * len(entities),
            [None] * len(gens),
        )
        if self._has_pending() and not await self._flush():
            return unknown
        if not self._breaker.allow():
            return unknown
        keys = [self._prefix + e for e in entities] + [self._prefix + SCHEMA_ENTITY, self._prefix + _FLOOR]
        keys += [self._gen_prefix + g for g in gens]
        try:
            values = await self._redis.mget(keys)
        except REDIS_ERRORS as exc:
            self.redis_failures += 1
            self._breaker.record_failure()
            log.info("read-your-writes markers unreadable (%s): reading from the writer", type(exc).__name__)
            return unknown
        self._breaker.record_success()
        n = len(entities)
        shared = strictest(*(int(raw) for raw in values[n : n + 2] if raw is not None))
        out = [
            strictest(loc, shared, int(raw) if raw is not None else None)
            for loc, raw in zip(local, values[:n], strict=True)
        ]
        return out, [_text(raw) if raw is not None else "0" for raw in values[n + 2 :]]

    async def max_required_lsn(self, entities: list[str]) -> int | None:
        """The strictest requirement over ``entities`` (for reads touching several)."""
        return strictest(*await self.required_lsns(entities))

    async def table_state(self, table: str) -> tuple[int | None, str | None]:
        """``(requirement, generation)`` for a query over a whole table (e.g. search), in one
        Redis round trip: the requirement of the table-level marker ``table:{table}`` (plus the
        schema markers) and the table's cache generation (``None``: Redis unusable, do not use
        cached results; ``"0"`` when never bumped)."""
        lsns, gens = await self._fetch([f"table:{table}"], [table])
        return lsns[0], gens[0]
