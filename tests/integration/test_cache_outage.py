"""CacheAside when Redis dies mid-run: fail-open reads, breaker, deferred invalidations, recovery.

The breaker gets a hand-driven clock so "cooldown elapsed" is a step of the test, not a sleep.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import pytest

from dataaccess.cache import BreakerState, CacheAside, CircuitBreaker
from dataaccess.redis_client import create_redis
from tests.integration.redis_faults import KillableRedis, killable_redis

__all__ = ["killable_redis"]  # fixture re-exported for pytest

pytestmark = pytest.mark.integration


def enc(value: Any) -> bytes:
    return json.dumps(value).encode()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Source:
    def __init__(self, rows: dict[str, Any]) -> None:
        self.rows = rows
        self.loads = 0

    async def get(self, cache: CacheAside, key: str) -> Any:
        async def load() -> Any:
            self.loads += 1
            return self.rows.get(key)

        return await cache.get_or_load(key, load, ttl=60, encode=enc, decode=json.loads)


async def _outage(tier: KillableRedis, recovery: str) -> None:
    ns = "t" + secrets.token_hex(4)
    clock = Clock()
    client = create_redis(tier.redis_url)
    cache = CacheAside(
        client,
        namespace=ns,
        invalidation_grace=0,
        flush_interval=3600,  # this test drives recovery itself
        breaker=CircuitBreaker(failure_threshold=3, cooldown=5.0, clock=clock),
    )
    src = Source({f"p:{i}": {"v": i} for i in range(10)})
    try:
        for i in range(10):
            await src.get(cache, f"p:{i}")
        assert src.loads == 10 and cache.stats.fills == 10

        tier.kill()
        # Concurrent reads during the outage: values from the source, no exception.
        results = await asyncio.gather(*(src.get(cache, f"p:{i}") for i in range(10)))
        assert results == [{"v": i} for i in range(10)]
        assert cache.breaker_state is BreakerState.OPEN and cache.breaker_open
        errors = cache.stats.errors
        assert errors >= 3 and cache.stats.breaker_opens == 1

        # While open, Redis is not even tried: no new errors, no timeouts.
        for i in range(10):
            assert await src.get(cache, f"p:{i}") == {"v": i}
        assert cache.stats.errors == errors and cache.stats.skipped >= 10

        # A write during the outage: the invalidation is remembered, not lost, not raised.
        src.rows["p:1"] = {"v": 100}
        await cache.invalidate("p:1")
        assert cache.stats.pending_invalidations == 1 and cache.stats.invalidations_deferred == 1
    finally:
        tier.start()

    # Redis is back *with the pre-outage value* (as after a replica promotion or an AOF reload).
    raw = create_redis(tier.redis_url)
    try:
        await raw.set(f"{ns}:cache:v1:p:1", b"\x01" + enc({"v": 1}))
        assert await src.get(cache, "p:1") == {"v": 100}  # breaker still open: straight to source
        clock.now += 5.0  # cooldown elapsed -> next call is the half-open probe
        if recovery == "flush":
            assert await cache.flush_pending() is True
            assert await raw.exists(f"{ns}:cache:v1:p:1") == 0  # the owed invalidation reached Redis
        # A read must never serve the stale value: the pending invalidation is flushed first.
        assert await src.get(cache, "p:1") == {"v": 100}
        assert cache.breaker_state is BreakerState.CLOSED
        s = cache.stats
        assert s.pending_invalidations == 0 and s.invalidations == 1
        assert await raw.get(f"{ns}:cache:v1:p:1") == b"\x01" + enc({"v": 100})
        assert await src.get(cache, "p:2") == {"v": 2}  # the rest of the cache is usable again
    finally:
        await raw.aclose()
        await cache.aclose()
        await client.aclose()


async def test_outage_recovered_by_next_read(killable_redis: KillableRedis):
    await _outage(killable_redis, "read")


async def test_outage_recovered_by_explicit_flush(killable_redis: KillableRedis):
    await _outage(killable_redis, "flush")


async def test_background_flusher_clears_pending_after_recovery(killable_redis: KillableRedis):
    tier = killable_redis
    ns = "t" + secrets.token_hex(4)
    clock = Clock()
    client = create_redis(tier.redis_url)
    cache = CacheAside(
        client,
        namespace=ns,
        flush_interval=0.02,
        breaker=CircuitBreaker(failure_threshold=1, cooldown=5.0, clock=clock),
    )
    try:
        tier.kill()
        await cache.invalidate("a", "b")
        assert cache.stats.pending_invalidations == 2
        tier.start()
        raw = create_redis(tier.redis_url)
        try:
            await raw.set(f"{ns}:cache:v1:a", b"stale")
            await asyncio.sleep(0.1)  # flusher ticks, but the breaker is still open
            assert await raw.exists(f"{ns}:cache:v1:a") == 1
            clock.now += 5.0
            for _ in range(500):  # no traffic at all: the background task alone flushes
                if cache.stats.pending_invalidations == 0:
                    break
                await asyncio.sleep(0.01)
            assert cache.stats.pending_invalidations == 0
            assert await raw.exists(f"{ns}:cache:v1:a") == 0
        finally:
            await raw.aclose()
    finally:
        await cache.aclose()
        await client.aclose()


async def test_pending_overflow_purges_namespace_on_recovery(killable_redis: KillableRedis):
    tier = killable_redis
    ns = "t" + secrets.token_hex(4)
    clock = Clock()
    client = create_redis(tier.redis_url)
    cache = CacheAside(
        client,
        namespace=ns,
        max_pending_invalidations=3,
        flush_interval=3600,
        breaker=CircuitBreaker(failure_threshold=1, cooldown=1.0, clock=clock),
    )
    try:
        tier.kill()
        await cache.invalidate("a", "b", "c", "d")  # one more than can be remembered
        assert cache.stats.pending_invalidations == 0 and cache.stats.invalidations_deferred == 4
        tier.start()
        raw = create_redis(tier.redis_url)
        try:
            await raw.set(f"{ns}:cache:v1:x", b"stale")
            await raw.set(f"{ns}:cache:v1:y", b"stale")
            await raw.set("other:key", b"keep")
            clock.now += 1.0
            assert await cache.flush_pending() is True
            assert await raw.exists(f"{ns}:cache:v1:x", f"{ns}:cache:v1:y") == 0
            assert await raw.get("other:key") == b"keep"
            assert cache.stats.namespace_purges == 1
        finally:
            await raw.delete("other:key")
            await raw.aclose()
    finally:
        await cache.aclose()
        await client.aclose()


async def test_readonly_replica_errors_fail_open(killable_redis: KillableRedis):
    """ResponseError READONLY (stale connection to a demoted primary) is a miss, not an exception."""
    killable_redis.start_replica()
    client = create_redis(killable_redis.redis_replica_url)
    cache = CacheAside(client, namespace="t" + secrets.token_hex(4))
    src = Source({"k": {"v": 1}})
    try:
        assert await src.get(cache, "k") == {"v": 1}
        await cache.invalidate("k")
        s = cache.stats
        assert s.errors == 2 and s.loads == 1 and s.pending_invalidations == 1
    finally:
        await cache.aclose()
        await client.aclose()


async def test_readonly_after_failover_drops_stale_pooled_connections(killable_redis: KillableRedis):
    """After a failover the old primary answers READONLY forever on the pooled connections
    (redis-py #1764); the cache fails open *and* drops them so the next command reconnects."""
    killable_redis.start_replica()
    client = create_redis(killable_redis.redis_url)
    admin = create_redis(killable_redis.redis_url)
    replica = create_redis(killable_redis.redis_replica_url)
    cache = CacheAside(client, namespace="t" + secrets.token_hex(4))
    src = Source({"k": {"v": 1}})
    try:
        conn_before = await client.client_id()
        # Fail over: the replica becomes primary, the old primary its replica.
        await replica.execute_command("REPLICAOF", "NO", "ONE")
        await admin.execute_command("REPLICAOF", "127.0.0.1", killable_redis.replica.port)
        assert await src.get(cache, "k") == {"v": 1}  # READONLY: served from the source
        assert cache.stats.errors == 1 and cache.stats.fills == 0
        # Fail back (in ElastiCache the endpoint's DNS would now name the new primary instead).
        await admin.execute_command("REPLICAOF", "NO", "ONE")
        assert await client.client_id() != conn_before  # a fresh connection, not the stale one
        assert await src.get(cache, "k") == {"v": 1}
        assert cache.stats.fills == 1
    finally:
        await cache.aclose()
        for c in (client, admin, replica):
            await c.aclose()
