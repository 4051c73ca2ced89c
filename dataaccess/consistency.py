"""Read-your-writes across processes: "written at LSN X" markers per entity.

After a commit, the writer's WAL insert position (``pg_current_wal_insert_lsn()``) is recorded
for every entity the transaction changed, both in-process and in Redis (key
``{ns}:rw:{entity}``, value = LSN, TTL ``read_your_writes_ttl``; a Lua script only ever raises
the value). A later read of that entity, from *any* process, asks for a connection whose replay
LSN is ≥ the marker (:meth:`Pools.reader`), i.e. the writer or a caught-up replica — Facebook's
"remote markers" (NSDI'13 §5), GitLab's load-balancing "sticking". Cache fills happen inside the
loader, so a value cached after a write was read from a source at least as new as the write.

Failure handling: if Redis cannot be read, the required LSN is unknown and the read goes to the
writer (``WRITER_REQUIRED``). Markers that could not be written are kept in-process and re-sent
before the next marker read once Redis answers. A marker outlives the time a replica may lag
while still receiving reads (``Settings`` enforces ``ttl > max_replica_lag + check interval``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import redis.asyncio as aioredis

from ._breaker import CircuitBreaker
from .cache import REDIS_ERRORS
from .pools import WRITER_REQUIRED

__all__ = ["WriteMarkers"]

log = logging.getLogger(__name__)

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


class WriteMarkers:
    """Per-entity last-write LSNs, local and (when ``redis`` is given) shared through Redis.

    :param redis: client for the Redis primary, or None for process-local markers only.
    :param namespace: key prefix. :param ttl: marker lifetime in seconds.
    :param breaker: shared circuit breaker (skip Redis while it is down). Default: a new one.
    """

    def __init__(
        self,
        redis: aioredis.Redis | None,
        *,
        namespace: str,
        ttl: float,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._redis = redis
        self._prefix = f"{namespace}:rw:"
        self._ttl = ttl
        self._breaker = breaker or CircuitBreaker()
        self._local: dict[str, tuple[int, float]] = {}
        self._pending: dict[str, tuple[int, float]] = {}
        self._sweep_at = 10_000
        self._script = redis.register_script(_MARK_LUA) if redis is not None else None
        self.redis_failures = 0
        """Marker reads/writes that could not reach Redis (reads then went to the writer)."""

    def _remember(self, table: dict[str, tuple[int, float]], entity: str, lsn: int) -> None:
        expires = time.monotonic() + self._ttl
        cur = table.get(entity)
        if cur is None or cur[0] < lsn or cur[1] < expires:
            table[entity] = (max(lsn, cur[0] if cur else lsn), expires)

    async def mark(self, entities: Iterable[str], lsn: int) -> None:
        """Record that ``entities`` were written at ``lsn`` (never raises)."""
        entities = list(dict.fromkeys(entities))
        if not entities:
            return
        if len(self._local) + len(self._pending) >= self._sweep_at:
            self._sweep()
        for e in entities:
            self._remember(self._local, e, lsn)
        if self._script is None:
            return
        for e in entities:
            self._remember(self._pending, e, lsn)
        await self._flush()

    def _sweep(self) -> None:
        """Drop expired markers (keeps memory bounded by writes per TTL, also during an outage)."""
        now = time.monotonic()
        for table in (self._local, self._pending):
            for e in [e for e, (_lsn, exp) in table.items() if exp <= now]:
                del table[e]
        self._sweep_at = max(10_000, 2 * (len(self._local) + len(self._pending)))

    async def _flush(self) -> bool:
        """Send pending markers to Redis. True when nothing remains pending."""
        if not self._pending or self._script is None:
            return True
        if not self._breaker.allow():
            return False
        now = time.monotonic()
        batch = {e: v for e, v in self._pending.items() if v[1] > now}
        by_lsn: dict[int, list[str]] = {}
        for e, (lsn, _exp) in batch.items():
            by_lsn.setdefault(lsn, []).append(self._prefix + e)
        try:
            for lsn, keys in by_lsn.items():
                await self._script(keys=keys, args=[lsn, max(1, int(self._ttl * 1000))])
        except REDIS_ERRORS as exc:
            self.redis_failures += 1
            self._breaker.record_failure()
            log.warning(
                "read-your-writes markers not written to Redis (%s); kept pending", type(exc).__name__
            )
            return False
        self._breaker.record_success()
        for e, v in batch.items():
            if self._pending.get(e) == v:
                del self._pending[e]
        for e in [e for e, v in self._pending.items() if v[1] <= now]:
            del self._pending[e]
        return not self._pending

    def local_lsn(self, entity: str) -> int | None:
        """The in-process marker for ``entity`` (None when absent or expired)."""
        cur = self._local.get(entity)
        if cur is None:
            return None
        if cur[1] <= time.monotonic():
            del self._local[entity]
            return None
        return cur[0]

    async def required_lsn(self, entity: str) -> int | None:
        """Minimum replay LSN a source must have to serve ``entity``; None = any replica;
        ``WRITER_REQUIRED`` when the shared marker cannot be read."""
        return (await self.required_lsns([entity]))[0]

    async def required_lsns(self, entities: list[str]) -> list[int | None]:
        """:meth:`required_lsn` for several entities with one Redis round trip."""
        local = [self.local_lsn(e) for e in entities]
        if self._redis is None or not entities:
            return local
        if self._pending and not await self._flush():
            return [WRITER_REQUIRED] * len(entities)
        if not self._breaker.allow():
            return [WRITER_REQUIRED] * len(entities)
        try:
            values = await self._redis.mget([self._prefix + e for e in entities])
        except REDIS_ERRORS as exc:
            self.redis_failures += 1
            self._breaker.record_failure()
            log.info("read-your-writes markers unreadable (%s): reading from the writer", type(exc).__name__)
            return [WRITER_REQUIRED] * len(entities)
        self._breaker.record_success()
        out: list[int | None] = []
        for loc, raw in zip(local, values, strict=True):
            remote = int(raw) if raw is not None else None
            both = [v for v in (loc, remote) if v is not None]
            out.append(max(both) if both else None)
        return out

    async def max_required_lsn(self, entities: list[str]) -> int | None:
        """The strictest requirement over ``entities`` (for reads touching several)."""
        lsns = await self.required_lsns(entities)
        if WRITER_REQUIRED in lsns:
            return WRITER_REQUIRED
        present = [v for v in lsns if v is not None]
        return max(present) if present else None
