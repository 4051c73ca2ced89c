"""Read routing to the hot standby and read-your-writes with real replication lag.

Lag is made deterministic with ``tier.pause_replay()``: the standby keeps receiving WAL but
applies nothing, so anything it serves is visibly stale.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from commerce_db.localtier import DatabaseDSNs
from dataaccess import DataAccess
from tests.integration.conftest import MakeDA

pytestmark = pytest.mark.integration


async def test_reads_go_to_the_standby_and_writes_are_read_back(
    tier: Any, make_da: MakeDA, fresh_db: DatabaseDSNs, paused: Any
) -> None:
    writer = await make_da()
    await writer.migrate()
    p = await writer.products.create(sku="R1", name="Routed", price_cents=100, stock=5)
    q = await writer.products.create(sku="R2", name="Untouched", price_cents=700, stock=5)
    await asyncio.to_thread(tier.wait_for_standby)
    paused()

    # A write made behind the data layer's back (no marker) is invisible on the paused standby:
    # proof that plain reads are served by the replica.
    conn = await asyncpg.connect(fresh_db.primary)
    try:
        await conn.execute("UPDATE products SET price_cents = 701 WHERE id = $1", q.id)
    finally:
        await conn.close()
    reader = await make_da()
    stale = await reader.products.get(q.id)
    assert stale is not None and stale.price_cents == 700
    assert reader.pools.routed["replica"] >= 1

    # Writes through the data layer are read back fresh, by the writing instance and by another one.
    await writer.products.update_price(p.id, 250)
    o = await writer.orders.place(
        (await writer.users.create(email="ryw@example.com", name="R")).id,
        [(p.id, 2)],
        idempotency_key="ryw-1",
    )
    for da in (writer, reader, await make_da(redis_url=reader.settings.redis_url)):
        got = await da.products.get(p.id)
        assert got is not None and (got.price_cents, got.stock) == (250, 3)
        assert await da.orders.get(o.id) == o
    assert reader.pools.routed["writer"] >= 1  # the marked reads could not use the paused standby

    # A brand-new instance with a cold cache: only the marker in Redis can keep it off the standby.
    assert writer.cache is not None
    await writer.cache.invalidate(f"product:{p.id}")
    fresh = await make_da(redis_url=reader.settings.redis_url)
    got = await fresh.products.get(p.id)
    assert got is not None and (got.price_cents, got.stock) == (250, 3)
    assert fresh.pools.routed == {"writer": 1, "replica": 0}


async def test_final_price_visible_after_concurrent_updates_with_lagging_standby(
    tier: Any, make_da: MakeDA, paused: Any
) -> None:
    """The lead's acceptance scenario: concurrent reads and price updates from several instances,
    then a read from yet another instance (reader = lagging standby) must see the final price."""
    a, b = await make_da(), await make_da()
    await a.migrate()
    p = await a.products.create(sku="F", name="Final price", price_cents=1000, stock=1)
    assert (await b.products.get(p.id)).price_cents == 1000  # type: ignore[union-attr]  # cached
    await asyncio.to_thread(tier.wait_for_standby)
    paused()

    stop = asyncio.Event()
    reads = 0

    async def reader(da: DataAccess) -> None:
        nonlocal reads
        while not stop.is_set():
            assert await da.products.get(p.id) is not None
            reads += 1
            await asyncio.sleep(0)

    async def updater() -> None:
        for i in range(1, 31):
            await (a if i % 2 else b).products.update_price(p.id, 1000 + i)
        stop.set()

    await asyncio.gather(updater(), *(reader(d) for d in (a, b, a, b)))
    assert reads > 0
    c = await make_da()
    for da in (a, b, c):
        got = await da.products.get(p.id)
        assert got is not None and got.price_cents == 1030
    assert (await c.products.search("final price"))[0].price_cents == 1030


async def test_marked_reads_return_to_the_replica_once_it_caught_up(
    tier: Any, make_da: MakeDA, paused: Any
) -> None:
    da = await make_da(redis_url=None)  # no cache: every get is a routed DB read
    await da.migrate()
    u = await da.users.create(email="c@example.com", name="C")
    before = dict(da.pools.routed)
    assert await da.users.get(u.id) == u
    # The marker demands the write's LSN; the standby either has it already or the read went to
    # the writer. After an explicit catch-up, the replica is proven fresh enough.
    await asyncio.to_thread(tier.wait_for_standby)
    replica_before = da.pools.routed["replica"]
    assert await da.users.get(u.id) == u
    assert da.pools.routed["replica"] == replica_before + 1
    assert sum(da.pools.routed.values()) == sum(before.values()) + 2


async def test_unreachable_replica_falls_back_to_writer(make_da: MakeDA) -> None:
    da = await make_da(reader_dsns=("postgresql://app@127.0.0.1:1/none",), connect_timeout=1.0)
    await da.migrate()
    p = await da.products.create(sku="W", name="Writer only", price_cents=1, stock=1)
    assert (await da.products.get(p.id)) == p
    assert da.pools.readers[0].healthy is False
    assert da.pools.routed["replica"] == 0 and da.pools.routed["writer"] >= 1


async def test_without_lsn_routing_written_entities_read_from_writer(
    tier: Any, make_da: MakeDA, paused: Any
) -> None:
    """lsn_routing=False (replicas without WAL functions, e.g. Aurora): replicas still serve reads,
    entities written within the marker TTL come from the writer."""
    a = await make_da(lsn_routing=False)
    await a.migrate()
    p = await a.products.create(sku="NL", name="No LSN", price_cents=1, stock=1)
    q = await a.products.create(sku="NL2", name="Other", price_cents=7, stock=1)
    await asyncio.to_thread(tier.wait_for_standby)
    paused()
    await a.products.update_price(p.id, 2)
    b = await make_da(lsn_routing=False, redis_url=a.settings.redis_url)
    assert (await b.products.get(p.id)).price_cents == 2  # type: ignore[union-attr]
    assert b.pools.routed == {"writer": 1, "replica": 0}
    b.markers._local.clear()
    await b.cache.invalidate(f"product:{q.id}")  # type: ignore[union-attr]
    # Let q's marker and migrate()'s writer-only schema marker (no LSN to compare) "expire".
    ns = b.settings.cache_namespace
    await b.redis.delete(f"{ns}:rw:product:{q.id}", f"{ns}:rw:@schema")  # type: ignore[union-attr]
    assert (await b.products.get(q.id)).price_cents == 7  # type: ignore[union-attr]
    assert b.pools.routed["replica"] == 1
