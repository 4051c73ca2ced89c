"""Textbook alternatives for selling one hot SKU, measured next to ``dataaccess``'s group commit.

Every variant writes the same rows per order as the naive baseline (order, line, idempotency
key) and never oversells; they differ in where the stock lives and how buyers wait:

* :class:`SkipLockedSlots` — the stock is split over ``slots`` rows; a buyer locks the first free
  slot with ``FOR UPDATE SKIP LOCKED`` and decrements it (ticketing systems). Buyers never queue
  on one row, but each order is still a full client-driven transaction, ``products.stock`` is no
  longer the record (it is the sum of the slots) and a slot is only skipped while locked.
* :class:`AdvisoryTryLock` — ``pg_try_advisory_xact_lock(product)``: a buyer that does not get the
  lock backs off instead of holding a connection in the row's lock queue. The lock is still held
  across the transaction's round trips, so throughput stays that of one client transaction at a
  time.
* :class:`BlockReservations` — the process takes blocks of units from the hot row into
  ``buckets`` durable reservation rows (one hot-row update per block) and sells from them, one
  transaction per order on a bucket nobody else in the process is using. Fast, but units sit in
  reservations: a crashed process strands them until a reclaim job returns them, and the product
  row under-reports what is still for sale.
"""

from __future__ import annotations

import asyncio
import random

import asyncpg

from commerce_db.bench.naive import NaiveSoldOutError

__all__ = ["AdvisoryTryLock", "BlockReservations", "SkipLockedSlots", "create_tables"]

_TABLES = """
CREATE TABLE IF NOT EXISTS bench_stock_slots (
    product_id bigint NOT NULL, slot integer NOT NULL, units integer NOT NULL CHECK (units >= 0),
    PRIMARY KEY (product_id, slot));
CREATE TABLE IF NOT EXISTS bench_reservations (
    product_id bigint NOT NULL, bucket integer NOT NULL, units integer NOT NULL CHECK (units >= 0),
    PRIMARY KEY (product_id, bucket));
"""


async def create_tables(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute(_TABLES)


async def _write_order(conn: asyncpg.Connection, user_id: int, product_id: int, price: int, key: str) -> int:
    """The rows every variant writes for one unit: order, line, idempotency key (3 round trips)."""
    order = await conn.fetchrow(
        "INSERT INTO orders (user_id, total_cents, idempotency_key) VALUES ($1, $2, $3) "
        "RETURNING id, created_at",
        user_id,
        price,
        key,
    )
    await conn.execute(
        "INSERT INTO order_lines (order_id, order_created_at, line_no, product_id, quantity, "
        "unit_price_cents) VALUES ($1, $2, 1, $3, 1, $4)",
        order["id"],
        order["created_at"],
        product_id,
        price,
    )
    await conn.execute(
        "INSERT INTO order_idempotency (idempotency_key, user_id, request_hash, order_id, "
        "order_created_at) VALUES ($1, $2, 'alt', $3, $4)",
        key,
        user_id,
        order["id"],
        order["created_at"],
    )
    return int(order["id"])


class SkipLockedSlots:
    """Stock in ``slots`` rows; each order locks a free one with ``SKIP LOCKED``."""

    name = "skip_locked"

    def __init__(
        self, pool: asyncpg.Pool, product_id: int, price: int, stock: int, *, slots: int = 20
    ) -> None:
        self.pool, self.product_id, self.price, self.stock, self.slots = pool, product_id, price, stock, slots

    async def prepare(self) -> None:
        per, extra = divmod(self.stock, self.slots)
        async with self.pool.acquire() as conn:
            await conn.execute("UPDATE products SET stock = 0 WHERE id = $1", self.product_id)
            await conn.executemany(
                "INSERT INTO bench_stock_slots (product_id, slot, units) VALUES ($1, $2, $3)",
                [(self.product_id, s, per + (1 if s < extra else 0)) for s in range(self.slots)],
            )

    async def place(self, user_id: int, key: str) -> int:
        while True:
            async with self.pool.acquire() as conn, conn.transaction():
                slot = await conn.fetchval(
                    "SELECT slot FROM bench_stock_slots WHERE product_id = $1 AND units > 0 "
                    "ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED",
                    self.product_id,
                )
                if slot is not None:
                    await conn.execute(
                        "UPDATE bench_stock_slots SET units = units - 1 WHERE product_id = $1 AND slot = $2",
                        self.product_id,
                        slot,
                    )
                    return await _write_order(conn, user_id, self.product_id, self.price, key)
                left = await conn.fetchval(
                    "SELECT coalesce(sum(units), 0) FROM bench_stock_slots WHERE product_id = $1",
                    self.product_id,
                )
            if not left:
                raise NaiveSoldOutError(self.product_id)
            await asyncio.sleep(0)  # every slot with units is locked right now: try again

    async def remaining(self) -> int:
        return int(
            await self.pool.fetchval(
                "SELECT (SELECT stock FROM products WHERE id = $1) + "
                "(SELECT coalesce(sum(units), 0) FROM bench_stock_slots WHERE product_id = $1)",
                self.product_id,
            )
        )


class AdvisoryTryLock:
    """``pg_try_advisory_xact_lock`` on the product; losers back off instead of queueing."""

    name = "advisory_trylock"

    def __init__(self, pool: asyncpg.Pool, product_id: int, price: int, stock: int) -> None:
        self.pool, self.product_id, self.price = pool, product_id, price
        self._rng = random.Random(product_id)

    async def prepare(self) -> None:
        return None

    async def place(self, user_id: int, key: str) -> int:
        backoff = 0.0005
        while True:
            async with self.pool.acquire() as conn, conn.transaction():
                if await conn.fetchval("SELECT pg_try_advisory_xact_lock(7, $1::int)", self.product_id):
                    price = await conn.fetchval(
                        "UPDATE products SET stock = stock - 1, version = version + 1, updated_at = now() "
                        "WHERE id = $1 AND stock >= 1 RETURNING price_cents",
                        self.product_id,
                    )
                    if price is None:
                        raise NaiveSoldOutError(self.product_id)
                    return await _write_order(conn, user_id, self.product_id, int(price), key)
                stock = await conn.fetchval("SELECT stock FROM products WHERE id = $1", self.product_id)
            if not stock:
                raise NaiveSoldOutError(self.product_id)
            await asyncio.sleep(self._rng.uniform(0, backoff))
            backoff = min(backoff * 2, 0.02)

    async def remaining(self) -> int:
        return int(await self.pool.fetchval("SELECT stock FROM products WHERE id = $1", self.product_id))


class BlockReservations:
    """Blocks of ``block`` units move from the product row into ``buckets`` reservation rows; each
    order decrements a bucket no other buyer of this process is using."""

    name = "block_reservations"

    def __init__(
        self,
        pool: asyncpg.Pool,
        product_id: int,
        price: int,
        stock: int,
        *,
        buckets: int = 20,
        block: int = 50,
    ) -> None:
        self.pool, self.product_id, self.price = pool, product_id, price
        self.block = block
        self._left = [0] * buckets  # units in each bucket row not promised to a buyer yet
        self._busy = [False] * buckets
        self._product_empty = False
        self._refill = asyncio.Lock()
        self._changed = asyncio.Event()

    async def prepare(self) -> None:
        async with self.pool.acquire() as conn:
            await conn.executemany(
                "INSERT INTO bench_reservations (product_id, bucket, units) VALUES ($1, $2, 0)",
                [(self.product_id, b) for b in range(len(self._left))],
            )

    def _pick(self) -> int | None:
        for b, left in enumerate(self._left):
            if left > 0 and not self._busy[b]:
                return b
        return None

    async def _take_block(self) -> None:
        async with self._refill:
            empty = [b for b, left in enumerate(self._left) if left == 0 and not self._busy[b]]
            if self._product_empty or not empty or self._pick() is not None:
                return
            b = empty[0]
            async with self.pool.acquire() as conn, conn.transaction():
                got = await conn.fetchval(
                    "WITH t AS (SELECT id, least(stock, $2) AS n FROM products WHERE id = $1 "
                    "FOR NO KEY UPDATE) "
                    "UPDATE products p SET stock = p.stock - t.n FROM t WHERE p.id = t.id RETURNING t.n",
                    self.product_id,
                    self.block,
                )
                if got:
                    await conn.execute(
                        "UPDATE bench_reservations SET units = units + $3 "
                        "WHERE product_id = $1 AND bucket = $2",
                        self.product_id,
                        b,
                        got,
                    )
            if got:
                self._left[b] += int(got)
            else:
                self._product_empty = True

    async def place(self, user_id: int, key: str) -> int:
        while True:
            b = self._pick()
            if b is None:
                if self._product_empty and not any(self._left):
                    raise NaiveSoldOutError(self.product_id)
                pairs = zip(self._left, self._busy, strict=True)
                idle_empty = any(left == 0 and not busy for left, busy in pairs)
                if idle_empty and not self._product_empty:
                    await self._take_block()
                else:  # every bucket with units is in use: wait for one to finish
                    self._changed.clear()
                    await self._changed.wait()
                continue
            self._left[b] -= 1
            self._busy[b] = True
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    await conn.execute(
                        "UPDATE bench_reservations SET units = units - 1 "
                        "WHERE product_id = $1 AND bucket = $2",
                        self.product_id,
                        b,
                    )
                    return await _write_order(conn, user_id, self.product_id, self.price, key)
            except BaseException:
                self._left[b] += 1
                raise
            finally:
                self._busy[b] = False
                self._changed.set()

    async def remaining(self) -> int:
        return int(
            await self.pool.fetchval(
                "SELECT (SELECT stock FROM products WHERE id = $1) + "
                "(SELECT coalesce(sum(units), 0) FROM bench_reservations WHERE product_id = $1)",
                self.product_id,
            )
        )
