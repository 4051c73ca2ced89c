"""Fault drills on a private LocalTier: primary restarted under load, standby promoted and the
data layer pointed at it, Redis killed mid-run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from commerce_db.localtier import LocalTier
from dataaccess import DataAccess, OutOfStock, Settings

pytestmark = [pytest.mark.integration, pytest.mark.drill]


def settings_for(tier: LocalTier, **overrides: Any) -> Settings:
    kwargs: dict[str, Any] = {
        "writer_dsn": tier.dsns().primary,
        "redis_url": tier.redis_url,
        "retry_attempts": 30,  # generous: a loaded CI box restarts PostgreSQL slowly
        "retry_base_delay": 0.05,
        "retry_max_delay": 0.5,
        "connect_timeout": 2.0,
        "replica_check_interval": 0.2,
        "writer_pool_max": 10,
    }
    kwargs.update(overrides)
    return Settings(**kwargs)


@pytest.fixture
async def da_on(fault_tier: LocalTier) -> AsyncIterator[Any]:
    made: list[DataAccess] = []

    async def make(**overrides: Any) -> DataAccess:
        da = await DataAccess.connect(settings_for(fault_tier, **overrides))
        made.append(da)
        return da

    yield make
    for da in made:
        await da.close()


async def db_orders(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT idempotency_key, count(*) AS n FROM orders GROUP BY 1")
        return {r["idempotency_key"]: r["n"] for r in rows}
    finally:
        await conn.close()


async def test_primary_restart_mid_run_retries_succeed_without_duplicates(
    fault_tier: LocalTier, da_on: Any
) -> None:
    da = await da_on()
    await da.migrate()
    user = await da.users.create(email="drill@example.com", name="Drill")
    product = await da.products.create(sku="D", name="Drill bit", price_cents=100, stock=10_000)
    acked: dict[str, int] = {}
    errors: list[BaseException] = []
    restarted = asyncio.Event()

    async def worker(w: int) -> None:
        for i in range(40):
            k = f"w{w}-{i}"
            try:
                order = await da.orders.place(user.id, [(product.id, 1)], idempotency_key=k)
                acked[k] = order.id
                await da.products.get(product.id)
                await da.products.update_price(product.id, 100 + i)  # idempotent write: retried too
            except Exception as exc:
                errors.append(exc)
            if i == 5 and w == 0:
                await fault_tier.arestart_primary("fast")  # AdminShutdown mid-flight, then refusals
                restarted.set()

    await asyncio.gather(*(worker(w) for w in range(6)))
    assert restarted.is_set()
    assert errors == []
    assert sum(da.stats()["retries"].values()) > 0  # the restart really hit in-flight work
    in_db = await db_orders(fault_tier.dsns().primary)
    assert set(in_db) == set(acked)  # nothing acknowledged was lost, nothing unacknowledged exists
    assert all(n == 1 for n in in_db.values())  # retried placements created no duplicates
    # Re-submitting after the drill returns the same orders (client-side retries are safe too).
    for k in list(acked)[:10]:
        assert (await da.orders.place(user.id, [(product.id, 1)], idempotency_key=k)).id == acked[k]
    got = await da.products.get(product.id)
    assert got is not None and got.stock == 10_000 - len(acked)


async def test_standby_promoted_and_data_layer_pointed_at_it(fault_tier: LocalTier, da_on: Any) -> None:
    dsns = fault_tier.dsns()
    da = await da_on(reader_dsns=(dsns.standby,))
    await da.migrate()
    user = await da.users.create(email="promo@example.com", name="P")
    product = await da.products.create(sku="PR", name="Promoted", price_cents=100, stock=10)
    first = await da.orders.place(user.id, [(product.id, 2)], idempotency_key="before-failover")
    await asyncio.to_thread(fault_tier.wait_for_standby)

    await fault_tier.akill_primary()
    new_writer = await fault_tier.apromote_standby()
    await da.set_writer_dsn(new_writer)
    await da.set_reader_dsns([])

    # Replicated data is there; the same key still returns the original order; new writes work.
    assert (
        await da.orders.place(user.id, [(product.id, 2)], idempotency_key="before-failover")
    ).id == first.id
    second = await da.orders.place(user.id, [(product.id, 3)], idempotency_key="after-failover")
    assert await da.orders.get(second.id) == second
    got = await da.products.get(product.id)
    assert got is not None and got.stock == 5
    with pytest.raises(OutOfStock):
        await da.orders.place(user.id, [(product.id, 6)], idempotency_key="too-many")
    assert await db_orders(new_writer) == {"before-failover": 1, "after-failover": 1}


async def test_writer_behind_pgbouncer_follows_a_promotion(fault_tier: LocalTier, da_on: Any) -> None:
    """PgBouncer (playing RDS Proxy) is repointed by the failover: no DSN change is needed (stale
    server connections are PgBouncer's to replace; anything surfacing to us is retried)."""
    dsns = fault_tier.dsns()
    setup = await da_on()
    await setup.migrate()
    da = await da_on(writer_dsn=dsns.pgbouncer, proxy_mode="pgbouncer")
    user = await da.users.create(email="pgb@example.com", name="P")
    product = await da.products.create(sku="PB", name="Bounced", price_cents=100, stock=10)
    await asyncio.to_thread(fault_tier.wait_for_standby)
    await fault_tier.akill_primary()
    await fault_tier.apromote_standby(repoint_pgbouncer=True)
    order = await da.orders.place(user.id, [(product.id, 1)], idempotency_key="via-pgbouncer")
    assert (await da.orders.get(order.id)) == order
    await da.products.update_price(product.id, 123)
    assert (await da.products.get(product.id)).price_cents == 123  # type: ignore[union-attr]


async def test_redis_killed_mid_run_reads_served_from_db(fault_tier: LocalTier, da_on: Any) -> None:
    da = await da_on(redis_socket_timeout=0.2)
    await da.migrate()
    user = await da.users.create(email="rk@example.com", name="RK")
    product = await da.products.create(sku="RK", name="Killed cache", price_cents=100, stock=50)
    assert (await da.products.get(product.id)).stock == 50  # type: ignore[union-attr]  # cached
    await fault_tier.akill_redis()
    for i in range(5):
        await da.orders.place(user.id, [(product.id, 1)], idempotency_key=f"rk-{i}")
        got = await da.products.get(product.id)
        assert got is not None and got.stock == 50 - (i + 1)  # never the cached 50
        assert await da.users.get(user.id) == user
    await da.products.update_price(product.id, 77)
    assert (await da.products.get(product.id)).price_cents == 77  # type: ignore[union-attr]
    assert da.cache is not None and da.cache.stats.pending_invalidations >= 1
    await fault_tier.astart_redis()  # empty after the kill; queued invalidations flush on recovery
    await asyncio.sleep(0)
    got = await da.products.get(product.id)
    assert got is not None and (got.price_cents, got.stock) == (77, 45)


async def test_replica_with_disconnected_wal_receiver_is_taken_out(fault_tier: LocalTier, da_on: Any) -> None:
    """A standby that stopped receiving WAL reports no pending replay (its lag figure looks like 0),
    but it is behind commits this process made more than ``max_replica_lag`` ago: no more reads."""
    dsns = fault_tier.dsns()
    da = await da_on(
        reader_dsns=(dsns.standby,), max_replica_lag=0.5, read_your_writes_ttl=5.0, replica_check_interval=0.1
    )
    await da.migrate()
    await asyncio.to_thread(fault_tier.wait_for_standby)
    await da.pools.check_replicas()
    assert da.pools.readers[0].healthy
    admin = await asyncpg.connect(fault_tier.standby_admin_dsn)
    try:
        await admin.execute("ALTER SYSTEM SET primary_conninfo = ''")
        await admin.execute("SELECT pg_reload_conf()")
        for _ in range(100):  # wait (bounded) for the receiver to go away
            if await admin.fetchval("SELECT count(*) FROM pg_stat_wal_receiver") == 0:
                break
            await asyncio.sleep(0.05)
        p = await da.products.create(sku="DC", name="Disconnected", price_cents=1, stock=1)
        for _ in range(100):
            await da.pools.check_replicas()
            if not da.pools.readers[0].healthy:
                break
            await asyncio.sleep(0.05)
        assert not da.pools.readers[0].healthy
        # Reads avoid it and see the new row on the writer.
        before = da.pools.routed["replica"]
        assert await da.products.get_many([p.id]) == [p]
        assert da.pools.routed["replica"] == before
    finally:
        await admin.close()


async def test_replica_dying_mid_run_reads_continue_on_the_writer(fault_tier: LocalTier, da_on: Any) -> None:
    dsns = fault_tier.dsns()
    # No background health checks (interval 10 min) and patient timeouts: the replica's health
    # changes only through what this test does, not through a check that timed out on a loaded
    # machine. The read path alone must notice the dead replica and fall back to the writer.
    da = await da_on(
        reader_dsns=(dsns.standby,),
        redis_url=None,  # no cache: every get hits the DB
        connect_timeout=30.0,
        command_timeout=60.0,
        replica_check_interval=600.0,
        max_replica_lag=60.0,
        read_your_writes_ttl=700.0,
    )
    await da.migrate()
    p = await da.products.create(sku="RD", name="Replica dies", price_cents=1, stock=1)
    await asyncio.to_thread(fault_tier.wait_for_standby)
    async with asyncio.timeout(60):  # condition, not a sleep: the replica is known healthy
        while True:
            await da.pools.check_replicas()
            if da.pools.readers[0].healthy:
                break
            await asyncio.sleep(0.05)
    da.markers._local.clear()  # forget our own write marker: plain reads may use the replica
    for _ in range(3):
        assert await da.products.get(p.id) == p
    assert da.pools.routed["replica"] == 3
    await asyncio.to_thread(fault_tier.standby.kill)
    for _ in range(5):
        assert await da.products.get(p.id) == p  # never raises: retried on the writer
    assert not da.pools.readers[0].healthy
    assert da.pools.routed["writer"] >= 5


async def test_non_idempotent_writes_survive_stale_pooled_connections(
    fault_tier: LocalTier, da_on: Any
) -> None:
    """After a primary restart every pooled connection is dead; non-idempotent creates must still
    succeed (asyncpg notices closed sockets on acquire; a connection that only fails at BEGIN is
    retried too, since none of the write was sent)."""
    da = await da_on(writer_pool_min=5, writer_pool_max=5)
    await da.migrate()
    await asyncio.gather(*(da.users.get(i + 1) for i in range(5)))  # warm every pooled connection
    await fault_tier.arestart_primary("fast")
    created = await asyncio.gather(*(da.users.create(email=f"s{i}@example.com", name="S") for i in range(5)))
    assert len({u.id for u in created}) == 5
