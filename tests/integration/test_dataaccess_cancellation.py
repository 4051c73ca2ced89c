"""Cancelling a task that loops over a data-access call always stops it with CancelledError.

Regression: redis-py sends each command under Python 3.11's ``asyncio.wait_for``, which drops a
cancellation arriving as the send completes, so loops over ``sessions.create`` /
``counters.record_view`` / gated ``orders.place`` kept running after ``cancel()``. Each test
cancels many loops at varied points (event-loop steps and short sleeps); the outcome asserted is
deterministic: every task ends cancelled. The 60 s bound only detects "never stopped" (a broken
implementation loops forever; a loaded machine may take seconds to unwind a cancelled call).
The data layer gets patient timeouts: an operation that timed out under load would end its loop
with that error before the cancel, which is not what these tests check.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import asyncpg
import pytest

from commerce_db.localtier import DatabaseDSNs
from dataaccess import DataAccess, Settings

pytestmark = pytest.mark.integration

TRIALS = 120
STOP_BOUND = 60.0  # generous: "did it stop at all", not a latency check


@pytest.fixture
async def da(fresh_db: DatabaseDSNs, redis_clean: str) -> AsyncIterator[DataAccess]:
    settings = Settings(
        writer_dsn=fresh_db.pgbouncer or fresh_db.primary,
        proxy_mode="pgbouncer" if fresh_db.pgbouncer else "direct",
        reader_dsns=(fresh_db.standby,) if fresh_db.standby else (),
        redis_url=redis_clean,
        inventory_redis_gate=True,
        replica_check_interval=0.2,
        connect_timeout=30.0,
        acquire_timeout=60.0,
        command_timeout=60.0,
        statement_timeout=60.0,
        redis_socket_timeout=30.0,
        max_replica_lag=60.0,
        read_your_writes_ttl=120.0,
    )
    async with DataAccess.connect(settings) as d:
        await d.migrate()
        yield d


async def _cancel_loops(op: Callable[[], Awaitable[Any]], *, seed: int) -> list[str]:
    """Run ``op`` in a loop in a task, cancel it at a varied point, TRIALS times. Returns a
    description of every task that did not end cancelled (empty = all good)."""
    rng = random.Random(seed)
    bad: list[str] = []
    for trial in range(TRIALS):

        async def loop() -> None:
            while True:
                await op()

        task = asyncio.create_task(loop())
        if trial % 2:
            for _ in range(trial % 40):  # cancel after a given number of event-loop steps
                await asyncio.sleep(0)
        else:
            await asyncio.sleep(rng.uniform(0, 0.01))
        task.cancel()
        await asyncio.wait([task], timeout=STOP_BOUND)
        if not task.done():
            bad.append(f"trial {trial}: still running {STOP_BOUND}s after cancel()")
            task.cancel()
            await asyncio.wait([task], timeout=STOP_BOUND)
        elif not task.cancelled():
            bad.append(f"trial {trial}: ended with {task.exception()!r} instead of CancelledError")
        if len(bad) >= 3:
            break  # failed already; do not spend minutes on more stuck tasks
    return bad


async def test_cancel_session_and_counter_loops(da: DataAccess) -> None:
    sessions = await _cancel_loops(lambda: da.sessions.create(1, {"cart": [1]}), seed=1)
    views = await _cancel_loops(lambda: da.counters.record_view(1, visitor_id="v"), seed=2)
    assert sessions == [] and views == [], (sessions, views)
    # The connections dropped on cancel did not desynchronise the pool: replies still match.
    s = await da.sessions.create(7, {"k": "v"})
    got = await da.sessions.get(s.id)
    assert got is not None and got.user_id == 7 and got.data == {"k": "v"}
    before = await da.counters.views(1)
    await da.counters.record_view(1)
    assert await da.counters.views(1) == before + 1


async def test_cancel_read_loops(da: DataAccess) -> None:
    u = await da.users.create(email="r@example.com", name="R")
    p = await da.products.create(sku="RD", name="readable radio", price_cents=5, stock=3)
    results = {
        "products.get": await _cancel_loops(lambda: da.products.get(p.id), seed=3),
        "products.search": await _cancel_loops(lambda: da.products.search("radio"), seed=4),
        "users.get": await _cancel_loops(lambda: da.users.get(u.id), seed=5),
    }
    assert all(v == [] for v in results.values()), results
    assert (await da.products.get(p.id)) == p  # type: ignore[comparison-overlap]


async def test_cancel_order_loops_keeps_stock_and_cache_consistent(
    da: DataAccess, fresh_db: DatabaseDSNs
) -> None:
    u = await da.users.create(email="o@example.com", name="O")
    hot = await da.products.create(sku="HOT", name="hot", price_cents=1, stock=1_000_000)

    async def place_then_read() -> None:
        await da.orders.place(u.id, [(hot.id, 1)], idempotency_key=uuid.uuid4().hex)
        await da.products.get(hot.id)  # keeps the product cached between orders

    bad = await _cancel_loops(place_then_read, seed=6)
    assert bad == [], bad
    # The last cancelled caller's order may still be in its group-commit batch, which the
    # caller's cancellation does not stop: it commits, then does its post-commit work (markers,
    # cache invalidation) in the background; documented as awaited by close(). Wait as close()
    # does, batches first: rt.drain() alone returned while that batch was still in flight, so the
    # checks below raced it (on a loaded machine the cache was read before the invalidation: one
    # unit behind the database).
    await da.orders.drain()
    await da._rt.drain()
    conn = await asyncpg.connect(fresh_db.primary)
    try:
        stock = await conn.fetchval("SELECT stock FROM products WHERE id = $1", hot.id)
        ordered = await conn.fetchval("SELECT coalesce(sum(quantity), 0) FROM order_lines")
    finally:
        await conn.close()
    assert stock + ordered == 1_000_000  # no unit lost or duplicated by a cancellation
    # Post-commit invalidation survived every cancellation: the cached product is current.
    cached = await da.products.get(hot.id)
    assert cached is not None and cached.stock == stock


async def test_caller_cancelled_after_commit_still_invalidates(da: DataAccess) -> None:
    """Deterministic: the caller is cancelled while the commit LSN is read (after COMMIT, before
    the post-commit work). It gets CancelledError, and the marker + invalidation still happen."""
    p = await da.products.create(sku="PC", name="post commit", price_cents=100, stock=5)
    assert (await da.products.get(p.id)).price_cents == 100  # type: ignore[union-attr]  # cached
    rt = da._rt
    real_commit_lsn = rt.commit_lsn
    reached, release = asyncio.Event(), asyncio.Event()

    async def stalled_commit_lsn(conn: asyncpg.Connection) -> int:
        reached.set()
        await release.wait()
        return await real_commit_lsn(conn)

    rt.commit_lsn = stalled_commit_lsn  # type: ignore[method-assign]
    try:
        for op in (lambda: da.products.update_price(p.id, 250), lambda: da.products.restock(p.id, 7)):
            reached.clear()
            task = asyncio.create_task(op())
            await reached.wait()  # committed, now reading the LSN
            task.cancel()
            await asyncio.wait([task], timeout=STOP_BOUND)
            assert task.cancelled()
    finally:
        rt.commit_lsn = real_commit_lsn  # type: ignore[method-assign]
        release.set()
    await rt.drain()
    got = await da.products.get(p.id)
    assert got is not None and (got.price_cents, got.stock) == (250, 12)


async def test_order_place_and_cancel_cancelled_after_commit(da: DataAccess) -> None:
    """Same for orders: the cached stock is invalidated and the Redis stock gate stays equal to
    the committed stock (a committed order keeps its units; a committed cancel returns them)."""
    u = await da.users.create(email="pc@example.com", name="PC")
    p = await da.products.create(sku="OPC", name="order post commit", price_cents=10, stock=10)
    gate = da.stock_gate
    assert gate is not None
    assert (await da.products.get(p.id)).stock == 10  # type: ignore[union-attr]  # cached
    rt = da._rt
    real_commit_lsn = rt.commit_lsn
    reached, release = asyncio.Event(), asyncio.Event()

    async def stalled_commit_lsn(conn: asyncpg.Connection) -> int:
        reached.set()
        await release.wait()
        return await real_commit_lsn(conn)

    async def cancel_after_commit(op: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        reached.clear()
        rt.commit_lsn = stalled_commit_lsn  # type: ignore[method-assign]
        try:
            task = asyncio.create_task(op())
            await reached.wait()  # committed, now reading the LSN
            task.cancel()
            await asyncio.wait([task], timeout=STOP_BOUND)
            assert task.cancelled()
        finally:
            rt.commit_lsn = real_commit_lsn  # type: ignore[method-assign]
            # place() runs in a group-commit batch that its caller's cancellation does not stop:
            # let that batch finish (it was held at the stalled LSN read), then check.
            release.set()
        await da.orders.drain()
        await rt.drain()
        release.clear()

    async def gate_units() -> int:
        return int(await da.redis.get(gate.key(p.id)) or -1)  # type: ignore[union-attr]

    await cancel_after_commit(lambda: da.orders.place(u.id, [(p.id, 3)], idempotency_key="pc-1"))
    assert (await da.products.get(p.id)).stock == 7  # type: ignore[union-attr]
    assert await gate_units() == 7
    order = await da.orders.place(u.id, [(p.id, 3)], idempotency_key="pc-1")  # the client's retry
    assert order.lines[0].quantity == 3 and await gate_units() == 7

    await cancel_after_commit(lambda: da.orders.cancel(order.id))
    assert (await da.products.get(p.id)).stock == 10  # type: ignore[union-attr]
    assert await gate_units() == 10
    release.set()
