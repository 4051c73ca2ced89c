"""The baseline the flash-sale benchmark compares against: the textbook ``SELECT … FOR UPDATE``
transaction, writing the same rows as ``dataaccess`` (order, line, idempotency key)."""

from __future__ import annotations

import asyncpg


class NaiveSoldOutError(Exception):
    """Stock is below the requested quantity."""


async def naive_place_order(pool: asyncpg.Pool, user_id: int, product_id: int, qty: int, key: str) -> int:
    """Lock the product row, check stock, decrement, insert the order: 5 round trips under the lock."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT stock, price_cents FROM products WHERE id = $1 FOR UPDATE", product_id
        )
        if row is None or row["stock"] < qty:
            raise NaiveSoldOutError(product_id)
        await conn.execute(
            "UPDATE products SET stock = stock - $2, version = version + 1, updated_at = now() WHERE id = $1",
            product_id,
            qty,
        )
        order = await conn.fetchrow(
            "INSERT INTO orders (user_id, total_cents, idempotency_key) VALUES ($1, $2, $3) "
            "RETURNING id, created_at",
            user_id,
            row["price_cents"] * qty,
            key,
        )
        await conn.execute(
            "INSERT INTO order_lines (order_id, order_created_at, line_no, product_id, quantity, "
            "unit_price_cents) VALUES ($1, $2, 1, $3, $4, $5)",
            order["id"],
            order["created_at"],
            product_id,
            qty,
            row["price_cents"],
        )
        await conn.execute(
            "INSERT INTO order_idempotency (idempotency_key, user_id, request_hash, order_id, "
            "order_created_at) VALUES ($1, $2, 'naive', $3, $4)",
            key,
            user_id,
            order["id"],
            order["created_at"],
        )
        return int(order["id"])
