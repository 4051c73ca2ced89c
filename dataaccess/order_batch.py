"""Group commit for ``orders.place``: concurrent orders for the same products become one statement.

Why: on a flash sale every order needs the same hot row. One transaction per order holds that
row's lock across client round trips and pays the client's per-transaction work (acquire,
BEGIN, statements, COMMIT, LSN, release) once per order; past ~3x over ``SELECT … FOR UPDATE``
the Python client itself is the limit. Here orders wait in a *lane* (one per set of product ids)
while the lane's previous batch is in flight, then go together to the server-side function
``commerce_place_orders`` (migration 0004): one autocommit statement that claims every key,
locks the products in id order, allocates stock in arrival order, writes all orders and commits.
Row locks are held for no client round trip; client work is paid once per batch.

Guarantees, per order, as for a transaction of its own:

* a caller is acknowledged only after the statement that placed its order has **committed**
  (and after its read-your-writes markers and cache invalidations are done);
* each order has its own outcome — placed, the existing order for a reused key, ``Conflict``,
  ``UnknownReference``, ``OutOfStock`` — one buyer's error never fails another's order;
* a key appears at most once per batch; a duplicate waits for the next batch, where the key
  claim finds the first order and returns it;
* no batching delay: a lane with nothing in flight sends at once, so a lone order costs one
  statement (instead of the five round trips of a transaction) plus the commit-LSN query.

A batch whose connection is lost after the statement was sent (the server may have committed)
is re-sent with the same keys: orders that committed come back as ``existing``, the others are
placed, so nothing is lost or duplicated and callers see no error. Such re-sends have their own
budget, :data:`IN_FLIGHT_RESEND_FACTOR` x ``retry_attempts``: a fault that cuts N statements in
a row lands on the one or two batches a lane has in flight, where it used to spread over N
callers' own transactions, so the per-call budget (``retry_attempts``) would let one batch fail
all its callers. Every other failure (writer unreachable, refused, timed out) keeps the per-call
budget; if a batch fails as a whole, every caller in it gets that error (``Unavailable``) and,
since the outcome may be unknown, retries with the same key as for any write.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from .errors import Conflict, DataAccessError, OutOfStock, UnknownReference
from .models import Order, OrderLine
from .runtime import PostCommit, Runtime

__all__ = ["IN_FLIGHT_RESEND_FACTOR", "OrderBatcher", "PlaceRequest"]

log = logging.getLogger(__name__)

IN_FLIGHT_RESEND_FACTOR = 4
"""A batch lost in flight may be re-sent by key up to this many times ``retry_attempts``
(24 with the default 6)."""

_SQL = (
    "SELECT * FROM commerce_place_orders($1::text[], $2::bigint[], $3::text[], "
    "$4::int[], $5::bigint[], $6::int[])"
)


@dataclass(slots=True)
class PlaceRequest:
    """One validated ``place`` call: ``lines`` normalised (distinct product ids, qty >= 1)."""

    user_id: int
    lines: list[tuple[int, int]]
    key: str
    request_hash: str
    future: asyncio.Future[tuple[Order, bool]] = field(init=False)
    sent: bool = False


@dataclass(slots=True)
class _Lane:
    queue: collections.deque[PlaceRequest] = field(default_factory=collections.deque)
    inflight: int = 0


class OrderBatcher:
    """Coalesces concurrent ``place`` requests per set of products into batched statements.

    :param rt: the runtime (writer pool, retries, markers, cache).
    :param max_batch: most orders per statement. Default: 256.
    :param max_inflight: batches per lane in flight at once; the second overlaps the client's
        work on one batch with the server's on the other (they queue on the hot row, which is
        released at each COMMIT). Default: 2.
    :param ensure_partitions: coroutine creating missing ``orders`` partitions (called once when
        a batch finds none for now()).
    """

    def __init__(
        self,
        rt: Runtime,
        *,
        max_batch: int = 256,
        max_inflight: int = 2,
        ensure_partitions: Callable[[], Any] | None = None,
    ) -> None:
        if max_batch < 1 or max_inflight < 1:
            raise ValueError("max_batch and max_inflight must be >= 1")
        self._rt = rt
        self.max_batch = max_batch
        self.max_inflight = max_inflight
        self._ensure_partitions = ensure_partitions
        self._lanes: dict[tuple[int, ...], _Lane] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0
        """Statements sent (one per batch)."""
        self.orders = 0
        """Requests answered by those statements."""

    def submit(self, req: PlaceRequest) -> asyncio.Future[tuple[Order, bool]]:
        """Queue ``req``; the returned future resolves to ``(order, created)`` once the batch has
        committed, or to the request's own error. Cancelling the caller does not cancel the batch:
        use :meth:`withdraw` to take back a request that has not been sent."""
        loop = asyncio.get_running_loop()
        req.future = loop.create_future()
        # A caller cancelled while its order is in flight no longer awaits this future; when the
        # batch answers it with an error (OutOfStock, Unavailable, ...) asyncio would log "Future
        # exception was never retrieved" at ERROR once per such caller (a flash sale with client
        # timeouts floods the log). The caller's own await still raises it.
        req.future.add_done_callback(_mark_retrieved)
        lane_key = tuple(sorted(p for p, _ in req.lines))
        lane = self._lanes.get(lane_key)
        if lane is None:
            lane = self._lanes[lane_key] = _Lane()
        lane.queue.append(req)
        if lane.inflight < self.max_inflight:
            lane.inflight += 1
            task = loop.create_task(self._drain(lane_key, lane))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return req.future

    def withdraw(self, req: PlaceRequest) -> bool:
        """Remove ``req`` if it has not been sent yet (True); False if its batch is in flight."""
        if req.sent:
            return False
        lane = self._lanes.get(tuple(sorted(p for p, _ in req.lines)))
        if lane is not None:
            with contextlib.suppress(ValueError):
                lane.queue.remove(req)
        if not req.future.done():
            req.future.cancel()
        return True

    async def drain(self) -> None:
        """Wait for every batch in flight (used by ``DataAccess.close``)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def _drain(self, lane_key: tuple[int, ...], lane: _Lane) -> None:
        try:
            while lane.queue:
                batch: list[PlaceRequest] = []
                keys: set[str] = set()
                deferred: list[PlaceRequest] = []
                while lane.queue and len(batch) < self.max_batch:
                    req = lane.queue.popleft()
                    if req.future.done():  # withdrawn
                        continue
                    if req.key in keys:  # a duplicate goes next time and finds the first order
                        deferred.append(req)
                        continue
                    keys.add(req.key)
                    req.sent = True
                    batch.append(req)
                lane.queue.extendleft(reversed(deferred))
                if batch:
                    await self._run(batch)
        finally:
            lane.inflight -= 1
            if lane.inflight == 0 and not lane.queue and self._lanes.get(lane_key) is lane:
                del self._lanes[lane_key]

    async def _run(self, batch: list[PlaceRequest]) -> None:
        try:
            results = await self._execute(batch)
        except BaseException as exc:  # the whole statement failed: every caller gets it
            for req in batch:
                if not req.future.done():
                    req.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for req, res in zip(batch, results, strict=True):
            if req.future.done():
                continue
            if isinstance(res, BaseException):
                req.future.set_exception(res)
            else:
                req.future.set_result(res)

    async def _execute(self, batch: list[PlaceRequest]) -> list[tuple[Order, bool] | DataAccessError]:
        self.batches += 1
        self.orders += len(batch)
        args = _arguments(batch)
        products = sorted({p for req in batch for p, _ in req.lines})
        users = sorted({req.user_id for req in batch})
        # If the outcome is unknown, some of these may have changed: drop them from caches.
        unknown = PostCommit(
            entities=(*(f"product:{p}" for p in products), *(f"user_orders:{u}" for u in users)),
            cache_keys=tuple(f"product:{p}" for p in products),
        )

        async def statement(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            return await conn.fetch(_SQL, *args)

        def changed(rows: list[asyncpg.Record]) -> PostCommit | None:
            orders = [r for r in rows if r["outcome"] in ("placed", "existing")]
            if not orders:
                return None
            pids = sorted({p for r in orders for p in r["pids"]})
            return PostCommit(
                entities=(
                    *(f"order:{r['order_id']}" for r in orders),
                    *sorted({f"user_orders:{r['order_user']}" for r in orders}),
                    *(f"product:{p}" for p in pids),
                ),
                cache_keys=tuple(f"product:{p}" for p in pids),
            )

        resends = IN_FLIGHT_RESEND_FACTOR * self._rt.settings.retry_attempts
        try:
            rows = await self._rt.write_statement(
                statement,
                context="orders.place",
                after_commit=changed,
                if_unknown=unknown,
                in_flight_attempts=resends,
            )
        except DataAccessError as exc:
            cause = exc.__cause__
            if not (
                isinstance(cause, asyncpg.CheckViolationError)
                and "no partition" in str(cause)
                and self._ensure_partitions is not None
            ):
                raise
            await self._ensure_partitions()
            rows = await self._rt.write_statement(
                statement,
                context="orders.place",
                after_commit=changed,
                if_unknown=unknown,
                in_flight_attempts=resends,
            )
        by_pos = {r["pos"]: r for r in rows}
        return [_outcome(req, by_pos.get(i + 1)) for i, req in enumerate(batch)]


def _mark_retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _arguments(batch: list[PlaceRequest]) -> tuple[list[Any], ...]:
    keys, users, hashes, line_order, line_pid, line_qty = [], [], [], [], [], []
    for i, req in enumerate(batch, start=1):
        keys.append(req.key)
        users.append(req.user_id)
        hashes.append(req.request_hash)
        for pid, qty in req.lines:
            line_order.append(i)
            line_pid.append(pid)
            line_qty.append(qty)
    return keys, users, hashes, line_order, line_pid, line_qty


def _order(row: asyncpg.Record, key: str) -> Order:
    created_at: datetime = row["order_created_at"]
    return Order(
        id=row["order_id"],
        user_id=row["order_user"],
        status=row["order_status"],
        total_cents=row["order_total"],
        created_at=created_at,
        idempotency_key=key,
        lines=tuple(
            OrderLine(p, q, price) for p, q, price in zip(row["pids"], row["qtys"], row["vals"], strict=True)
        ),
    )


def _outcome(req: PlaceRequest, row: asyncpg.Record | None) -> tuple[Order, bool] | DataAccessError:
    if row is None:
        return DataAccessError(f"orders.place: no outcome for idempotency key {req.key!r}")
    outcome = row["outcome"]
    if outcome == "placed":
        return _order(row, req.key), True
    if outcome == "existing":
        return _order(row, req.key), False
    if outcome == "conflict":
        return Conflict(
            f"idempotency key {req.key!r} was already used for a different order request",
            constraint="order_idempotency_pkey",
        )
    if outcome == "unknown_user":
        return UnknownReference("user_id", "user", [req.user_id])
    if outcome == "unknown_product":
        return UnknownReference("lines", "product", list(row["pids"]))
    if outcome == "out_of_stock":
        return OutOfStock(
            {p: (q, int(a)) for p, q, a in zip(row["pids"], row["qtys"], row["vals"], strict=True)}
        )
    return DataAccessError(f"orders.place: key {req.key!r} is claimed but has no order ({outcome})")
