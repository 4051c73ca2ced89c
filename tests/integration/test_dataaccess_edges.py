"""Issue 10, "also seen": bad text input, overflow errors, a connect that fails or is cancelled
half-way, and pool exhaustion as back-pressure — against real servers."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from commerce_db.localtier import DatabaseDSNs, LocalTier
from dataaccess import DataAccess, InvalidInput, PoolExhausted, Settings
from dataaccess.validation import MAX_BIGINT

pytestmark = [pytest.mark.integration]


@pytest.fixture
def da_defaults(fresh_db: DatabaseDSNs, redis_clean: str) -> dict[str, Any]:
    return {"writer_dsn": fresh_db.primary, "redis_url": redis_clean}


async def test_text_that_is_not_valid_utf8_is_refused_by_field(make_da: Any, fresh_db: DatabaseDSNs) -> None:
    da = await make_da()
    await da.migrate()
    user = await da.users.create(email="u@example.com", name="U")
    p = await da.products.create(sku="U1", name="Fine", price_cents=1, stock=1)
    bad = "broken \ud83d emoji"
    calls = [
        ("name", da.products.create(sku="U2", name=bad, price_cents=1, stock=1)),
        ("sku", da.products.create(sku=bad, name="x", price_cents=1, stock=1)),
        ("name", da.products.rename(p.id, bad)),
        ("name", da.users.create(email="v@example.com", name=bad)),
        ("email", da.users.create(email="v\udc80@example.com", name="V")),
        ("query", da.products.search(bad)),
        ("idempotency_key", da.orders.place(user.id, [(p.id, 1)], idempotency_key="k\udc80")),
    ]
    for field, call in calls:
        with pytest.raises(InvalidInput) as info:
            await call
        assert info.value.field == field and "UTF-8" in str(info.value)
    conn = await asyncpg.connect(fresh_db.primary)
    try:
        assert await conn.fetchval("SELECT count(*) FROM products") == 1
        assert await conn.fetchval("SELECT name FROM products WHERE id = $1", p.id) == "Fine"
        assert await conn.fetchval("SELECT count(*) FROM orders") == 0
    finally:
        await conn.close()


async def test_order_total_overflow_names_the_lines_and_changes_nothing(
    make_da: Any, fresh_db: DatabaseDSNs
) -> None:
    da = await make_da()
    await da.migrate()
    user = await da.users.create(email="o@example.com", name="O")
    p = await da.products.create(sku="BIG", name="Expensive", price_cents=MAX_BIGINT, stock=5)
    with pytest.raises(InvalidInput) as info:
        await da.orders.place(user.id, [(p.id, 2)], idempotency_key=str(uuid.uuid4()))
    assert info.value.field == "lines"
    assert "Error" not in str(info.value)  # no driver class name
    got = await da.products.get(p.id)
    assert got is not None and got.stock == 5


async def test_connect_cancelled_half_way_leaves_nothing_open(fault_tier: LocalTier) -> None:
    """The connect is held in its schema-floor read (after the pools and the replica health task
    exist) and cancelled there: no pool, health task or server connection may remain."""
    dsns = fault_tier.dsns()
    proxy = fault_tier.proxy("primary")
    settings = Settings(writer_dsn=proxy.url(dsns.primary), reader_dsns=(dsns.standby,), writer_pool_min=2)
    proxy.arm(b"schema_lsn", "hang")
    task = asyncio.create_task(_connect(settings))
    await proxy.await_fired()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.to_thread(proxy.heal)
    for _ in range(3):
        await asyncio.sleep(0)
    assert [t for t in asyncio.all_tasks() if t.get_name() == "dataaccess-replica-health"] == []
    admin = await asyncpg.connect(fault_tier.primary_admin_dsn)
    try:
        for _ in range(100):  # the backends notice the closed sockets promptly
            n = await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND datname = $2",
                fault_tier.app_user,
                dsns.name,
            )
            if n == 0:
                break
            await asyncio.sleep(0.05)
        assert n == 0
    finally:
        await admin.close()


async def _connect(settings: Settings) -> DataAccess:
    return await DataAccess.connect(settings)


async def test_acquire_timeout_is_back_pressure_not_a_pool_recycle(make_da: Any) -> None:
    da = await make_da(writer_pool_min=1, writer_pool_max=1, acquire_timeout=0.2, redis_url=None)
    await da.migrate()
    user = await da.users.create(email="p@example.com", name="P")
    async with da.pools.writer() as held:
        pid = await held.fetchval("SELECT pg_backend_pid()")
        with pytest.raises(PoolExhausted, match="writer_pool_max"):
            await da.users.get(user.id)
    assert "connect" not in da.stats()["retries"]  # not retried as a connect error
    async with da.pools.writer() as conn:
        assert await conn.fetchval("SELECT pg_backend_pid()") == pid  # the pool was not recycled
    assert await da.users.get(user.id) == user


async def test_saturated_writer_pool_does_not_hold_up_replica_checks(
    make_da: Any, fresh_db: DatabaseDSNs, tier: Any
) -> None:
    """Hot-row load can keep every writer connection busy for long. The health check's writer
    sample used to wait ``acquire_timeout`` for one before checking any replica, so a lagging
    replica stayed in rotation that much longer than the contract's bound. Now the sample is
    skipped while the pool is saturated (commits note their LSNs anyway)."""
    da = await make_da(
        reader_dsns=(fresh_db.standby,),
        writer_pool_min=1,
        writer_pool_max=1,
        acquire_timeout=600.0,  # the old code would wait this long: the deadline below fails first
        replica_check_interval=600.0,  # no background check: the test runs the one it observes
        read_your_writes_ttl=900.0,
    )
    await da.migrate()
    await da.users.create(email="hot@example.com", name="Hot")
    async with da.pools.writer() as conn:
        lsn = int(await conn.fetchval("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"))
    await asyncio.to_thread(tier.wait_for_standby)
    async with da.pools.writer():  # every writer connection busy
        async with asyncio.timeout(60):
            await da.pools.check_replicas()
    (replica,) = da.pools.readers
    assert replica.healthy and replica.last_error is None
    assert replica.replay_lsn is not None and replica.replay_lsn >= lsn


async def test_schema_change_with_a_saturated_writer_pool_does_not_raise(make_da: Any) -> None:
    """``Runtime.schema_changed`` (run by ``migrate()`` after its DDL committed) never raises: a
    saturated pool while it records the schema LSN used to raise ``PoolExhausted`` from a
    ``migrate()`` whose migrations had committed."""
    da = await make_da(writer_pool_min=1, writer_pool_max=1, acquire_timeout=0.2)
    await da.migrate()
    async with da.pools.writer() as conn:
        lsn = int(await conn.fetchval("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn"))
        await da._rt.schema_changed(lsn)
    assert (da.markers.floor_lsn or 0) >= lsn
    assert da.pools.exhausted == 1  # it met the saturated pool, and let it be
