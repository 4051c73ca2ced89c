"""Reading the commerce schema on either database (read-only queries; no writes at all).

Queries stay on indexes where the schema has them: orders by primary key ``(id, created_at)``
(an order id embeds its creation millisecond, so "created since T" is also an id range),
order lines by ``(order_id, line_no)``, idempotency keys, users and products by primary key. The
only scans are of users and products changed since the window start (``updated_at`` has no index):
run reconcile against a restored snapshot, not a busy writer, when the tables are large.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from .model import OldOrder, OldOrderLine, ReconcileError

__all__ = [
    "REQUIRED_COLUMNS",
    "NewKey",
    "NewOrder",
    "ProductRow",
    "UserRow",
    "check_schema",
    "database_identity",
    "in_recovery",
    "keys_on",
    "newest_common_order",
    "old_orders_since",
    "orders_of_users_since",
    "products_by_id",
    "products_changed_since",
    "server_now",
    "users_by_id",
    "users_changed_since",
]

_BATCH = 1000
"""Ids or keys per ``= ANY($1)`` lookup."""

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "users": ("id", "email", "name", "created_at", "updated_at"),
    "products": ("id", "sku", "name", "price_cents", "stock", "updated_at"),
    "orders": ("id", "created_at", "user_id", "status", "total_cents", "idempotency_key"),
    "order_lines": ("order_id", "order_created_at", "line_no", "product_id", "quantity", "unit_price_cents"),
    "order_idempotency": ("idempotency_key", "user_id", "request_hash", "order_id", "order_created_at"),
}
"""The commerce schema (dataaccess/migrations) as far as reconcile reads it."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    email_lower: str
    name: str


@dataclass(frozen=True, slots=True)
class ProductRow:
    id: int
    sku: str
    name: str
    price_cents: int
    stock: int


@dataclass(frozen=True, slots=True)
class NewOrder:
    """An order on the new writer, as far as duplicate detection needs it."""

    id: int
    user_id: int
    lines: tuple[tuple[int, int], ...]
    """``(product_id, quantity)`` sorted."""


@dataclass(frozen=True, slots=True)
class NewKey:
    """An idempotency key as the new writer holds it."""

    order_id: int | None
    request_hash: str
    status: str | None
    """The linked order's status (None: no order linked)."""


async def check_schema(conn: asyncpg.Connection, side: str, *, placing: bool = False) -> None:
    """Raise :class:`ReconcileError` naming the first table or column of the commerce schema that
    ``conn``'s database lacks (``side`` says which database, e.g. "old database 10.0.0.5:5432/app").
    ``placing``: also require ``commerce_place_orders`` (migration 0004), which ``--apply`` uses."""
    rows = await conn.fetch(
        "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns "
        "WHERE table_schema = ANY (current_schemas(false)) AND table_name = ANY ($1::text[])",
        list(REQUIRED_COLUMNS),
    )
    have: dict[str, set[str]] = {}
    for r in rows:
        have.setdefault(r["t"], set()).add(r["c"])
    for table, columns in REQUIRED_COLUMNS.items():
        if table not in have:
            raise ReconcileError(
                f"{side}: table {table!r} does not exist: not the commerce schema "
                "(dataaccess/migrations) — wrong database, or not migrated?"
            )
        lacking = [c for c in columns if c not in have[table]]
        if lacking:
            raise ReconcileError(
                f"{side}: table {table!r} lacks column(s) {', '.join(lacking)}: not the commerce schema "
                "this tool knows (dataaccess/migrations)"
            )
    if placing:
        fn = await conn.fetchval(
            "SELECT to_regprocedure('commerce_place_orders(text[], bigint[], text[], integer[], bigint[], "
            "integer[])')::text"
        )
        if fn is None:
            raise ReconcileError(
                f"{side}: function commerce_place_orders (migration 0004) is missing: migrate the new "
                "writer before --apply"
            )


async def database_identity(conn: asyncpg.Connection) -> tuple[str, str]:
    """(server start time, database name): equal for two DSNs that reach the same database (also
    through a proxy). A restored snapshot or a promoted replica is another server."""
    row = await conn.fetchrow("SELECT pg_postmaster_start_time()::text AS t, current_database() AS d")
    return row["t"], row["d"]


async def server_now(conn: asyncpg.Connection) -> datetime:
    """The server's clock (reconcile never trusts the operator's machine's clock)."""
    value: datetime = await conn.fetchval("SELECT now()")
    return value


async def in_recovery(conn: asyncpg.Connection) -> bool:
    """True on a standby (read-only replica)."""
    return bool(await conn.fetchval("SELECT pg_is_in_recovery()"))


def _chunks(items: Sequence[object], size: int = _BATCH) -> Iterable[list[object]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


async def newest_common_order(
    old: asyncpg.Connection, new: asyncpg.Connection, *, page: int = 500, max_scan: int = 50_000
) -> tuple[int, datetime] | None:
    """``(id, created_at)`` of the newest order of the old database that the new writer has too
    (same id and idempotency key: a promoted replica or restored snapshot keeps both; an id alone
    could be a different order that happens to get the same id on each side after the divergence),
    scanning the old database's orders newest first. None when the old database has no orders.

    :raises ReconcileError: none of the newest ``max_scan`` orders exists on the new writer (the
        databases share no history, or the divergence is older: give the promotion time).
    """
    before: int | None = None
    scanned = 0
    while scanned < max_scan:
        rows = await old.fetch(
            "SELECT id, created_at, idempotency_key FROM orders WHERE ($1::bigint IS NULL OR id < $1) "
            "ORDER BY id DESC LIMIT $2",
            before,
            page,
        )
        if not rows:
            if scanned == 0:
                return None
            break
        ids = [r["id"] for r in rows]
        found = {
            (r["id"], r["idempotency_key"])
            for r in await new.fetch(
                "SELECT id, idempotency_key FROM orders WHERE id = ANY ($1::bigint[])", ids
            )
        }
        for r in rows:
            if (r["id"], r["idempotency_key"]) in found:
                return r["id"], r["created_at"]
        scanned += len(rows)
        before = ids[-1]
    raise ReconcileError(
        f"none of the old database's newest {scanned} orders exists on the new writer: the two DSNs do "
        "not look like the same system before the failover (wrong database?), or the divergence is "
        "older than that — give the promotion time with --since"
    )


async def old_orders_since(conn: asyncpg.Connection, start: datetime, *, limit: int) -> list[OldOrder]:
    """Orders created at or after ``start``, oldest first, with their lines and the request hash
    of their idempotency key.

    :raises ReconcileError: more than ``limit`` orders (narrow the window)."""
    # Ids embed the creation millisecond (migration 0001): the id bound makes this a primary-key
    # range scan instead of a scan of the whole month's partition.
    min_id = int((start - _EPOCH).total_seconds() * 1000) << 20
    rows = await conn.fetch(
        "SELECT o.id, o.created_at, o.user_id, o.status, o.total_cents, o.idempotency_key, k.request_hash "
        "FROM orders o LEFT JOIN order_idempotency k ON k.idempotency_key = o.idempotency_key "
        "WHERE o.id >= $1 AND o.created_at >= $2 ORDER BY o.created_at, o.id LIMIT $3",
        min_id,
        start,
        limit + 1,
    )
    if len(rows) > limit:
        raise ReconcileError(
            f"more than {limit} orders on the old database since {start.isoformat()}: narrow the window "
            "(--since closer to the promotion, smaller --lookback) or raise --max-orders"
        )
    lines: dict[int, list[OldOrderLine]] = {}
    for chunk in _chunks([r["id"] for r in rows]):
        for lr in await conn.fetch(
            "SELECT order_id, product_id, quantity, unit_price_cents FROM order_lines "
            "WHERE order_id = ANY ($1::bigint[]) ORDER BY order_id, line_no",
            chunk,
        ):
            lines.setdefault(lr["order_id"], []).append(
                OldOrderLine(lr["product_id"], lr["quantity"], lr["unit_price_cents"])
            )
    return [
        OldOrder(
            id=r["id"],
            created_at=r["created_at"],
            user_id=r["user_id"],
            status=r["status"],
            total_cents=r["total_cents"],
            idempotency_key=r["idempotency_key"],
            request_hash=r["request_hash"],
            lines=tuple(lines.get(r["id"], ())),
        )
        for r in rows
    ]


async def keys_on(conn: asyncpg.Connection, keys: Sequence[str]) -> dict[str, NewKey]:
    """The idempotency keys among ``keys`` that ``conn``'s database holds."""
    out: dict[str, NewKey] = {}
    for chunk in _chunks(keys):
        for r in await conn.fetch(
            "SELECT k.idempotency_key, k.request_hash, k.order_id, o.status FROM order_idempotency k "
            "LEFT JOIN orders o ON o.id = k.order_id AND o.created_at = k.order_created_at "
            "WHERE k.idempotency_key = ANY ($1::text[])",
            chunk,
        ):
            out[r["idempotency_key"]] = NewKey(r["order_id"], r["request_hash"], r["status"])
    return out


async def orders_of_users_since(
    conn: asyncpg.Connection, user_ids: Iterable[int], start: datetime
) -> dict[int, list[NewOrder]]:
    """Orders of these users created at or after ``start`` (index ``orders_user_created_idx``)."""
    out: dict[int, list[NewOrder]] = {}
    for chunk in _chunks(sorted(set(user_ids))):
        rows = await conn.fetch(
            "SELECT id, user_id FROM orders WHERE user_id = ANY ($1::bigint[]) AND created_at >= $2 "
            "ORDER BY created_at, id",
            chunk,
            start,
        )
        lines: dict[int, list[tuple[int, int]]] = {}
        for lr in await conn.fetch(
            "SELECT order_id, product_id, quantity FROM order_lines WHERE order_id = ANY ($1::bigint[])",
            [r["id"] for r in rows],
        ):
            lines.setdefault(lr["order_id"], []).append((lr["product_id"], lr["quantity"]))
        for r in rows:
            out.setdefault(r["user_id"], []).append(
                NewOrder(r["id"], r["user_id"], tuple(sorted(lines.get(r["id"], []))))
            )
    return out


_USER_COLS = "id, lower(email) AS email_lower, name"
_PRODUCT_COLS = "id, sku, name, price_cents, stock"


async def users_by_id(conn: asyncpg.Connection, ids: Iterable[int]) -> dict[int, UserRow]:
    """Users with these ids."""
    out: dict[int, UserRow] = {}
    for chunk in _chunks(sorted(set(ids))):
        for r in await conn.fetch(f"SELECT {_USER_COLS} FROM users WHERE id = ANY ($1::bigint[])", chunk):
            out[r["id"]] = UserRow(r["id"], r["email_lower"], r["name"])
    return out


async def users_changed_since(conn: asyncpg.Connection, start: datetime, *, limit: int) -> dict[int, UserRow]:
    """Users created or updated at or after ``start`` (a scan).

    :raises ReconcileError: more than ``limit`` of them (narrow the window)."""
    rows = await conn.fetch(
        f"SELECT {_USER_COLS} FROM users WHERE updated_at >= $1 OR created_at >= $1 ORDER BY id LIMIT $2",
        start,
        limit + 1,
    )
    _refuse_beyond(len(rows), limit, "users", start)
    return {r["id"]: UserRow(r["id"], r["email_lower"], r["name"]) for r in rows}


async def products_by_id(conn: asyncpg.Connection, ids: Iterable[int]) -> dict[int, ProductRow]:
    """Products with these ids."""
    out: dict[int, ProductRow] = {}
    for chunk in _chunks(sorted(set(ids))):
        for r in await conn.fetch(
            f"SELECT {_PRODUCT_COLS} FROM products WHERE id = ANY ($1::bigint[])", chunk
        ):
            out[r["id"]] = ProductRow(r["id"], r["sku"], r["name"], r["price_cents"], r["stock"])
    return out


async def products_changed_since(
    conn: asyncpg.Connection, start: datetime, *, limit: int
) -> dict[int, ProductRow]:
    """Products created or updated at or after ``start`` (at most ``limit``; a scan). Orders
    update ``updated_at`` too, so this includes every product an order in the window touched.

    :raises ReconcileError: more than ``limit`` of them (narrow the window)."""
    rows = await conn.fetch(
        f"SELECT {_PRODUCT_COLS} FROM products WHERE updated_at >= $1 OR created_at >= $1 "
        "ORDER BY id LIMIT $2",
        start,
        limit + 1,
    )
    _refuse_beyond(len(rows), limit, "products", start)
    return {r["id"]: ProductRow(r["id"], r["sku"], r["name"], r["price_cents"], r["stock"]) for r in rows}


def _refuse_beyond(found: int, limit: int, what: str, start: datetime) -> None:
    if found > limit:
        raise ReconcileError(
            f"more than {limit} {what} created or changed on the old database since {start.isoformat()}: "
            "narrow the window (--since closer to the promotion, smaller --lookback) or raise --max-orders"
        )
