"""Redis stock gate (``inventory_redis_gate=True``) keeps ``orders.place`` idempotent: a re-sent
order whose first attempt succeeded gets that order back even when the gate says sold out,
sequentially and while the first attempt is still in flight."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from commerce_db.localtier import DatabaseDSNs
from dataaccess import Conflict, Order, OutOfStock
from tests.integration.conftest import MakeDA

pytestmark = pytest.mark.integration


@pytest.fixture
def da_defaults(fresh_db: DatabaseDSNs, redis_clean: str) -> dict[str, Any]:
    """Writer only, with the Redis stock gate in front of the conditional UPDATE."""
    return {"writer_dsn": fresh_db.primary, "redis_url": redis_clean, "inventory_redis_gate": True}


async def _orders_with_key(dsn: str, key: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM orders WHERE idempotency_key = $1", key))
    finally:
        await conn.close()


async def test_resend_after_sell_out_returns_the_original_order(
    make_da: MakeDA, fresh_db: DatabaseDSNs
) -> None:
    da = await make_da()
    await da.migrate()
    u = await da.users.create(email="k@example.com", name="K")
    p = await da.products.create(sku="GK", name="Gated", price_cents=7, stock=3)
    first = await da.orders.place(u.id, [(p.id, 1)], idempotency_key="K")
    await da.orders.place(u.id, [(p.id, 2)], idempotency_key="rest")  # sells out the rest
    with pytest.raises(OutOfStock):
        await da.orders.place(u.id, [(p.id, 1)], idempotency_key="new")
    assert da.stock_gate is not None and da.stock_gate.rejected >= 1  # the gate refused it

    assert await da.orders.place(u.id, [(p.id, 1)], idempotency_key="K") == first
    # Same key, different request: still a Conflict, not a silent OutOfStock.
    with pytest.raises(Conflict):
        await da.orders.place(u.id, [(p.id, 2)], idempotency_key="K")
    assert await _orders_with_key(fresh_db.primary, "K") == 1
    assert (await da.products.get(p.id)).stock == 0  # type: ignore[union-attr]
    # A sold-out key that never succeeded leaves no idempotency claim behind.
    conn = await asyncpg.connect(fresh_db.primary)
    try:
        assert (
            await conn.fetchval("SELECT count(*) FROM order_idempotency WHERE idempotency_key = 'new'") == 0
        )
    finally:
        await conn.close()


async def test_concurrent_duplicates_of_the_last_unit_all_get_the_order(
    make_da: MakeDA, fresh_db: DatabaseDSNs
) -> None:
    """Without the gate, a duplicate blocks on the key until the first attempt commits; with the
    gate, duplicates are refused in Redis while the first attempt (holding the last unit) is still
    in its DB transaction. They must still wait for it and return the same order."""
    a, b = await make_da(), await make_da()  # two app instances sharing Redis and the DB
    await a.migrate()
    u = await a.users.create(email="c@example.com", name="C")
    for round_no in range(8):
        p = await a.products.create(sku=f"LAST{round_no}", name="Last unit", price_cents=5, stock=1)
        key = f"dup-{round_no}"
        results = await asyncio.gather(
            *((a if i % 2 else b).orders.place(u.id, [(p.id, 1)], idempotency_key=key) for i in range(20)),
            *(b.orders.place(u.id, [(p.id, 1)], idempotency_key=f"other-{round_no}-{i}") for i in range(5)),
            return_exceptions=True,
        )
        dups, others = results[:20], results[20:]
        errors = [r for r in dups if isinstance(r, BaseException)]
        assert errors == [] or all(isinstance(r, OutOfStock) for r in dups), errors
        orders = {r for r in dups if isinstance(r, Order)}
        won_by_dup = len(orders) == 1
        # Exactly one order got the unit: the duplicates' (all 20 see it) or one other buyer's.
        assert sum(isinstance(r, Order) for r in others) == (0 if won_by_dup else 1)
        if not won_by_dup:
            assert all(isinstance(r, OutOfStock) for r in dups)
        assert await _orders_with_key(fresh_db.primary, key) == (1 if won_by_dup else 0)
        assert (await a.products.get(p.id)).stock == 0  # type: ignore[union-attr]


async def test_concurrent_resend_while_others_sell_out(make_da: MakeDA, fresh_db: DatabaseDSNs) -> None:
    da = await make_da()
    await da.migrate()
    u = await da.users.create(email="r@example.com", name="R")
    p = await da.products.create(sku="RS", name="Resend", price_cents=3, stock=10)
    first = await da.orders.place(u.id, [(p.id, 1)], idempotency_key="R")
    results = await asyncio.gather(
        *(da.orders.place(u.id, [(p.id, 1)], idempotency_key=f"buyer-{i}") for i in range(30)),
        *(da.orders.place(u.id, [(p.id, 1)], idempotency_key="R") for _ in range(10)),
        return_exceptions=True,
    )
    buyers, resends = results[:30], results[30:]
    assert resends == [first] * 10  # every resend got the original order, none OutOfStock
    sold = sum(isinstance(r, Order) for r in buyers)
    # Resends take no gate units (their key is recorded in the gate), so they never make a buyer
    # look sold out: exactly the 9 remaining units are sold.
    assert sold == 9
    assert da.stock_gate is not None and da.stock_gate.duplicates >= 10
    assert all(isinstance(r, OutOfStock) for r in buyers if not isinstance(r, Order))
    assert await da.orders.place(u.id, [(p.id, 1)], idempotency_key="R") == first
    assert await _orders_with_key(fresh_db.primary, "R") == 1
    stock = (await da.products.get(p.id)).stock  # type: ignore[union-attr]
    assert stock == 9 - sold
    assert da.stock_gate is not None and da.redis is not None
    assert int(await da.redis.get(da.stock_gate.key(p.id)) or -1) == stock  # nothing lost in the gate
