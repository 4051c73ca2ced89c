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
"""

from __future__ import annotations

import logging

import asyncpg
import redis.asyncio as aioredis

from ._breaker import CircuitBreaker
from .cache import REDIS_ERRORS
from .errors import OutOfStock, UnknownReference

__all__ = ["RedisStockGate", "reserve_stock"]

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


# KEYS = counter keys; ARGV = quantities. All-or-nothing: returns 1 and decrements every counter, or
# returns -(i) for the first short line, or 0 when some counter is missing (unknown: let the DB decide).
_GATE_LUA = """
for i, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  if not v then return 0 end
  if tonumber(v) < tonumber(ARGV[i]) then return -i end
end
for i, k in ipairs(KEYS) do redis.call('DECRBY', k, ARGV[i]) end
return 1
"""


class RedisStockGate:
    """Per-product available-unit counters in Redis (``{ns}:stock:{product_id}``).

    :param redis: client for the Redis primary. :param namespace: key prefix.
    :param breaker: circuit breaker shared with the cache (optional).
    """

    def __init__(
        self, redis: aioredis.Redis, *, namespace: str, breaker: CircuitBreaker | None = None
    ) -> None:
        self._redis = redis
        self._prefix = f"{namespace}:stock:"
        self._breaker = breaker or CircuitBreaker()
        self._script = redis.register_script(_GATE_LUA)
        self.rejected = 0
        """Requests refused by the gate without touching the database."""
        self.passthrough = 0
        """Requests let through unchecked (counter missing or Redis unavailable)."""

    def key(self, product_id: int) -> str:
        return f"{self._prefix}{product_id}"

    async def try_take(self, lines: list[tuple[int, int]]) -> tuple[bool, list[tuple[int, int]]]:
        """Try to take the units. Returns ``(allowed, taken)``; ``taken`` must be given back with
        :meth:`give_back` if the DB reservation does not commit.

        :raises OutOfStock: the gate knows some line cannot be served (nothing taken).
        """
        ordered = sorted(lines)
        if not self._breaker.allow():
            self.passthrough += 1
            return True, []
        try:
            res = int(
                await self._script(keys=[self.key(p) for p, _ in ordered], args=[q for _, q in ordered])
            )
        except REDIS_ERRORS as exc:
            self._breaker.record_failure()
            self.passthrough += 1
            log.info("stock gate unavailable (%s): letting the DB decide", type(exc).__name__)
            return True, []
        self._breaker.record_success()
        if res == 1:
            return True, ordered
        if res == 0:
            self.passthrough += 1
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

    async def give_back(self, taken: list[tuple[int, int]]) -> None:
        """Return units taken by :meth:`try_take` (the DB reservation failed). Never raises."""
        if not taken:
            return
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for pid, qty in taken:
                    pipe.incrby(self.key(pid), qty)
                await pipe.execute()
        except REDIS_ERRORS as exc:
            log.warning(
                "stock gate: could not give back %s (%s); reconcile will fix it", taken, type(exc).__name__
            )

    async def set_available(self, product_id: int, units: int) -> None:
        """Set a counter (after create/restock/reconcile). Never raises."""
        try:
            await self._redis.set(self.key(product_id), max(units, 0))
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
