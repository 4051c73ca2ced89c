"""Orders: exactly-once placement with atomic stock reservation; reads pruned to one partition.

``place`` goes through the group commit of :mod:`dataaccess.order_batch`: concurrent orders for
the same products are placed by one autocommit call of ``commerce_place_orders`` (migration
0004), which per order claims the idempotency key (``INSERT ... ON CONFLICT DO NOTHING`` on its
primary key), checks the user and products, reserves stock all-or-nothing (conditional on the
locked row's stock, so it never oversells), inserts the order and its lines and links the key;
keys first, product rows last and in id order. The hot rows' locks are held for no client round
trip, which is what limits orders/s on one hot SKU. A second call with the same
key — a client retry, our own retry after a dropped connection, or a concurrent duplicate that
blocked on the key's index entry until the first committed — finds the key and returns the
existing order; a key reused for a *different* request is a :class:`Conflict`. Because of that,
``place`` is retried on failover errors even when the outcome of the first attempt is unknown.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg

from ..errors import Conflict, InvalidInput, NotFound, OutOfStock
from ..inventory import RedisStockGate
from ..migrations import ensure_partitions
from ..models import Order, OrderLine
from ..order_batch import OrderBatcher, PlaceRequest
from ..pools import Source
from ..runtime import PostCommit, Runtime
from ..validation import check_id, check_int_range, check_lines, check_text

__all__ = ["Orders", "order_created_window"]

log = logging.getLogger(__name__)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def order_created_window(order_id: int) -> tuple[datetime, datetime]:
    """``[lo, hi)`` bounds of ``created_at`` encoded in an order id (its creation millisecond)."""
    lo = _EPOCH + timedelta(milliseconds=order_id >> 20)
    return lo, lo + timedelta(milliseconds=1)


def _request_hash(user_id: int, lines: list[tuple[int, int]]) -> str:
    return hashlib.sha256(json.dumps([user_id, sorted(lines)]).encode()).hexdigest()


_ORDER_COLS = "id, user_id, status, total_cents, created_at, idempotency_key"


async def _fetch_order(
    conn: asyncpg.Connection, order_id: int, created_at: datetime | None = None
) -> Order | None:
    if created_at is not None:
        row = await conn.fetchrow(
            f"SELECT {_ORDER_COLS} FROM orders WHERE id = $1 AND created_at = $2", order_id, created_at
        )
    else:
        lo, hi = order_created_window(order_id)
        row = await conn.fetchrow(
            f"SELECT {_ORDER_COLS} FROM orders WHERE id = $1 AND created_at >= $2 AND created_at < $3",
            order_id,
            lo,
            hi,
        )
        if row is None:  # ids inserted with an explicit created_at (imports): scan every partition
            row = await conn.fetchrow(f"SELECT {_ORDER_COLS} FROM orders WHERE id = $1", order_id)
    if row is None:
        return None
    lines = await conn.fetch(
        "SELECT product_id, quantity, unit_price_cents FROM order_lines WHERE order_id = $1 ORDER BY line_no",
        order_id,
    )
    return _order_from_row(
        row, [OrderLine(r["product_id"], r["quantity"], r["unit_price_cents"]) for r in lines]
    )


def _order_from_row(row: asyncpg.Record, lines: list[OrderLine]) -> Order:
    return Order(
        id=row["id"],
        user_id=row["user_id"],
        status=row["status"],
        total_cents=row["total_cents"],
        created_at=row["created_at"],
        idempotency_key=row["idempotency_key"],
        lines=tuple(lines),
    )


def _order_change(order: Order) -> PostCommit:
    """What placing or cancelling ``order`` changed: markers for it, its user's list and its
    products; the products' cached entries (their stock changed)."""
    pids = [line.product_id for line in order.lines]
    return PostCommit(
        entities=(f"order:{order.id}", f"user_orders:{order.user_id}", *(f"product:{p}" for p in pids)),
        cache_keys=tuple(f"product:{p}" for p in pids),
    )


class _KeyUnusedError(Exception):
    """Internal: no order holds the idempotency key (see ``Orders._by_key``)."""


class Orders:
    """``da.orders``."""

    def __init__(self, rt: Runtime, gate: RedisStockGate | None = None) -> None:
        self._rt = rt
        self._gate = gate
        self._batcher = OrderBatcher(rt, ensure_partitions=self.ensure_partitions)
        self._background: set[asyncio.Future[None]] = set()

    async def drain(self) -> None:
        """Wait for batches in flight and gate bookkeeping of cancelled callers (``close()``)."""
        await self._batcher.drain()
        if self._background:
            await asyncio.wait(set(self._background))

    async def place(self, user_id: int, lines: list[tuple[int, int]], *, idempotency_key: str) -> Order:
        """Place an order for ``lines`` = ``[(product_id, quantity), ...]``.

        All lines are reserved or none. The same ``idempotency_key`` (1-200 chars, e.g. a UUID the
        client generated) returns the same order, created once, also under concurrent duplicates.

        :raises InvalidInput: empty lines, quantity < 1 or > ``max_line_quantity``, duplicate
            product in lines, bad key (nothing changed).
        :raises UnknownReference: unknown user or product (also a ``NotFound``).
        :raises OutOfStock: not enough stock; ``.product_ids`` names every short product.
        :raises Conflict: the key was already used for a different request.
        """
        user_id = check_id("user_id", user_id)
        s = self._rt.settings
        norm = check_lines("lines", lines, max_lines=s.max_order_lines, max_qty=s.max_line_quantity)
        key = check_text("idempotency_key", idempotency_key, max_len=200, strip=False)
        if key != key.strip() or any(c.isspace() and c != " " for c in key):
            raise InvalidInput(
                "idempotency_key", "must not have surrounding whitespace or control characters"
            )
        req_hash = _request_hash(user_id, norm)

        taken: list[tuple[int, int]] = []
        if self._gate is not None:
            try:
                # Raises OutOfStock when surely sold out; takes nothing for a duplicate of an
                # attempt (in flight or done) whose key already took units.
                _, taken = await self._gate.try_take(norm, idempotency_key=key)
            except OutOfStock:
                # A retry of an order that already went through must still get its order back.
                existing = await self._by_key(key, user_id, req_hash)
                if existing is None:
                    raise
                return existing

        # Group commit (see dataaccess.order_batch): acknowledged after the batch's COMMIT.
        req = PlaceRequest(user_id, norm, key, req_hash)
        fut = self._batcher.submit(req)
        try:
            order, created = await asyncio.shield(fut)
        except asyncio.CancelledError:
            if self._gate is not None and taken:
                if self._batcher.withdraw(req):  # never sent: nothing happened
                    await self._gate.give_back(taken, forget_key=key)
                else:  # in flight: its outcome decides whether the units stay taken
                    fut.add_done_callback(self._give_back_unless_placed(taken, key))
            else:
                self._batcher.withdraw(req)
            raise
        except BaseException:
            if self._gate is not None:  # nothing committed for this request (or unknown: DB decides)
                await self._gate.give_back(taken, forget_key=key)
            raise
        if not created and self._gate is not None:
            await self._gate.give_back(taken)  # duplicate: the original already took its units
        return order

    def _give_back_unless_placed(
        self, taken: list[tuple[int, int]], key: str
    ) -> Callable[[asyncio.Future[tuple[Order, bool]]], None]:
        """Done-callback for a cancelled caller's request: return its gate units unless its
        order was placed by this request."""

        def done(f: asyncio.Future[tuple[Order, bool]]) -> None:
            ok = not f.cancelled() and f.exception() is None
            if (ok and f.result()[1]) or self._gate is None:
                return  # placed by this request: the order holds the units
            # A duplicate keeps its key's marker (the original holds units); a failure forgets it.
            task = asyncio.ensure_future(self._gate.give_back(taken, forget_key=None if ok else key))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

        return done

    async def _by_key(self, key: str, user_id: int, req_hash: str) -> Order | None:
        """The order placed under ``key``, None if none; Conflict if the key belongs to a different
        request. Waits for an attempt with the same key that is still in flight.

        Why a write: a plain read misses an attempt that has not committed yet (with the gate, a
        duplicate is refused in Redis while the first attempt still holds the last unit in its DB
        transaction). Claiming the key blocks on that attempt's uncommitted key row, like a
        duplicate without the gate; a claim that succeeds means no order exists and is rolled back.
        """

        async def probe(conn: asyncpg.Connection) -> Order | None:
            claimed = await conn.fetchval(
                "INSERT INTO order_idempotency (idempotency_key, user_id, request_hash) VALUES ($1, $2, $3) "
                "ON CONFLICT (idempotency_key) DO NOTHING RETURNING true",
                key,
                user_id,
                req_hash,
            )
            if claimed:
                raise _KeyUnusedError  # rolls the claim back
            prev = await conn.fetchrow(
                "SELECT request_hash, order_id, order_created_at FROM order_idempotency "
                "WHERE idempotency_key = $1",
                key,
            )
            if prev["request_hash"] != req_hash:
                raise Conflict(
                    f"idempotency key {key!r} was already used for a different order request",
                    constraint="order_idempotency_pkey",
                )
            return await _fetch_order(conn, prev["order_id"], prev["order_created_at"])

        try:
            existing, _ = await self._rt.write(probe, context="orders.place", idempotent=True)
        except _KeyUnusedError:
            return None
        return existing

    async def cancel(self, order_id: int) -> Order:
        """Cancel a ``placed`` order and put its units back in stock, atomically. Idempotent:
        cancelling a cancelled order returns it unchanged (stock is restored once).

        :raises NotFound: no such order. :raises Conflict: the order is past ``placed``.
        """
        order_id = check_id("order_id", order_id)

        async def tx(conn: asyncpg.Connection) -> tuple[Order | None, bool]:
            current = await _fetch_order(conn, order_id)
            if current is None:
                return None, False
            flipped = await conn.fetchval(
                "UPDATE orders SET status = 'cancelled' "
                "WHERE id = $1 AND created_at = $2 AND status = 'placed' RETURNING true",
                order_id,
                current.created_at,
            )
            if not flipped:  # lost a race or not cancellable: re-read under the row lock's outcome
                latest = await _fetch_order(conn, order_id, current.created_at)
                assert latest is not None
                if latest.status != "cancelled":
                    raise Conflict(f"order {order_id} is {latest.status!r} and cannot be cancelled")
                return latest, False
            for line in sorted(current.lines, key=lambda ln: ln.product_id):  # same lock order as place
                await conn.execute(
                    "UPDATE products SET stock = stock + $2, version = version + 1, updated_at = now() "
                    "WHERE id = $1",
                    line.product_id,
                    line.quantity,
                )
            return await _fetch_order(conn, order_id, current.created_at), True

        restocked_units: list[tuple[int, int]] = []

        def change(result: tuple[Order | None, bool]) -> PostCommit | None:
            # Run by Runtime.write after COMMIT, also for a caller cancelled after it.
            cancelled, restocked = result
            if cancelled is None:
                return None
            if restocked:
                restocked_units[:] = [(ln.product_id, ln.quantity) for ln in cancelled.lines]
            return _order_change(cancelled)

        try:
            (order, _restocked), _ = await self._rt.write(
                tx, context="orders.cancel", idempotent=True, after_commit=change
            )
        finally:
            if restocked_units and self._gate is not None:  # also when cancelled after COMMIT
                await self._gate.give_back(restocked_units)
        if order is None:
            raise NotFound("order", order_id)
        return order

    async def get(self, order_id: int) -> Order | None:
        """The order with its lines, or None. The id encodes its creation time, so the lookup
        touches one partition. Reads after ``place`` see the order (read-your-writes)."""
        order_id = check_id("order_id", order_id)

        async def q(conn: asyncpg.Connection, _src: Source) -> Order | None:
            return await _fetch_order(conn, order_id)

        return await self._rt.read([f"order:{order_id}"], q, context="orders.get")

    async def list_for_user(
        self, user_id: int, *, since: datetime | None = None, until: datetime | None = None, limit: int = 50
    ) -> list[Order]:
        """The user's orders, newest first, optionally within ``[since, until)`` (which prunes
        partitions; index ``orders_user_created_idx``)."""
        user_id = check_id("user_id", user_id)
        limit = check_int_range("limit", limit, 1, 1000)
        for name, value in (("since", since), ("until", until)):
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                raise InvalidInput(name, "must be a timezone-aware datetime")
        lo = since or datetime(1970, 1, 1, tzinfo=UTC)
        hi = until or datetime(9999, 1, 1, tzinfo=UTC)

        async def q(conn: asyncpg.Connection, _src: Source) -> list[Order]:
            rows = await conn.fetch(
                f"SELECT {_ORDER_COLS} FROM orders "
                "WHERE user_id = $1 AND created_at >= $2 AND created_at < $3 "
                "ORDER BY created_at DESC, id DESC LIMIT $4",
                user_id,
                lo,
                hi,
                limit,
            )
            if not rows:
                return []
            line_rows = await conn.fetch(  # one query for all lines (no N+1)
                "SELECT order_id, product_id, quantity, unit_price_cents FROM order_lines "
                "WHERE order_id = ANY($1::bigint[]) ORDER BY order_id, line_no",
                [r["id"] for r in rows],
            )
            lines: dict[int, list[OrderLine]] = {}
            for lr in line_rows:
                lines.setdefault(lr["order_id"], []).append(
                    OrderLine(lr["product_id"], lr["quantity"], lr["unit_price_cents"])
                )
            return [_order_from_row(r, lines.get(r["id"], [])) for r in rows]

        return await self._rt.read([f"user_orders:{user_id}"], q, context="orders.list_for_user")

    async def ensure_partitions(
        self, *, months_ahead: int | None = None, months_back: int = 0, at: datetime | None = None
    ) -> int:
        """Create missing monthly partitions (see :func:`dataaccess.migrations.ensure_partitions`).
        ``at`` defaults to now (UTC)."""
        ahead = self._rt.settings.order_partitions_ahead if months_ahead is None else months_ahead

        async def tx(conn: asyncpg.Connection) -> int:
            return await ensure_partitions(conn, months_ahead=ahead, months_back=months_back, at=at)

        created, lsn = await self._rt.write(tx, context="orders.ensure_partitions", idempotent=True)
        if created:  # new tables: keep reads off replicas that have not replayed them
            await self._rt.schema_changed(lsn)
        return created
