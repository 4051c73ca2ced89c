"""Stock reservation that never oversells, plus an optional Redis gate in front of it.

Database (the record): inside the order's transaction, one conditional update per line,

    UPDATE products SET stock = stock - $qty WHERE id = $id AND stock >= $qty

in ascending product id order. Under READ COMMITTED a concurrent buyer blocks on the row lock and
re-evaluates ``stock >= $qty`` against the committed value, so stock can never go below zero (the
``CHECK (stock >= 0)`` is a second guard). Taking row locks in id order makes multi-line orders
deadlock-free; any failing line raises and the transaction rolls back, so reservation is
all-or-nothing.

Redis gate (``Settings.inventory_redis_gate``): a Lua script checks and decrements per-product
counters for all lines atomically, so a sold-out flash sale is refused without queueing on the hot
row. It is only a gate: the DB update above still decides, a DB failure gives the units back, a
missing counter or an unreachable Redis lets the request through to the DB, and
:meth:`RedisStockGate.reconcile` rebuilds counters from the DB.

Convergence (the gate's contract): every counter is seeded from the database's committed stock
with a TTL (``ttl``, ``Settings.stock_gate_ttl``, 5 s); decrements and give-backs never extend it
and a give-back never creates a counter. When it expires the next request passes to the database
and the counter is re-seeded in the background. So whatever made a counter drift low — a process
killed between taking units and giving them back, a connection cut mid-COMMIT of a cancel, a
restock whose acknowledgement was lost — refuses buyers for at most ``ttl`` after the counter's
last seeding. Drift high only lets requests reach the database, which decides.

Idempotency: taking units also records the order's idempotency key (hashed, ``KEY_MARK_TTL``).
A request whose key is recorded is a duplicate of an attempt in flight or done: it takes nothing
and goes to the DB, where the key claim waits for that attempt and returns its order. So a
duplicate is never refused as sold out by units its own first attempt holds, and never holds units
that other buyers need.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from ._breaker import CircuitBreaker
from .cache import REDIS_ERRORS
from .errors import OutOfStock, UnknownReference

__all__ = ["RedisStockGate", "StockSource", "reserve_stock"]

log = logging.getLogger(__name__)


async def reserve_stock(conn: asyncpg.Connection, lines: list[tuple[int, int]]) -> dict[int, int]:
    """Decrement stock for every ``(product_id, quantity)`` line inside the caller's transaction.

    Returns ``{product_id: unit price}`` (the price at reservation time).

    :raises UnknownReference: some product ids do not exist.
    :raises OutOfStock: some lines cannot be served; names every short product.
    """
    ordered = sorted(lines)
    prices: dict[int, int] = {}
    for i, (pid, qty) in enumerate(ordered):
        row = await conn.fetchrow(
            "UPDATE products SET stock = stock - $2, version = version + 1, updated_at = now() "
            "WHERE id = $1 AND stock >= $2 RETURNING price_cents",
            pid,
            qty,
        )
        if row is None:
            await _explain_failure(conn, ordered[i:])
        else:
            prices[pid] = row["price_cents"]
    return prices


async def _explain_failure(conn: asyncpg.Connection, remaining: list[tuple[int, int]]) -> None:
    """Raise the precise error for the first failing line and every later one."""
    rows = await conn.fetch(
        "SELECT id, stock FROM products WHERE id = ANY($1::bigint[])", [pid for pid, _ in remaining]
    )
    stock = {r["id"]: r["stock"] for r in rows}
    missing = [pid for pid, _ in remaining if pid not in stock]
    if missing:
        raise UnknownReference("lines", "product", missing)
    raise OutOfStock({pid: (qty, stock[pid]) for pid, qty in remaining if stock[pid] < qty})


KEY_MARK_TTL_MS = 3_600_000
"""How long the gate remembers an idempotency key that took units (1 h). Older resends are
recognised by the DB lookup after a refusal instead."""

# KEYS = counter keys, then the idempotency-key marker; ARGV = quantities, then the marker TTL (ms).
# Returns 2 when the marker exists (a duplicate: take nothing, let the DB decide), 0 when some
# counter is missing (unknown: let the DB decide), -(i) for the first short line, or 1 after
# decrementing every counter and setting the marker (all-or-nothing).
_GATE_LUA = """
local n = #KEYS - 1
if redis.call('EXISTS', KEYS[n + 1]) == 1 then return 2 end
for i = 1, n do
  local v = redis.call('GET', KEYS[i])
  if not v then return 0 end
  if tonumber(v) < tonumber(ARGV[i]) then return -i end
end
for i = 1, n do redis.call('DECRBY', KEYS[i], ARGV[i]) end
redis.call('SET', KEYS[n + 1], '1', 'PX', ARGV[n + 1])
return 1
"""

# KEYS = counter keys, then optionally the idempotency-key marker to forget; ARGV = quantities.
# Only counters that exist get units back (INCRBY keeps their TTL): an expired counter is re-seeded
# from the database, and an INCRBY on a missing key would create a counter that never expires.
_GIVE_BACK_LUA = """
for i = 1, #ARGV do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('INCRBY', KEYS[i], ARGV[i]) end
end
if #KEYS > #ARGV then redis.call('DEL', KEYS[#KEYS]) end
return 1
"""


StockSource = Callable[[list[int]], Awaitable[dict[int, int]]]
"""``async def source(product_ids) -> {product_id: committed stock}`` (read on the writer)."""


class RedisStockGate:
    """Per-product available-unit counters in Redis (``{ns}:stock:{product_id}``).

    :param redis: client for the Redis primary. :param namespace: key prefix.
    :param breaker: circuit breaker shared with the cache (optional).
    :param ttl: seconds a counter lives after it was seeded (see module doc). Default: ``5.0``.
    :param stock_source: reads committed stock to re-seed a missing counter in the background;
        None: counters are only set by :meth:`set_available` / :meth:`reconcile`. Default: None.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        namespace: str,
        breaker: CircuitBreaker | None = None,
        ttl: float = 5.0,
        stock_source: StockSource | None = None,
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"ttl must be > 0 seconds, got {ttl}")
        self._redis = redis
        self._prefix = f"{namespace}:stock:"
        self._mark_prefix = f"{namespace}:gate_key:"
        self._breaker = breaker or CircuitBreaker()
        self.ttl = ttl
        self._ttl_ms = max(1, int(ttl * 1000))
        self._source = stock_source
        self._seeding: set[int] = set()
        self._background: set[asyncio.Future[Any]] = set()
        self._script = redis.register_script(_GATE_LUA)
        self._give_back_script = redis.register_script(_GIVE_BACK_LUA)
        self.reseeded = 0
        """Counters re-seeded from the database after they expired or went missing."""
        self.rejected = 0
        """Requests refused by the gate without touching the database."""
        self.passthrough = 0
        """Requests let through unchecked (counter missing or Redis unavailable)."""
        self.duplicates = 0
        """Requests sent to the DB without taking units: their idempotency key already took some."""

    def key(self, product_id: int) -> str:
        return f"{self._prefix}{product_id}"

    def key_mark(self, idempotency_key: str) -> str:
        """Redis key recording that ``idempotency_key`` took units (hashed: bounded, opaque)."""
        return self._mark_prefix + hashlib.sha256(idempotency_key.encode()).hexdigest()

    async def try_take(
        self, lines: list[tuple[int, int]], *, idempotency_key: str = ""
    ) -> tuple[bool, list[tuple[int, int]]]:
        """Try to take the units for the order with ``idempotency_key``. Returns ``(allowed,
        taken)``; ``taken`` must be given back with :meth:`give_back` (``forget_key=True``) if the
        DB reservation does not commit. A key that already took units takes nothing (``taken`` is
        empty): the DB decides. Default key ``""``: one shared marker, only for direct callers.

        :raises OutOfStock: the gate knows some line cannot be served (nothing taken).
        """
        ordered = sorted(lines)
        if not self._breaker.allow():
            self.passthrough += 1
            return True, []
        call: asyncio.Future[Any] = asyncio.ensure_future(  # noqa: RUF006 (kept in _background)
            self._script(
                keys=[*(self.key(p) for p, _ in ordered), self.key_mark(idempotency_key)],
                args=[*(q for _, q in ordered), KEY_MARK_TTL_MS],
            )
        )
        self._background.add(call)  # strong reference: it may outlive a cancelled caller
        call.add_done_callback(self._background.discard)
        try:
            # Shielded: a caller cancelled while the reply is in flight must not keep the units
            # the script may have taken; the callback gives them back (and forgets the key).
            res = int(await asyncio.shield(call))
        except asyncio.CancelledError:
            call.add_done_callback(functools.partial(self._undo_if_taken, ordered, idempotency_key))
            raise
        except REDIS_ERRORS as exc:
            self._breaker.record_failure()
            self.passthrough += 1
            log.info("stock gate unavailable (%s): letting the DB decide", type(exc).__name__)
            return True, []
        self._breaker.record_success()
        if res == 1:
            return True, ordered
        if res == 2:
            self.duplicates += 1
            return True, []
        if res == 0:
            self.passthrough += 1
            self._reseed([p for p, _ in ordered])
            return True, []
        pid, qty = ordered[-res - 1]
        self.rejected += 1
        avail = await self._peek(pid)
        raise OutOfStock({pid: (qty, max(avail, 0))})

    async def _peek(self, pid: int) -> int:
        try:
            raw = await self._redis.get(self.key(pid))
        except REDIS_ERRORS:
            return 0
        return int(raw or 0)

    async def give_back(self, taken: list[tuple[int, int]], *, forget_key: str | None = None) -> None:
        """Return units taken by :meth:`try_take`. Never raises.

        :param forget_key: the idempotency key whose attempt took them and did not commit: its
            marker is dropped so a retry is gated again. None (default) keeps the marker (a
            duplicate giving back units its key's committed order already holds).
        """
        if not taken:
            return
        keys = [self.key(pid) for pid, _ in taken]
        if forget_key is not None:
            keys.append(self.key_mark(forget_key))
        try:
            await self._give_back_script(keys=keys, args=[qty for _, qty in taken])
        except REDIS_ERRORS as exc:
            log.warning(
                "stock gate: could not give back %s (%s); the counters re-seed within %.1fs",
                taken,
                type(exc).__name__,
                self.ttl,
            )

    def _undo_if_taken(self, ordered: list[tuple[int, int]], key: str, call: asyncio.Future[Any]) -> None:
        if call.cancelled() or call.exception() is not None:
            return
        if int(call.result()) == 1:
            self._spawn(self.give_back(ordered, forget_key=key))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)  # strong reference until done
        task.add_done_callback(self._background.discard)

    def _reseed(self, product_ids: list[int]) -> None:
        """Re-seed missing counters from committed stock, in the background, once per product."""
        todo = [p for p in product_ids if p not in self._seeding]
        if self._source is None or not todo:
            return
        self._seeding.update(todo)
        self._spawn(self._reseed_now(todo))

    async def _reseed_now(self, product_ids: list[int]) -> None:
        try:
            stock = await self._source(product_ids) if self._source is not None else {}
            for pid, units in stock.items():
                # NX: a counter seeded meanwhile (restock, another process) is newer than our read.
                if await self._redis.set(self.key(pid), max(units, 0), px=self._ttl_ms, nx=True):
                    self.reseeded += 1
        except Exception as exc:  # background: never raise; the next miss tries again
            log.info("stock gate: re-seeding %s failed (%s)", product_ids, type(exc).__name__)
        finally:
            self._seeding.difference_update(product_ids)

    async def drain(self) -> None:
        """Wait for background give-backs and re-seeding (bounded by their own timeouts)."""
        if self._background:
            await asyncio.wait(set(self._background))

    async def aclose(self) -> None:
        """Called by ``DataAccess.close()``: :meth:`drain`."""
        await self.drain()

    async def set_available(self, product_id: int, units: int) -> None:
        """Seed a counter from committed stock (after create/restock/reconcile), for ``ttl``
        seconds. Never raises."""
        try:
            await self._redis.set(self.key(product_id), max(units, 0), px=self._ttl_ms)
        except REDIS_ERRORS as exc:
            log.info("stock gate: counter for %s not set (%s)", product_id, type(exc).__name__)

    async def reconcile(self, conn: asyncpg.Connection, product_ids: list[int] | None = None) -> int:
        """Rebuild counters from the database's committed stock. Returns how many were set.

        Safe against in-flight orders only approximately (a reservation between the SELECT and the
        SET is lost from the gate until the next reconcile); the DB remains authoritative.
        """
        if product_ids is None:
            rows = await conn.fetch("SELECT id, stock FROM products")
        else:
            rows = await conn.fetch(
                "SELECT id, stock FROM products WHERE id = ANY($1::bigint[])", product_ids
            )
        for r in rows:
            await self.set_available(r["id"], r["stock"])
        return len(rows)
