"""The stock gate's contract (docs/dataaccess.md, "Consistency contract"): it never refuses a
buyer the database could serve for longer than ``stock_gate_ttl`` after the fault that made it
drift, and it never lets an order through that the database would refuse (the DB decides)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from commerce_db.localtier import LocalTier
from dataaccess import DataAccess, OutOfStock, Settings

pytestmark = [pytest.mark.integration]

TTL = 1.0


@pytest.fixture
async def gated(fault_tier: LocalTier) -> AsyncIterator[Any]:
    made: list[DataAccess] = []

    async def make(**overrides: Any) -> DataAccess:
        kwargs: dict[str, Any] = {
            "writer_dsn": fault_tier.dsns().primary,
            "redis_url": fault_tier.redis_url,
            "inventory_redis_gate": True,
            "stock_gate_ttl": TTL,
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


async def _db_stock(tier: LocalTier, pid: int) -> int:
    conn = await asyncpg.connect(tier.dsns().primary)
    try:
        return int(await conn.fetchval("SELECT stock FROM products WHERE id = $1", pid))
    finally:
        await conn.close()


async def _buy_all(da: DataAccess, uid: int, pid: int, n: int) -> int:
    """Place ``n`` one-unit orders; returns how many the data layer refused."""
    refused = 0
    for _ in range(n):
        try:
            await da.orders.place(uid, [(pid, 1)], idempotency_key=str(uuid.uuid4()))
        except OutOfStock:
            refused += 1
    return refused


async def test_place_cancelled_while_the_gate_reply_is_in_flight_keeps_no_units(
    fault_tier: LocalTier, gated: Any
) -> None:
    """Defect 4: the gate's script ran (units taken) but the caller was cancelled before the
    reply arrived; the units were never given back, so buyers were refused while the DB had stock."""
    da = await gated(redis_url=fault_tier.proxied_redis_url, redis_socket_timeout=10.0)
    await da.migrate()
    user = await da.users.create(email="g4@example.com", name="G4")
    p = await da.products.create(sku="G4", name="Gate four", price_cents=1, stock=3)
    await da.orders.place(user.id, [(p.id, 1)], idempotency_key=str(uuid.uuid4()))  # scripts loaded
    proxy = fault_tier.proxy("redis")
    proxy.arm(b"EVALSHA", "hang")
    task = asyncio.create_task(da.orders.place(user.id, [(p.id, 2)], idempotency_key=str(uuid.uuid4())))
    await proxy.await_fired()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.to_thread(proxy.heal)  # the held reply arrives: the script did take 2 units
    assert da.stock_gate is not None and da.redis is not None
    await da.stock_gate.drain()  # background give-back done
    assert await _db_stock(fault_tier, p.id) == 2
    assert int(await da.redis.get(da.stock_gate.key(p.id))) == 2  # units back (old code: 0)
    assert await _buy_all(da, user.id, p.id, 2) == 0


async def test_cancel_cut_after_commit_converges_within_the_gate_ttl(
    fault_tier: LocalTier, gated: Any
) -> None:
    """Defect 5: a cancel whose connection died mid-COMMIT committed, but its give-back never
    reached the gate; the gate refused the returned units until someone ran ``reconcile``."""
    dsns = fault_tier.dsns()
    proxy = fault_tier.proxy("pgbouncer")
    da = await gated(writer_dsn=proxy.url(dsns.pgbouncer), proxy_mode="pgbouncer")
    await da.migrate()
    user = await da.users.create(email="g5@example.com", name="G5")
    p = await da.products.create(sku="G5", name="Gate five", price_cents=1, stock=2)
    order = await da.orders.place(user.id, [(p.id, 2)], idempotency_key=str(uuid.uuid4()))
    proxy.arm(b"COMMIT", "cut")
    cancelled = await da.orders.cancel(order.id)  # COMMIT cut; the retry finds it cancelled
    assert cancelled.status == "cancelled" and proxy.fired == 1
    assert await _db_stock(fault_tier, p.id) == 2
    await asyncio.sleep(TTL)  # the bound: every counter is re-seeded from the DB after its TTL
    assert await _buy_all(da, user.id, p.id, 2) == 0  # the DB's 2 units can be bought
    assert await _buy_all(da, user.id, p.id, 1) == 1  # and no more


async def test_restock_whose_commit_was_cut_converges_within_the_gate_ttl(
    fault_tier: LocalTier, gated: Any
) -> None:
    """Defect 5: a restock whose acknowledgement was lost (OutcomeUnknown) left the gate at 0
    until ``reconcile``."""
    dsns = fault_tier.dsns()
    proxy = fault_tier.proxy("pgbouncer")
    da = await gated(writer_dsn=proxy.url(dsns.pgbouncer), proxy_mode="pgbouncer")
    await da.migrate()
    user = await da.users.create(email="g6@example.com", name="G6")
    p = await da.products.create(sku="G6", name="Gate six", price_cents=1, stock=1)
    assert await _buy_all(da, user.id, p.id, 2) == 1  # sold out; gate at 0
    proxy.arm(b"COMMIT", "cut")
    with pytest.raises(Exception, match="may have committed"):
        await da.products.restock(p.id, 3)
    assert await _db_stock(fault_tier, p.id) == 3
    await asyncio.sleep(TTL)
    assert await _buy_all(da, user.id, p.id, 3) == 0


async def test_units_taken_by_a_process_that_died_come_back_within_the_ttl(
    fault_tier: LocalTier, gated: Any
) -> None:
    """A process killed between taking gate units and its DB transaction: simulated by taking
    units straight from the gate and never giving them back."""
    da = await gated()
    await da.migrate()
    user = await da.users.create(email="g7@example.com", name="G7")
    p = await da.products.create(sku="G7", name="Gate seven", price_cents=1, stock=2)
    assert da.stock_gate is not None
    ok, taken = await da.stock_gate.try_take([(p.id, 2)], idempotency_key="dead-process")
    assert ok and taken == [(p.id, 2)]
    assert await _buy_all(da, user.id, p.id, 1) == 1  # refused now: the drift the bound is about
    await asyncio.sleep(TTL)
    assert await _buy_all(da, user.id, p.id, 2) == 0
    await da.stock_gate.drain()
    assert da.stock_gate.reseeded >= 1
