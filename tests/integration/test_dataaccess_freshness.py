"""Freshness after DDL and catalogue writes, with real replication lag.

``tier.pause_replay()`` stops the standby applying WAL (it keeps receiving it), so anything it
serves is visibly stale and any table created afterwards does not exist there: a read that is
routed to it after ``migrate()`` would fail with ``UndefinedTableError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from dataaccess import DataAccess, Settings
from dataaccess.migrations import load_migrations
from tests.integration.conftest import MakeDA

pytestmark = pytest.mark.integration


@pytest.fixture
async def rds(redis_clean: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_clean)
    yield client
    await client.aclose()


async def _reads_work(da: DataAccess) -> None:
    """The calls a user makes first; each would raise UndefinedTableError on the paused standby."""
    assert await da.users.get(10**9) is None
    assert await da.products.get(10**9) is None
    assert await da.users.get_by_email("nobody@example.com") is None
    assert await da.orders.get(1 << 40) is None
    assert await da.orders.list_for_user(10**9) == []
    assert await da.products.search("anything at all") == []


# -- schema floor -----------------------------------------------------------------------------------


async def test_first_reads_after_migrate_with_replay_paused(
    make_da: MakeDA, paused: Any, rds: aioredis.Redis
) -> None:
    da = await make_da()
    paused()  # the standby will never see the tables during this test
    assert await da.migrate() == [m.version for m in load_migrations()]
    await _reads_work(da)
    assert da.stats()["schema_fallbacks"] == 0  # kept off the standby up front, not by the fallback
    assert da.pools.routed["replica"] == 0
    # The shared floor has no TTL: it must outlive any replication lag.
    assert await rds.get("cdb:rw:@floor") is not None and await rds.ttl("cdb:rw:@floor") == -1

    u = await da.users.create(email="first@example.com", name="First")
    assert await da.users.get(u.id) == u


async def test_instance_connecting_after_migrate_with_replay_paused(make_da: MakeDA, paused: Any) -> None:
    migrator = await make_da()
    paused()
    await migrator.migrate()
    # Shares the Redis: the floor marker rides along with every marker read.
    late = await make_da()
    await _reads_work(late)
    # No Redis at all: the floor comes from the schema_lsn table, read at connect.
    no_redis = await make_da(redis_url=None)
    assert no_redis.markers.floor_lsn is not None
    await _reads_work(no_redis)
    for da in (late, no_redis):
        assert da.stats()["schema_fallbacks"] == 0 and da.pools.routed["replica"] == 0


async def test_missing_table_on_replica_is_read_from_the_writer(make_da: MakeDA, paused: Any) -> None:
    """Defence in depth: an instance that cannot know about the migration (connected before it,
    no Redis) gets 42P01 from the standby; the read is re-run on the writer, never surfaced."""
    blind = await make_da(redis_url=None)
    migrator = await make_da()
    paused()
    await migrator.migrate()
    u = await migrator.users.create(email="seen@example.com", name="Seen")
    assert blind.markers.floor_lsn is None
    got = await blind.users.get(u.id)
    assert got == u
    assert blind.stats()["schema_fallbacks"] == 1
    # The standby is now treated as behind: later reads go to the writer without another error.
    assert blind.markers.floor_lsn is not None
    await _reads_work(blind)
    assert blind.stats()["schema_fallbacks"] == 1


async def test_floor_from_another_cluster_is_dropped_at_connect(make_da: MakeDA, rds: aioredis.Redis) -> None:
    first = await make_da()
    await first.migrate()
    bogus = 1 << 61  # far beyond this cluster's WAL: it would send every read to the writer
    await rds.set("cdb:rw:@floor", bogus)
    await make_da()
    assert await rds.get("cdb:rw:@floor") is None
    await first.migrate()  # the next schema change records a real floor again
    assert int(await rds.get("cdb:rw:@floor") or 0) > 0


async def test_partitions_created_later_raise_the_floor(make_da: MakeDA, paused: Any) -> None:
    da = await make_da()
    await da.migrate()
    before = da.markers.floor_lsn
    paused()
    assert await da.ensure_partitions(months_ahead=18) > 0
    assert before is not None and (da.markers.floor_lsn or 0) > before


# -- search freshness ---------------------------------------------------------------------------------


async def test_created_product_found_by_search_despite_warm_cache_and_lag(
    tier: Any, make_da: MakeDA, paused: Any, rds: aioredis.Redis
) -> None:
    a, b = await make_da(), await make_da()
    await a.migrate()
    x = await a.products.create(sku="WH-1", name="Wireless Headphones", price_cents=5000, stock=3)
    await asyncio.to_thread(tier.wait_for_standby)
    # Warm both caches for these terms (and prove the cache serves repeats).
    for da in (a, b):
        assert [p.id for p in await da.products.search("wireless")] == [x.id]
    assert b.cache is not None
    hits = b.cache.stats.hits
    assert [p.id for p in await b.products.search("wireless")] == [x.id]
    assert b.cache.stats.hits > hits
    gen_before = int(await rds.get("cdb:gen:products") or 0)

    paused()
    y = await a.products.create(sku="WE-2", name="Wireless Earbuds", price_cents=3000, stock=7)
    assert int(await rds.get("cdb:gen:products") or 0) > gen_before
    c = await make_da()  # and a brand-new instance
    for da in (a, b, c):
        found = {p.id: p for p in await da.products.search("wireless")}
        assert set(found) == {x.id, y.id}
        assert found[y.id] == y
    # Unrelated terms searched from the stale standby would miss it too: they go to the writer.
    assert [p.id for p in await c.products.search("earbuds")] == [y.id]


async def test_renamed_and_repriced_product_searched_with_current_data(
    tier: Any, make_da: MakeDA, paused: Any
) -> None:
    a, b = await make_da(), await make_da()
    await a.migrate()
    p = await a.products.create(sku="SP-1", name="Studio Headphones", price_cents=9000, stock=2)
    await asyncio.to_thread(tier.wait_for_standby)
    assert [q.id for q in await b.products.search("headphones")] == [p.id]  # cached in b
    assert await b.products.search("speaker") == []

    paused()
    await a.products.update_price(p.id, 7500)
    renamed = await a.products.rename(p.id, "Bluetooth Speaker")
    assert renamed.name == "Bluetooth Speaker" and renamed.price_cents == 7500
    for da in (a, b, await make_da()):
        assert await da.products.search("headphones") == []  # the cached ids were dropped
        hits = await da.products.search("speaker")
        assert [(q.id, q.name, q.price_cents) for q in hits] == [(p.id, "Bluetooth Speaker", 7500)]


async def test_price_update_shown_in_cached_search_results(tier: Any, make_da: MakeDA, paused: Any) -> None:
    a, b = await make_da(), await make_da()
    await a.migrate()
    p = await a.products.create(sku="LC-1", name="Lightning Cable", price_cents=900, stock=50)
    await asyncio.to_thread(tier.wait_for_standby)
    assert [q.price_cents for q in await b.products.search("cable")] == [900]
    paused()
    await a.products.update_price(p.id, 700)
    await a.products.restock(p.id, 5)
    got = await b.products.search("cable")
    assert [(q.id, q.price_cents, q.stock) for q in got] == [(p.id, 700, 55)]


async def test_search_during_redis_outage_reads_the_writer_and_bump_is_sent_later(fault_tier: Any) -> None:
    """Redis down: markers and generation unknown, so search reads the writer and skips the cache
    (fail-open, nothing stale); the generation bump that could not be sent goes out on recovery."""
    dsns = fault_tier.dsns()
    settings = Settings(
        writer_dsn=dsns.primary,
        reader_dsns=(dsns.standby,),
        redis_url=fault_tier.redis_url,
        redis_socket_timeout=0.2,
        replica_check_interval=0.2,
    )
    a = await DataAccess.connect(settings)
    b = await DataAccess.connect(settings)
    try:
        await a.migrate()
        x = await a.products.create(sku="DL", name="Desk Lamp", price_cents=2500, stock=4)
        assert [p.id for p in await b.products.search("lamp")] == [x.id]  # cached in Redis
        await fault_tier.akill_redis()
        y = await a.products.create(sku="FL", name="Floor Lamp", price_cents=8000, stock=2)
        for da in (a, b):
            assert {p.id for p in await da.products.search("lamp")} == {x.id, y.id}
        await fault_tier.astart_redis()  # empty after the kill
        client = aioredis.Redis.from_url(fault_tier.redis_url)
        try:
            assert await client.get("cdb:gen:products") is None
            # a's next marker read sends the pending bump once the breaker lets Redis calls
            # through again (it stays open ~2 s after the outage); correct results meanwhile.
            for _ in range(600):
                assert {p.id for p in await a.products.search("lamp")} == {x.id, y.id}
                if await client.get("cdb:gen:products") is not None:
                    break
                await asyncio.sleep(0.05)
            assert int(await client.get("cdb:gen:products") or 0) >= 1
            assert a.markers.redis_failures >= 1
        finally:
            await client.aclose()
        assert {p.id for p in await b.products.search("lamp")} == {x.id, y.id}
    finally:
        await a.close()
        await b.close()
