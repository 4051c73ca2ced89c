"""The read-consistency contract of docs/dataaccess.md ("Consistency contract") under faults.

Each test plays two (or three) processes — separate ``DataAccess`` instances sharing the servers —
and injects one fault through the local tier (fault proxy, paused replay, detached WAL receiver).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from commerce_db.localtier import LocalTier
from dataaccess import DataAccess, Settings

# The standby streams WAL through a fault proxy, so a stalled WAL stream is one of the faults.
pytestmark = [pytest.mark.integration, pytest.mark.fault_tier_options(replication_proxy=True)]

_FAULTS = {
    "detached WAL receiver": ("detach_wal_receiver", "attach_wal_receiver"),
    "stalled WAL stream": ("hang_wal_stream", "resume_wal_stream"),
    "replay paused": ("pause_replay", "resume_replay"),
}


@pytest.fixture
async def procs(fault_tier: LocalTier) -> AsyncIterator[Any]:
    made: list[DataAccess] = []

    async def make(**overrides: Any) -> DataAccess:
        kwargs: dict[str, Any] = {
            "writer_dsn": fault_tier.dsns().primary,
            "redis_url": fault_tier.redis_url,
            "replica_check_interval": 0.1,
            "retry_attempts": 20,
            "retry_max_delay": 0.5,
        }
        kwargs.update(overrides)
        da = await DataAccess.connect(Settings(**kwargs))
        made.append(da)
        return da

    yield make
    for da in made:
        await da.close()


async def _until(predicate: Any, *, what: str, attempts: int = 400) -> None:
    """Poll ``predicate()`` (async) every 50 ms until true; a liveness bound, not a timing test."""
    for _ in range(attempts):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


@pytest.mark.parametrize("fault", list(_FAULTS))
async def test_reader_only_process_stops_reading_a_detached_standby(
    fault_tier: LocalTier, procs: Any, fault: str
) -> None:
    """Defect 2: a process that never writes kept a standby whose WAL receiver is gone in
    rotation for good (it reports no pending WAL). Every process now samples the writer's WAL
    position: a replica behind a position seen more than ``max_replica_lag`` ago gets no reads."""
    inject, repair = (getattr(fault_tier, name) for name in _FAULTS[fault])
    standby = fault_tier.dsns().standby
    writer = await procs(redis_url=None)  # no shared markers: only replica health can protect B
    await writer.migrate()
    p = await writer.products.create(sku="D2", name="Detached", price_cents=100, stock=5)
    await asyncio.to_thread(fault_tier.wait_for_standby)
    reader = await procs(
        redis_url=None, reader_dsns=(standby,), max_replica_lag=0.5, read_your_writes_ttl=5.0
    )
    got = await reader.products.get(p.id)
    assert got is not None and got.price_cents == 100
    assert reader.pools.readers[0].healthy

    await asyncio.to_thread(inject)
    try:
        await writer.products.update_price(p.id, 200)
        await reader.pools.check_replicas()  # samples the writer's position (after the update)
        await asyncio.sleep(0.5)  # = max_replica_lag: that sample is now overdue
        await reader.pools.check_replicas()
        assert not reader.pools.readers[0].healthy
        got = await reader.products.get(p.id)
        assert got is not None and got.price_cents == 200
        assert (await reader.products.search("Detached"))[0].price_cents == 200
    finally:
        await asyncio.to_thread(repair)
    await asyncio.to_thread(fault_tier.wait_for_standby)
    await _until(lambda: _healthy(reader), what="the reattached standby back in rotation")


async def _healthy(da: DataAccess) -> bool:
    await da.pools.check_replicas()
    return da.pools.readers[0].healthy


async def test_idle_caught_up_standby_stays_in_rotation(fault_tier: LocalTier, procs: Any) -> None:
    """The writer-position sample must not take a healthy, idle standby out of rotation."""
    writer = await procs(redis_url=None)
    await writer.migrate()
    await writer.products.create(sku="IDLE", name="Idle", price_cents=1, stock=1)
    await asyncio.to_thread(fault_tier.wait_for_standby)
    reader = await procs(
        redis_url=None,
        reader_dsns=(fault_tier.dsns().standby,),
        max_replica_lag=0.3,
        read_your_writes_ttl=5.0,
    )
    for _ in range(3):
        await reader.pools.check_replicas()
        await asyncio.sleep(0.35)
    await reader.pools.check_replicas()
    assert reader.pools.readers[0].healthy


async def test_write_while_writer_cannot_reach_redis_is_never_refilled_stale(
    fault_tier: LocalTier, procs: Any
) -> None:
    """Defect 1: A updates a price while its Redis link is down. Its invalidation used to be
    flushed before its read-your-writes marker, so B missed the cache, found no marker, read a
    lagging (but "healthy") replica and cached the old row for a whole TTL — which A then read.
    Now markers always reach Redis before the invalidation."""
    standby = fault_tier.dsns().standby
    common = {"reader_dsns": (standby,), "max_replica_lag": 60.0, "read_your_writes_ttl": 120.0}
    a = await procs(redis_url=fault_tier.proxied_redis_url, **common)
    b = await procs(**common)
    await a.migrate()
    p = await a.products.create(sku="RW1", name="Outage", price_cents=100, stock=5)
    await asyncio.to_thread(fault_tier.wait_for_standby)
    got = await b.products.get(p.id)
    assert got is not None and got.price_cents == 100  # cached by B
    await asyncio.to_thread(fault_tier.pause_replay)  # the replica lags, within max_replica_lag
    proxy = fault_tier.proxy("redis")
    try:
        proxy.refuse()
        await asyncio.to_thread(proxy.cut)
        updated = await a.products.update_price(p.id, 200)  # acknowledged; Redis unreachable for A
        assert updated.price_cents == 200
        assert a.cache is not None and a.cache.stats.pending_invalidations >= 1
        await asyncio.to_thread(proxy.heal)
        # A's background flush (markers first, then invalidations) after the breaker cooldown.
        await _until(
            lambda: _nothing_owed(a), what="A's owed markers and invalidations flushed after Redis came back"
        )
        for reader in (b, a, b):
            got = await reader.products.get(p.id)
            assert got is not None and got.price_cents == 200
    finally:
        await asyncio.to_thread(proxy.heal)
        await asyncio.to_thread(fault_tier.resume_replay)


async def _nothing_owed(da: DataAccess) -> bool:
    assert da.cache is not None
    return da.cache.stats.pending_invalidations == 0 and da.markers.pending == 0
