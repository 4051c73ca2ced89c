"""DataAccess end to end against real PostgreSQL (+ PgBouncer) and Redis: CRUD through the facade
with cache-aside, search, migrations, bad input, idempotency, the flash sale and EXPLAIN checks."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from commerce_db.localtier import DatabaseDSNs
from dataaccess import (
    Conflict,
    DataAccess,
    InvalidInput,
    NotFound,
    OutOfStock,
    Product,
    Settings,
    User,
)
from dataaccess.migrations import load_migrations, partition_months, partition_name
from tests.integration.conftest import MakeDA, require

ALL_VERSIONS = [m.version for m in load_migrations()]

pytestmark = pytest.mark.integration


@pytest.fixture
def da_defaults(fresh_db: DatabaseDSNs, redis_clean: str) -> dict[str, Any]:
    """This module tests the writer alone (no replica): every read is served by the primary."""
    return {"writer_dsn": fresh_db.primary, "redis_url": redis_clean, "replica_check_interval": 0.2}


async def table_counts(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        out = {}
        for t in ("users", "products", "orders", "order_lines", "order_idempotency"):
            out[t] = await conn.fetchval(f"SELECT count(*) FROM {t}")
        out["stock"] = await conn.fetchval("SELECT coalesce(sum(stock), 0) FROM products")
        return out
    finally:
        await conn.close()


def key() -> str:
    return "k-" + uuid.uuid4().hex


async def test_crud_and_cache_aside(make_da: MakeDA, redis_clean: str) -> None:
    da = await make_da()
    assert await da.migrate() == ALL_VERSIONS
    assert await da.migrate() == []  # idempotent

    user = await da.users.create(email="Ada@Example.com", name="Ada Lovelace")
    assert isinstance(user, User) and user.email == "Ada@Example.com"
    assert await da.users.get(user.id) == user
    assert await da.users.get(user.id) == user
    assert await da.users.get_by_email("ada@example.com") == user
    assert await da.users.get(999_999) is None

    p = await da.products.create(sku="HP-1", name="Wireless Headphones", price_cents=4999, stock=7)
    assert isinstance(p, Product) and (p.price_cents, p.stock) == (4999, 7)
    before = da.cache.stats if da.cache else None
    assert await da.products.get(p.id) == p
    assert await da.products.get(p.id) == p
    stats = da.cache.stats if da.cache else None
    assert before is not None and stats is not None and stats.hits > before.hits  # second get was a hit

    r = aioredis.Redis.from_url(redis_clean)
    try:
        assert await r.exists(da.cache.key(f"product:{p.id}")) if da.cache else False
        updated = await da.products.update_price(p.id, 3999)
        assert updated.price_cents == 3999 and updated.version == p.version + 1
        # Write invalidated the cached entry; the next get reloads the new price.
        assert not await r.exists(da.cache.key(f"product:{p.id}")) if da.cache else False
        assert (await da.products.get(p.id)).price_cents == 3999  # type: ignore[union-attr]
    finally:
        await r.aclose()

    restocked = await da.products.restock(p.id, 3)
    assert restocked.stock == 10
    assert (await da.products.get(p.id)).stock == 10  # type: ignore[union-attr]

    with pytest.raises(NotFound):
        await da.products.update_price(123456, 100)
    with pytest.raises(Conflict):
        await da.users.create(email="ada@example.COM", name="Dup")
    with pytest.raises(Conflict):
        await da.products.create(sku="HP-1", name="Dup", price_cents=1, stock=1)


async def test_stock_is_never_stale_after_orders(make_da: MakeDA) -> None:
    da = await make_da()
    other = await make_da()  # a second process-like instance sharing Redis
    await da.migrate()
    u = await da.users.create(email="s@example.com", name="S")
    p = await da.products.create(sku="S-1", name="Stocked thing", price_cents=100, stock=10)
    assert (await other.products.get(p.id)).stock == 10  # type: ignore[union-attr]  # cached in Redis now
    for i in range(3):
        await da.orders.place(u.id, [(p.id, 2)], idempotency_key=f"stale-{i}")
        assert (await da.products.get(p.id)).stock == 10 - 2 * (i + 1)  # type: ignore[union-attr]
        assert (await other.products.get(p.id)).stock == 10 - 2 * (i + 1)  # type: ignore[union-attr]


async def test_search_full_text_ranking_and_typo_fallback(make_da: MakeDA) -> None:
    da = await make_da()
    await da.migrate()
    a = await da.products.create(sku="A", name="Wireless Headphones Pro", price_cents=100, stock=1)
    b = await da.products.create(sku="B", name="Wired headphones", price_cents=100, stock=1)
    await da.products.create(sku="C", name="Coffee grinder", price_cents=100, stock=1)
    hits = await da.products.search("wireless headphones")
    assert [h.id for h in hits] == [a.id]
    hits = await da.products.search("headphones", limit=10)
    assert {h.id for h in hits} == {a.id, b.id}
    typo = await da.products.search("wireles headphnes")  # FTS finds nothing -> trigram fallback
    assert typo and typo[0].id == a.id
    assert await da.products.search("zzzzqqqq") == []
    # Prices in search results are as fresh as products.get (ids cached, products not).
    await da.products.update_price(a.id, 55)
    assert (await da.products.search("wireless headphones"))[0].price_cents == 55
    with pytest.raises(InvalidInput):
        await da.products.search("   ")
    for invisible in ("\u200b", "\u200b \u200c\u200d", "\ufeff\u2060"):  # zero-width / BOM only
        with pytest.raises(InvalidInput) as info:
            await da.products.search(invisible)
        assert info.value.field == "query"
    assert (await da.products.search("wireless\u200b headphones"))[0].id == a.id  # ignored inside
    with pytest.raises(InvalidInput):
        await da.products.search("x" * 201)
    with pytest.raises(InvalidInput):
        await da.products.search("ok", limit=0)


async def test_bad_input_is_rejected_and_changes_nothing(make_da: MakeDA, fresh_db: DatabaseDSNs) -> None:
    da = await make_da()
    await da.migrate()
    u = await da.users.create(email="b@example.com", name="B")
    p = await da.products.create(sku="P", name="Thing", price_cents=100, stock=5)
    q = await da.products.create(sku="Q", name="Other", price_cents=100, stock=5)
    before = await table_counts(fresh_db.primary)

    bad_orders: list[tuple[Any, Any, str]] = [
        (u.id, [(p.id, 0)], "quantity"),
        (u.id, [(p.id, -3)], "quantity"),
        (u.id, [], "lines"),
        (u.id, [(p.id, 1), (p.id, 1)], "more than once"),
        (u.id, [(p.id, "2")], "quantity"),
        (u.id, [(p.id, 1), (999_999, 1)], "999999"),
        (888_888, [(p.id, 1)], "user"),
        (u.id, [(p.id, 10**6)], "quantity"),
        (-1, [(p.id, 1)], "user_id"),
    ]
    for user_id, lines, needle in bad_orders:
        with pytest.raises(InvalidInput) as info:
            await da.orders.place(user_id, lines, idempotency_key=key())
        assert needle in str(info.value), (lines, str(info.value))
    with pytest.raises(InvalidInput, match="idempotency_key"):
        await da.orders.place(u.id, [(p.id, 1)], idempotency_key="x" * 201)
    with pytest.raises(InvalidInput, match="idempotency_key"):
        await da.orders.place(u.id, [(p.id, 1)], idempotency_key="")
    # Unknown product is also a NotFound; a short second line rolls back the first.
    with pytest.raises(NotFound):
        await da.orders.place(u.id, [(p.id, 1), (999_999, 1)], idempotency_key=key())
    with pytest.raises(OutOfStock) as oos:
        await da.orders.place(u.id, [(p.id, 1), (q.id, 6)], idempotency_key=key())
    assert oos.value.product_ids == (q.id,) and oos.value.shortages[q.id] == (6, 5)

    user_cases: list[tuple[dict[str, Any], str]] = [
        ({"email": "not-an-email", "name": "x"}, "email"),
        ({"email": "a@b.co", "name": ""}, "name"),
        ({"email": "a@b.co", "name": "n" * 201}, "name"),
        ({"email": "a" * 250 + "@b.co", "name": "x"}, "email"),
    ]
    for kwargs, field in user_cases:
        with pytest.raises(InvalidInput, match=field):
            await da.users.create(**kwargs)
    product_cases: list[tuple[dict[str, Any], str]] = [
        ({"sku": "", "name": "x", "price_cents": 1, "stock": 1}, "sku"),
        ({"sku": "s" * 65, "name": "x", "price_cents": 1, "stock": 1}, "sku"),
        ({"sku": "ok", "name": "x", "price_cents": -1, "stock": 1}, "price_cents"),
        ({"sku": "ok", "name": "x", "price_cents": 1, "stock": -1}, "stock"),
        ({"sku": "ok", "name": "x", "price_cents": 1.5, "stock": 1}, "price_cents"),
    ]
    for kwargs, field in product_cases:
        with pytest.raises(InvalidInput, match=field):
            await da.products.create(**kwargs)
    with pytest.raises(InvalidInput, match="price_cents"):
        await da.products.update_price(p.id, -5)
    with pytest.raises(InvalidInput, match="quantity"):
        await da.products.restock(p.id, 0)
    with pytest.raises(InvalidInput, match="product_id"):
        await da.products.get(0)
    with pytest.raises(InvalidInput, match="user_id"):
        await da.users.get("1")  # type: ignore[arg-type]

    assert await table_counts(fresh_db.primary) == before
    assert (await da.products.get(p.id)).stock == 5  # type: ignore[union-attr]


async def test_idempotent_place_sequential_and_concurrent_duplicates(
    make_da: MakeDA, fresh_db: DatabaseDSNs
) -> None:
    da = await make_da()
    await da.migrate()
    u = await da.users.create(email="i@example.com", name="I")
    p = await da.products.create(sku="I", name="Idem", price_cents=250, stock=100)

    k = key()
    first = await da.orders.place(u.id, [(p.id, 3)], idempotency_key=k)
    again = await da.orders.place(u.id, [(p.id, 3)], idempotency_key=k)
    assert again == first
    assert first.total_cents == 750 and first.lines[0].unit_price_cents == 250
    assert await da.orders.get(first.id) == first
    with pytest.raises(Conflict, match="different"):
        await da.orders.place(u.id, [(p.id, 4)], idempotency_key=k)

    # 40 concurrent submissions of one key from two instances -> one order, everyone sees it.
    other = await make_da()
    k2 = key()
    results = await asyncio.gather(
        *((da if i % 2 else other).orders.place(u.id, [(p.id, 1)], idempotency_key=k2) for i in range(40))
    )
    assert len({o.id for o in results}) == 1
    counts = await table_counts(fresh_db.primary)
    assert counts["orders"] == 2 and counts["stock"] == 100 - 3 - 1

    orders = await da.orders.list_for_user(u.id)
    assert [o.id for o in orders] == sorted([first.id, results[0].id], reverse=True)
    now = datetime.now(UTC)
    assert await da.orders.list_for_user(u.id, since=now + timedelta(days=1)) == []
    assert await da.orders.get(first.id + 1) is None


async def test_flash_sale_through_pgbouncer_never_oversells(
    tier: Any, make_da: MakeDA, fresh_db: DatabaseDSNs
) -> None:
    """300 buyers, 25 units, everything through PgBouncer in transaction mode (statement cache 0)."""
    require(tier, pgbouncer=True)
    setup = await make_da()
    await setup.migrate()
    da = await make_da(writer_dsn=fresh_db.pgbouncer, proxy_mode="pgbouncer", writer_pool_max=30)
    assert da.settings.effective_statement_cache_size == 0
    users = [await da.users.create(email=f"buyer{i}@example.com", name=f"B{i}") for i in range(30)]
    hot = await da.products.create(sku="HOT", name="Flash sale console", price_cents=29_900, stock=25)

    acked: list[Any] = []
    refused = 0

    async def buyer(i: int) -> None:
        nonlocal refused
        try:
            acked.append(await da.orders.place(users[i % 30].id, [(hot.id, 1)], idempotency_key=f"sale-{i}"))
        except OutOfStock as exc:
            assert exc.product_ids == (hot.id,)
            refused += 1

    await asyncio.gather(*(buyer(i) for i in range(300)))
    assert len(acked) == 25 and refused == 275
    conn = await asyncpg.connect(fresh_db.primary)
    try:
        assert await conn.fetchval("SELECT stock FROM products WHERE id = $1", hot.id) == 0
        rows = await conn.fetch(
            "SELECT o.id, l.quantity FROM orders o JOIN order_lines l ON l.order_id = o.id"
        )
        assert sorted(r["id"] for r in rows) == sorted(o.id for o in acked)  # zero lost acknowledged orders
        assert sum(r["quantity"] for r in rows) == 25  # zero oversell
    finally:
        await conn.close()
    assert (await da.products.get(hot.id)).stock == 0  # type: ignore[union-attr]


async def test_multi_line_orders_are_all_or_nothing_under_contention(
    make_da: MakeDA, fresh_db: DatabaseDSNs
) -> None:
    """Overlapping multi-line orders in opposite line order: no deadlock, no partial reservation."""
    da = await make_da(writer_pool_max=20)
    await da.migrate()
    u = await da.users.create(email="m@example.com", name="M")
    a = await da.products.create(sku="MA", name="A", price_cents=10, stock=40)
    b = await da.products.create(sku="MB", name="B", price_cents=20, stock=25)
    ok = 0

    async def buy(i: int) -> None:
        nonlocal ok
        lines = [(a.id, 1), (b.id, 1)] if i % 2 else [(b.id, 1), (a.id, 1)]
        try:
            await da.orders.place(u.id, lines, idempotency_key=f"m-{i}")
            ok += 1
        except OutOfStock:
            pass

    await asyncio.gather(*(buy(i) for i in range(60)))
    assert ok == 25
    counts = await table_counts(fresh_db.primary)
    assert counts["order_lines"] == 50 and counts["stock"] == 40 - 25  # b sold out, a kept the rest


async def test_concurrent_migrate_is_safe(make_da: MakeDA) -> None:
    das = [await make_da() for _ in range(3)]
    applied = await asyncio.gather(*(d.migrate() for d in das))
    assert sorted(map(tuple, applied)) == [(), (), tuple(ALL_VERSIONS)]


async def test_redis_down_reads_served_from_db(make_da: MakeDA) -> None:
    """Redis unreachable from the start (closed port): every call works, nothing raises."""
    good = await make_da()
    await good.migrate()
    da = await make_da(redis_url="redis://127.0.0.1:1/0", redis_socket_timeout=0.2)
    u = await da.users.create(email="r@example.com", name="R")
    p = await da.products.create(sku="R", name="Redisless radio", price_cents=10, stock=3)
    assert await da.users.get(u.id) == u
    assert (await da.products.get(p.id)).stock == 3  # type: ignore[union-attr]
    await da.products.update_price(p.id, 20)
    assert (await da.products.get(p.id)).price_cents == 20  # type: ignore[union-attr]
    o = await da.orders.place(u.id, [(p.id, 1)], idempotency_key=key())
    assert await da.orders.get(o.id) == o
    assert [x.id for x in await da.products.search("radio")] == [p.id]
    assert da.cache is not None and da.cache.stats.errors + da.cache.stats.skipped > 0


async def test_redis_gate_refuses_sold_out_without_db(make_da: MakeDA, fresh_db: DatabaseDSNs) -> None:
    da = await make_da(inventory_redis_gate=True)
    await da.migrate()
    u = await da.users.create(email="g@example.com", name="G")
    p = await da.products.create(sku="G", name="Gated", price_cents=10, stock=5)
    assert da.stock_gate is not None
    async with da.pools.writer() as conn:
        assert await da.stock_gate.reconcile(conn, [p.id]) == 1
    r = aioredis.Redis.from_url(da.settings.redis_url or "")
    try:
        assert int(await r.get(da.stock_gate.key(p.id)) or -1) == 5  # set on create (and by reconcile)
    finally:
        await r.aclose()
    results = await asyncio.gather(
        *(da.orders.place(u.id, [(p.id, 1)], idempotency_key=f"g{i}") for i in range(30)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 5
    assert all(isinstance(r, OutOfStock) for r in results if isinstance(r, BaseException))
    assert da.stock_gate.rejected == 25  # refused in Redis, never queued on the row lock
    assert (await table_counts(fresh_db.primary))["stock"] == 0
    # Sold out, yet a retry of an order that went through still gets that order back.
    done = next(i for i, r in enumerate(results) if not isinstance(r, BaseException))
    again = await da.orders.place(u.id, [(p.id, 1)], idempotency_key=f"g{done}")
    assert again == results[done]
    # Restock refreshes the gate: no false "sold out" afterwards.
    await da.products.restock(p.id, 2)
    assert (await da.orders.place(u.id, [(p.id, 2)], idempotency_key="after-restock")).lines[0].quantity == 2


def _plan_text(rows: list[asyncpg.Record]) -> str:
    return "\n".join(r[0] for r in rows)


def _partitions(plan: str) -> set[str]:
    """Names of the orders partitions a plan reads."""
    return set(re.findall(r" on (orders_y\d{4}m\d{2})\b", plan))


async def test_explain_hot_queries_use_indexes_and_prune_partitions(
    make_da: MakeDA, fresh_db: DatabaseDSNs
) -> None:
    da = await make_da()
    await da.migrate()
    await da.ensure_partitions(months_back=4)
    conn = await asyncpg.connect(fresh_db.primary)
    try:
        await conn.execute("""
            INSERT INTO users (email, name) SELECT 'u' || g || '@example.com', 'user ' || g
              FROM generate_series(1, 3000) g;
            INSERT INTO products (sku, name, price_cents, stock)
              SELECT 'SKU' || g, 'gadget model ' || g, g, 10 FROM generate_series(1, 20000) g;
            INSERT INTO products (sku, name, price_cents, stock)
              VALUES ('WH', 'Wireless Headphones Pro', 1, 1);
            INSERT INTO orders (user_id, total_cents, idempotency_key, created_at)
              SELECT 1 + g % 3000, 100, 'imp-' || g, now() - (g % 90) * interval '1 day'
              FROM generate_series(1, 6000) g;
        """)
        for table in ("users", "products", "orders"):  # VACUUM also merges the GIN pending lists
            await conn.execute(f"VACUUM ANALYZE {table}")

        async def plan(sql: str, *args: Any) -> str:
            return _plan_text(await conn.fetch("EXPLAIN " + sql, *args))

        assert "products_pkey" in await plan("SELECT * FROM products WHERE id = $1", 42)
        assert "users_pkey" in await plan("SELECT * FROM users WHERE id = $1", 42)
        assert "users_email_lower_key" in await plan(
            "SELECT * FROM users WHERE lower(email) = lower($1)", "u5@example.com"
        )
        assert "products_sku_key" in await plan("SELECT * FROM products WHERE sku = $1", "SKU9")
        # Search plans (no sequential scan, bounded candidates): tests/integration/test_search_plans.py

        # Order by id: the id encodes its creation ms -> exactly one partition is scanned.
        from dataaccess.repositories.orders import order_created_window

        oid = await conn.fetchval("SELECT id FROM orders ORDER BY created_at DESC LIMIT 1")
        lo, hi = order_created_window(oid)
        text = await plan(
            "SELECT * FROM orders WHERE id = $1 AND created_at >= $2 AND created_at < $3", oid, lo, hi
        )
        assert len(_partitions(text)) == 1, text
        # A user's orders within one month touch one partition, through the (user_id, created_at) index.
        now = datetime.now(UTC)
        month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        text = await plan(
            "SELECT id FROM orders WHERE user_id = $1 AND created_at >= $2 AND created_at < $3 "
            "ORDER BY created_at DESC LIMIT 50",
            7,
            month,
            now + timedelta(seconds=1),
        )
        assert len(_partitions(text)) == 1 and "user_id_created_at_idx" in text, text
        whole = await plan("SELECT id FROM orders WHERE user_id = $1", 7)
        assert len(_partitions(whole)) >= 4, whole  # without a time bound: all partitions
        assert "order_lines_pkey" in await plan("SELECT * FROM order_lines WHERE order_id = $1", oid)
        assert "order_lines_product_idx" in await plan("SELECT * FROM order_lines WHERE product_id = $1", 5)
        assert "order_idempotency_pkey" in await plan(
            "SELECT * FROM order_idempotency WHERE idempotency_key = $1", "x"
        )
    finally:
        await conn.close()
    # The derived-window lookup finds imported orders too (fallback scan when the window misses).
    imported = await da.orders.get(oid)
    assert imported is not None and imported.id == oid


async def test_cold_key_stampede_loads_once_across_instances(make_da: MakeDA) -> None:
    # Single flight is under test, not the give-up bounds (test_cache_redis covers those): with
    # the 0.5 s defaults a starved CI machine (load 20+ on 2 cores) let the lease wait run out or
    # the first TLS connect time out, and each such caller rightly loaded from the database itself.
    a, b = await make_da(redis_socket_timeout=30.0), await make_da(redis_socket_timeout=30.0)
    for da in (a, b):
        assert da.cache is not None
        da.cache.lease_wait = 60.0
    await a.migrate()
    p = await a.products.create(sku="ST", name="Stampede", price_cents=5, stock=5)
    await asyncio.sleep(0)
    before = sum(a.pools.routed.values()) + sum(b.pools.routed.values())
    got = await asyncio.gather(*((a if i % 2 else b).products.get(p.id) for i in range(50)))
    assert all(g == p for g in got)
    after = sum(a.pools.routed.values()) + sum(b.pools.routed.values())
    assert after - before == 1  # 50 concurrent misses in two "processes" -> one DB read


async def test_connect_as_context_manager_and_redis_features_wired(
    fresh_db: DatabaseDSNs, redis_clean: str
) -> None:
    async with DataAccess.connect(Settings(writer_dsn=fresh_db.primary, redis_url=redis_clean)) as da:
        await da.migrate()
        assert da.sessions is not None and da.counters is not None
        assert da.queues is not None and da.events is not None
        assert await da.users.get(1) is None
    assert da.pools.writer_pool._closed  # closed on exit


async def test_missing_partition_is_created_on_demand(make_da: MakeDA, fresh_db: DatabaseDSNs) -> None:
    da = await make_da()
    await da.migrate()
    u = await da.users.create(email="np@example.com", name="NP")
    p = await da.products.create(sku="NP", name="No partition", price_cents=5, stock=5)
    conn = await asyncpg.connect(fresh_db.primary)
    try:
        # Drop this month's partition and the next (lapsed maintenance); dropping both keeps the
        # test meaningful if it runs across midnight at a month end.
        lapsed = [partition_name(m) for m in partition_months(datetime.now(UTC), months_ahead=1)]
        for name in lapsed:
            await conn.execute(f"ALTER TABLE orders DETACH PARTITION {name}; DROP TABLE {name}")
        o = await da.orders.place(u.id, [(p.id, 1)], idempotency_key="np-1")
        home = partition_name(o.created_at.astimezone(UTC).date())
        assert home in lapsed
        assert await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", home)
        assert await da.orders.get(o.id) == o
    finally:
        await conn.close()


async def test_role_statement_timeout_for_proxies(make_da: MakeDA, fresh_db: DatabaseDSNs) -> None:
    da = await make_da(proxy_mode="pgbouncer", writer_dsn=fresh_db.pgbouncer, statement_timeout=1.5)
    assert da.settings.effective_statement_timeout_via == "role"
    await da.apply_role_statement_timeout()
    conn = await asyncpg.connect(fresh_db.primary)  # a new session of the same role
    try:
        assert await conn.fetchval("SHOW statement_timeout") == "1500ms"
    finally:
        await conn.execute("ALTER ROLE CURRENT_USER RESET statement_timeout")  # shared role: undo
        await conn.close()


async def test_cancel_restores_stock_once(make_da: MakeDA, fresh_db: DatabaseDSNs) -> None:
    da = await make_da()
    await da.migrate()
    u = await da.users.create("c@example.com", "C")  # positional arguments work too
    p = await da.products.create("CX", "Cancellable", 100, 5)
    o = await da.orders.place(u.id, [(p.id, 3)], idempotency_key="cx-1")
    assert (await da.products.get(p.id)).stock == 2  # type: ignore[union-attr]
    cancelled = await asyncio.gather(*(da.orders.cancel(o.id) for _ in range(5)))
    assert all(c.status == "cancelled" and c.id == o.id for c in cancelled)
    assert (await da.products.get(p.id)).stock == 5  # type: ignore[union-attr]  # restored exactly once
    assert (await da.orders.get(o.id)).status == "cancelled"  # type: ignore[union-attr]
    assert (await table_counts(fresh_db.primary))["stock"] == 5
    with pytest.raises(NotFound):
        await da.orders.cancel(o.id + 1)


@pytest.mark.parametrize(
    "statement_timeout", [4.0, None], ids=["startup-param-rejected", "prepared-stmt-errors"]
)
async def test_pgbouncer_without_proxy_mode_is_detected(
    tier: Any, make_da: MakeDA, fresh_db: DatabaseDSNs, statement_timeout: float | None
) -> None:
    """A PgBouncer writer configured as "direct" must still work: detected either because it
    rejects the statement_timeout startup parameter or because prepared statements vanish."""
    require(tier, pgbouncer=True)
    setup = await make_da()
    await setup.migrate()
    da = await make_da(writer_dsn=fresh_db.pgbouncer, statement_timeout=statement_timeout, writer_pool_max=15)
    u = await da.users.create(email="pgb@example.com", name="P")
    p = await da.products.create(sku="PGB", name="Bouncer", price_cents=1, stock=200)
    results = await asyncio.gather(
        *(da.orders.place(u.id, [(p.id, 1)], idempotency_key=f"pgb-{i}") for i in range(100)),
        *(da.products.update_price(p.id, i + 1) for i in range(50)),
    )
    assert len(results) == 150
    assert da.pools.pgbouncer_detected
    assert (await table_counts(fresh_db.primary))["stock"] == 100


async def test_stale_set_race_through_the_facade_is_closed(make_da: MakeDA) -> None:
    """Reader B misses and loads price 100; writer A commits 200 and invalidates; only then B tries
    to fill. B's lease was killed by the invalidation, so 100 never lands in Redis."""
    a, b = await make_da(), await make_da()
    await a.migrate()
    p = await a.products.create(sku="SS", name="Stale set", price_cents=100, stock=1)
    loaded, release = asyncio.Event(), asyncio.Event()
    original_read = b._rt.read

    async def slow_read(entities: list[str], fn: Any, **kw: Any) -> Any:
        result = await original_read(entities, fn, **kw)
        loaded.set()
        await release.wait()  # hold the old value until the writer has committed + invalidated
        return result

    b._rt.read = slow_read  # type: ignore[method-assign]
    reader = asyncio.create_task(b.products.get(p.id))
    await loaded.wait()
    await a.products.update_price(p.id, 200)
    release.set()
    assert (await reader).price_cents == 100  # type: ignore[union-attr]  # began before the write
    b._rt.read = original_read  # type: ignore[method-assign]
    assert b.cache is not None and b.cache.stats.stale_fills_rejected == 1
    for da in (a, b, await make_da()):
        assert (await da.products.get(p.id)).price_cents == 200  # type: ignore[union-attr]


async def test_cancelled_caller_still_invalidates_after_commit(make_da: MakeDA) -> None:
    da = await make_da()
    await da.migrate()
    p = await da.products.create(sku="CN", name="Cancelled caller", price_cents=1, stock=1)
    assert (await da.products.get(p.id)).price_cents == 1  # type: ignore[union-attr]  # cached
    real = da._rt._after_write
    started = asyncio.Event()

    async def slow_after_write(*args: Any) -> None:
        started.set()
        await asyncio.sleep(0.05)  # the caller gets cancelled in here
        await real(*args)

    da._rt._after_write = slow_after_write  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(da.products.update_price(p.id, 2))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await da._rt.drain()
    assert (await da.products.get(p.id)).price_cents == 2  # type: ignore[union-attr]
