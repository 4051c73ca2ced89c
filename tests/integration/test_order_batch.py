"""Group commit of ``orders.place`` (dataaccess.order_batch + commerce_place_orders): concurrent
orders are coalesced, yet each keeps its own outcome, nothing oversells, and every acknowledged
order is committed before its caller hears about it."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from commerce_db.localtier import DatabaseDSNs, LocalTier
from dataaccess import Conflict, DataAccess, OutOfStock, Settings, UnknownReference
from tests.integration.conftest import MakeDA

pytestmark = pytest.mark.integration


@pytest.fixture
def da_defaults(fresh_db: DatabaseDSNs, redis_clean: str) -> dict[str, Any]:
    return {"writer_dsn": fresh_db.primary, "redis_url": redis_clean}


async def _setup(make_da: MakeDA, **kw: Any) -> DataAccess:
    da = await make_da(**kw)
    await da.migrate()
    return da


async def test_hot_sku_sells_exactly_its_stock_and_acknowledges_only_committed_orders(
    make_da: MakeDA, fresh_db: DatabaseDSNs
) -> None:
    da = await _setup(make_da)
    users = [await da.users.create(email=f"b{i}@example.com", name=f"B{i}") for i in range(5)]
    p = await da.products.create(sku="HOT", name="Hot", price_cents=100, stock=37)
    assert (await da.products.get(p.id)).stock == 37  # type: ignore[union-attr]  # cached
    check = await asyncpg.create_pool(fresh_db.primary, min_size=1, max_size=4)
    acknowledged: list[int] = []
    not_committed: list[int] = []
    refused = 0

    async def buyer(i: int) -> None:
        nonlocal refused
        try:
            order = await da.orders.place(users[i % 5].id, [(p.id, 1)], idempotency_key=f"k{i}")
        except OutOfStock as exc:
            assert list(exc.product_ids) == [p.id]
            refused += 1
            return
        acknowledged.append(order.id)
        # Another connection must already see it: acknowledged only after COMMIT.
        if not await check.fetchval("SELECT count(*) FROM orders WHERE id = $1", order.id):
            not_committed.append(order.id)

    try:
        await asyncio.gather(*(buyer(i) for i in range(120)))
        sold = await check.fetchval(
            "SELECT coalesce(sum(quantity), 0) FROM order_lines WHERE product_id = $1", p.id
        )
        left = await check.fetchval("SELECT stock FROM products WHERE id = $1", p.id)
    finally:
        await check.close()
    assert not_committed == []
    assert len(acknowledged) == 37 == sold and refused == 120 - 37 and left == 0
    assert len(set(acknowledged)) == 37
    batcher = da.orders._batcher
    assert batcher.batches < batcher.orders  # orders really were coalesced
    assert (await da.products.get(p.id)).stock == 0  # type: ignore[union-attr]  # cache invalidated


async def test_each_order_in_a_batch_keeps_its_own_outcome(make_da: MakeDA) -> None:
    da = await _setup(make_da)
    u = await da.users.create(email="m@example.com", name="M")
    a = await da.products.create(sku="A", name="A", price_cents=10, stock=1)
    b = await da.products.create(sku="B", name="B", price_cents=20, stock=5)
    first = await da.orders.place(u.id, [(b.id, 1)], idempotency_key="used")

    calls = {
        "ok": da.orders.place(u.id, [(b.id, 2)], idempotency_key="ok"),
        "dup": da.orders.place(u.id, [(b.id, 1)], idempotency_key="used"),
        "conflict": da.orders.place(u.id, [(b.id, 3)], idempotency_key="used"),
        "no_user": da.orders.place(999_999, [(b.id, 1)], idempotency_key="nu"),
        "no_product": da.orders.place(u.id, [(b.id, 1), (888_888, 1)], idempotency_key="np"),
        "pair_1": da.orders.place(u.id, [(a.id, 1), (b.id, 1)], idempotency_key="p1"),
        "pair_2": da.orders.place(u.id, [(a.id, 1), (b.id, 1)], idempotency_key="p2"),
        "same_key_a": da.orders.place(u.id, [(b.id, 1)], idempotency_key="twice"),
        "same_key_b": da.orders.place(u.id, [(b.id, 1)], idempotency_key="twice"),
    }
    out = dict(zip(calls, await asyncio.gather(*calls.values(), return_exceptions=True), strict=True))

    assert out["dup"] == first  # the existing order, not a second one
    assert isinstance(out["conflict"], Conflict)
    assert isinstance(out["no_user"], UnknownReference)
    assert isinstance(out["no_product"], UnknownReference) and "888888" in str(out["no_product"])
    pair = [out["pair_1"], out["pair_2"]]
    placed_pairs = [o for o in pair if not isinstance(o, BaseException)]
    short = [o for o in pair if isinstance(o, OutOfStock)]
    assert len(placed_pairs) == 1 and len(short) == 1  # A had one unit: all lines or none
    assert out["same_key_a"] == out["same_key_b"]  # one order for the key, both callers get it
    assert not isinstance(out["ok"], BaseException) and out["ok"].total_cents == 40
    b_now = await da.products.get(b.id)
    # B: 5 - first(1) - ok(2) - pair(1) - twice(1) = 0
    assert b_now is not None and b_now.stock == 0
    a_now = await da.products.get(a.id)
    assert a_now is not None and a_now.stock == 0
    again = await da.orders.place(u.id, [(b.id, 2)], idempotency_key="ok")  # a retry after the fact
    assert again == out["ok"]


async def test_lone_order_is_sent_at_once_and_price_is_taken_under_the_lock(make_da: MakeDA) -> None:
    da = await _setup(make_da)
    u = await da.users.create(email="l@example.com", name="L")
    p = await da.products.create(sku="L", name="L", price_cents=500, stock=3)
    await da.products.update_price(p.id, 450)
    order = await da.orders.place(u.id, [(p.id, 2)], idempotency_key="lone")
    assert order.total_cents == 900 and order.lines[0].unit_price_cents == 450
    fetched = await da.orders.get(order.id)
    assert fetched == order
    assert da.orders._batcher.batches == 1


async def test_batch_cut_after_it_was_sent_is_resent_by_key_without_errors(fault_tier: LocalTier) -> None:
    """Issue 10 (left over from the group commit): the connection of a batch statement is cut
    after the server ran and committed it, more often than one caller's retry budget
    (``retry_attempts``) allows. The batch is re-sent with the same keys until it gets through:
    every caller gets its order (none lost, none duplicated), nobody sees ``Unavailable``. Before,
    the batch gave up after ``retry_attempts`` and failed all its callers."""
    dsns = fault_tier.dsns()
    proxy = fault_tier.proxy("primary")
    settings = Settings(
        writer_dsn=proxy.url(dsns.primary),
        redis_url=fault_tier.redis_url,
        retry_attempts=3,
        retry_max_delay=0.05,
    )
    da = await DataAccess.connect(settings)
    try:
        await da.migrate()
        user = await da.users.create(email="cut@example.com", name="Cut")
        p = await da.products.create(sku="CUT", name="Cut", price_cents=100, stock=50)
        # Armed on the keys, which travel in the Bind/Execute message: the server runs and commits
        # the batch, then the proxy discards its answer and closes ("committed, ack lost"). (The
        # statement's name would match its Parse message, before anything ran.)
        proxy.arm(b"cut-", "cut", count=3 * settings.retry_attempts)
        orders = await asyncio.gather(
            *(da.orders.place(user.id, [(p.id, 1)], idempotency_key=f"cut-{i}") for i in range(4))
        )
        assert proxy.fired == 3 * settings.retry_attempts
        assert da.stats()["retries"].get("connection_lost_in_flight", 0) >= proxy.fired
    finally:
        await da.close()
        proxy.heal()
    conn = await asyncpg.connect(dsns.primary)
    try:
        rows = await conn.fetch(
            "SELECT idempotency_key, id FROM orders WHERE idempotency_key LIKE 'cut-%' ORDER BY 1"
        )
        stock = await conn.fetchval("SELECT stock FROM products WHERE id = $1", p.id)
    finally:
        await conn.close()
    assert [(r["idempotency_key"], r["id"]) for r in rows] == sorted(
        (o.idempotency_key, o.id) for o in orders
    )
    assert stock == 50 - 4


async def test_callers_cancelled_while_their_batch_is_in_flight_leave_no_unretrieved_errors(
    make_da: MakeDA, fresh_db: DatabaseDSNs, caplog: pytest.LogCaptureFixture
) -> None:
    """Finding of the issue-11 review: callers that time out while their order sits in a batch
    in flight left futures whose error (here OutOfStock) nobody read, and asyncio logged "Future
    exception was never retrieved" at ERROR once per caller - a flood during a flash sale."""
    import gc
    import logging

    da = await _setup(make_da)
    user = await da.users.create(email="gone@example.com", name="Gone")
    p = await da.products.create(sku="GONE", name="Gone", price_cents=100, stock=5)
    blocker = await asyncpg.connect(fresh_db.primary)
    watcher = await asyncpg.connect(fresh_db.primary)  # outside the blocker's transaction snapshot
    try:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("UPDATE products SET stock = 0 WHERE id = $1", p.id)  # row locked
        callers = [
            asyncio.create_task(da.orders.place(user.id, [(p.id, 1)], idempotency_key=f"gone-{i}"))
            for i in range(20)
        ]
        for _ in range(600):  # the batch reached the server and waits for the row lock
            waiting = await watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE '%commerce_place_orders%'"
            )
            if waiting:
                break
            await asyncio.sleep(0.05)
        assert waiting, "no batch ever waited for the row lock"
        for task in callers:
            task.cancel()
        for task in callers:
            with pytest.raises(asyncio.CancelledError):
                await task
        await tx.commit()  # stock 0: the batch in flight answers OutOfStock to callers now gone
        caplog.set_level(logging.ERROR, logger="asyncio")
        await da.close()  # waits for the batches in flight
        del callers, task
        gc.collect()
        await asyncio.sleep(0)
    finally:
        await blocker.close()
        await watcher.close()
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
    check = await asyncpg.connect(fresh_db.primary)
    try:
        assert await check.fetchval("SELECT count(*) FROM orders") == 0
    finally:
        await check.close()


async def test_acknowledgement_lost_after_the_batch_committed_returns_the_committed_order(
    fault_tier: LocalTier,
) -> None:
    """Deterministic "committed, acknowledgement lost": the proxy holds the server's answer to
    the batch; the test sees the order committed in the database while the caller has no answer,
    then cuts the connection. The re-sent batch finds the key and returns that order: one order,
    one stock decrement, no error."""
    dsns = fault_tier.dsns()
    proxy = fault_tier.proxy("primary")
    da = await DataAccess.connect(
        Settings(writer_dsn=proxy.url(dsns.primary), redis_url=fault_tier.redis_url, retry_max_delay=0.05)
    )
    check = await asyncpg.connect(dsns.primary)
    try:
        await da.migrate()
        user = await da.users.create(email="ack@example.com", name="Ack")
        p = await da.products.create(sku="ACK", name="Ack", price_cents=100, stock=10)
        proxy.arm(b"ackl-", "hang")  # the key travels with Bind/Execute: the batch runs, its answer is held
        task = asyncio.create_task(da.orders.place(user.id, [(p.id, 1)], idempotency_key="ackl-1"))
        await proxy.await_fired(1)
        committed = None
        for _ in range(600):
            committed = await check.fetchval("SELECT id FROM orders WHERE idempotency_key = 'ackl-1'")
            if committed is not None:
                break
            await asyncio.sleep(0.05)
        assert committed is not None, "the batch never committed"
        assert not task.done()  # committed in the database, not acknowledged to the caller
        await asyncio.to_thread(proxy.cut)  # the acknowledgement is lost with the connection
        order = await task
        assert order.id == committed
        assert await check.fetchval("SELECT count(*) FROM orders WHERE idempotency_key = 'ackl-1'") == 1
        assert await check.fetchval("SELECT stock FROM products WHERE id = $1", p.id) == 9
        assert da.stats()["retries"].get("connection_lost_in_flight", 0) >= 1
    finally:
        await check.close()
        await da.close()
        await asyncio.to_thread(proxy.heal)
