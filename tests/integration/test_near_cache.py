"""Near cache (``near_cache_ttl``): in-process copies of hot products, coherent through Redis
client tracking. Same process: never stale after an acknowledged write. Other processes: stale
only until the invalidation message is read, and never past ``ttl`` (also when messages are
lost or the tracking link dies)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aredis

from commerce_db.localtier import DatabaseDSNs
from dataaccess import DataAccess
from dataaccess.near_cache import NearCache
from dataaccess.redis_client import create_redis
from tests.integration.conftest import MakeDA

pytestmark = pytest.mark.integration


@pytest.fixture
def da_defaults(fresh_db: DatabaseDSNs, redis_clean: str) -> dict[str, Any]:
    # A long TTL: what the tests see must come from invalidations, not from expiry.
    return {"writer_dsn": fresh_db.primary, "redis_url": redis_clean, "near_cache_ttl": 600.0}


async def _near(da: DataAccess) -> NearCache:
    assert da.cache is not None and da.cache.near is not None
    assert await da.cache.near.wait_live()
    return da.cache.near


async def _until(cond: Any, what: str) -> None:
    """Wait for an event the test caused (not a timing assertion: generous bound, then fail)."""
    for _ in range(1000):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def _held(da: DataAccess, pid: int) -> None:
    """Read until the product is served from process memory."""
    near = await _near(da)
    before = near.stats.hits
    for _ in range(3):
        await da.products.get(pid)
    assert near.stats.hits > before


async def test_same_process_never_stale_after_acknowledged_writes(make_da: MakeDA) -> None:
    da = await make_da()
    await da.migrate()
    u = await da.users.create(email="n@example.com", name="N")
    p = await da.products.create(sku="NC", name="Near", price_cents=100, stock=10)
    await _held(da, p.id)
    await da.products.update_price(p.id, 90)
    assert (await da.products.get(p.id)).price_cents == 90  # type: ignore[union-attr]
    await _held(da, p.id)
    await da.orders.place(u.id, [(p.id, 4)], idempotency_key="nc-1")
    assert (await da.products.get(p.id)).stock == 6  # type: ignore[union-attr]
    await _held(da, p.id)
    await da.products.restock(p.id, 5)
    assert (await da.products.get(p.id)).stock == 11  # type: ignore[union-attr]
    got = await da.products.get_many([p.id])
    assert got[0].stock == 11 and got[0].price_cents == 90


async def test_other_process_sees_the_write_once_the_invalidation_arrives(make_da: MakeDA) -> None:
    writer, reader = await make_da(), await make_da()  # two clients, two tracking connections
    await writer.migrate()
    p = await writer.products.create(sku="X", name="Cross", price_cents=100, stock=10)
    await _held(reader, p.id)
    near = await _near(reader)
    seen = near.stats.invalidations
    await writer.products.update_price(p.id, 70)
    await _until(lambda: near.stats.invalidations > seen, "invalidation message in the reader")
    assert (await reader.products.get(p.id)).price_cents == 70  # type: ignore[union-attr]


async def test_fill_racing_an_invalidation_is_rejected(redis_clean: str) -> None:
    client = create_redis(redis_clean)
    other = aredis.Redis.from_url(redis_clean)
    near = NearCache(client, prefixes=["t:"], ttl=600)
    near.start()
    try:
        assert await near.wait_live()
        await other.set("t:1", b"old")
        token = near.token()  # a reader takes its token, then reads
        value = await client.get("t:1")
        seen = near.stats.invalidations
        await other.set("t:1", b"new")  # a writer changes the key before the reader's fill
        await _until(lambda: near.stats.invalidations > seen, "invalidation message")
        near.put("t:1", value, token)
        assert near.is_miss(near.get("t:1")) and near.stats.fills_rejected == 1
        token = near.token()
        near.put("t:1", await client.get("t:1"), token)
        assert near.get("t:1") == b"new"
        await other.flushdb()  # everything gone in Redis: everything gone here
        await _until(lambda: near.is_miss(near.get("t:1")), "flush message")
    finally:
        await near.aclose()
        await client.aclose()
        await other.aclose()


async def test_ttl_bounds_staleness_when_messages_are_lost(redis_clean: str) -> None:
    now = [1000.0]
    client = create_redis(redis_clean)
    near = NearCache(client, prefixes=["t:"], ttl=2.0, max_silence=1e9, clock=lambda: now[0])
    near.start()
    try:
        assert await near.wait_live()
        near.put("t:2", b"v", near.token())  # as if no message about t:2 ever arrives
        now[0] += 1.9
        assert near.get("t:2") == b"v"
        now[0] += 0.2
        assert near.is_miss(near.get("t:2"))  # past ttl: back to Redis
    finally:
        await near.aclose()
        await client.aclose()


async def test_entries_are_not_served_without_a_live_tracking_link(redis_clean: str) -> None:
    client = create_redis(redis_clean)
    admin = aredis.Redis.from_url(redis_clean)
    near = NearCache(client, prefixes=["t:"], ttl=600)
    near.start()
    try:
        assert await near.wait_live()
        near.put("t:3", b"v", near.token())
        assert near.get("t:3") == b"v"
        resets = near.stats.resets
        await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")  # the tracking connection
        await _until(lambda: near.stats.resets > resets, "reset after the link died")
        assert near.is_miss(near.get("t:3"))  # cleared: a message may have been lost
        assert await near.wait_live()  # reconnects by itself
        near.put("t:3", b"w", near.token())
        assert near.get("t:3") == b"w"
    finally:
        await near.aclose()
        await client.aclose()
        await admin.aclose()


def test_bad_settings_name_the_field() -> None:
    from dataaccess import Settings
    from dataaccess.settings import SettingsError

    with pytest.raises(SettingsError, match="near_cache_ttl"):
        Settings(writer_dsn="postgresql://x@h/db", near_cache_ttl=-1)
    with pytest.raises(ValueError, match="prefix"):
        NearCache(aredis.Redis(), prefixes=[])


async def test_search_after_a_catalogue_write_sees_it_in_both_processes(make_da: MakeDA) -> None:
    writer, reader = await make_da(), await make_da()
    await writer.migrate()
    p = await writer.products.create(sku="S1", name="Quiet kettle", price_cents=100, stock=1)
    for da in (writer, reader):  # results, products and the generation held in memory
        for _ in range(3):
            assert [x.id for x in await da.products.search("kettle")] == [p.id]
    near = await _near(reader)
    seen = near.stats.invalidations
    await writer.products.rename(p.id, "Quiet teapot")
    assert [x.id for x in await writer.products.search("teapot")] == [p.id]  # same process: at once
    assert await writer.products.search("kettle") == []
    await _until(lambda: near.stats.invalidations > seen, "invalidation message in the reader")
    assert [x.id for x in await reader.products.search("teapot")] == [p.id]
