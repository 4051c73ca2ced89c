"""Re-placing missing orders on the new writer through the data layer's own order path.

Each order goes through :meth:`dataaccess.repositories.Orders.place` with its original
idempotency key, exactly as a client retry would: the key claim makes it exactly-once (a second
run, or a client retrying the same key meanwhile, gets the existing order back), the stock is
reserved all-or-nothing by ``commerce_place_orders`` (never oversold: an order that no longer
fits comes back as ``OutOfStock`` and is left to a human), and the cache, read-your-writes
markers and the Redis stock gate see it like any other order. No SQL of its own.

What the path cannot carry over: the order gets a new id and ``created_at`` (now), the current
unit prices, and status ``placed``; the report maps old to new ids and notes the differences.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace

from dataaccess import DataAccess
from dataaccess.errors import Conflict as KeyConflict
from dataaccess.errors import DataAccessError, InvalidInput, OutOfStock, UnknownReference

from .model import Conflict, MissingOrder

__all__ = ["ApplyResult", "apply_missing"]

log = logging.getLogger(__name__)


class ApplyResult:
    """The missing orders after :func:`apply_missing`, the conflicts it met, and the error that
    stopped it (None when every order was tried)."""

    def __init__(self, missing: list[MissingOrder], conflicts: list[Conflict], error: str | None) -> None:
        self.missing = missing
        self.conflicts = conflicts
        self.error = error


async def apply_missing(
    da: DataAccess, missing: Sequence[MissingOrder], *, stop: asyncio.Event | None = None
) -> ApplyResult:
    """Re-place every ``to_apply`` order, oldest first; others are returned unchanged.

    An order the path refuses (out of stock, unknown user/product, key reused, invalid) becomes a
    ``conflict``. Any other failure (the writer unreachable after the data layer's retries) stops
    the run: that order's outcome is unknown to us but not to the key, so re-running is safe;
    the orders after it are ``not_attempted``. ``stop`` (set by a signal handler) ends the run
    the same way between two orders.
    """
    out: list[MissingOrder] = []
    conflicts: list[Conflict] = []
    error: str | None = None
    for m in missing:
        if m.outcome != "to_apply":
            out.append(m)
            continue
        if error is None and stop is not None and stop.is_set():
            error = "interrupted (SIGINT/SIGTERM) before this order"
        if error is not None:
            out.append(replace(m, outcome="not_attempted", detail="not tried: the run stopped before it"))
            continue
        order = m.order
        subject = f"order {order.id}"
        try:
            placed = await da.orders.place(
                order.user_id, order.request_lines(), idempotency_key=order.idempotency_key
            )
        except OutOfStock as exc:
            detail = "the new writer's stock no longer covers it: " + ", ".join(
                f"product {pid} needs {want}, {have} left" for pid, (want, have) in exc.shortages.items()
            )
            conflicts.append(Conflict("out_of_stock", subject, detail, order.id, order.idempotency_key))
            out.append(replace(m, outcome="conflict", detail=detail))
        except (UnknownReference, KeyConflict, InvalidInput) as exc:
            kind = {UnknownReference: "unknown_reference", KeyConflict: "key_reused"}.get(
                type(exc), "rejected"
            )
            detail = f"the order path refused it: {exc}"
            conflicts.append(Conflict(kind, subject, detail, order.id, order.idempotency_key))
            out.append(replace(m, outcome="conflict", detail=detail))
        except DataAccessError as exc:
            # The data layer's messages carry no DSN or password (dataaccess.errors).
            error = f"re-placing order {order.id} failed: {type(exc).__name__}: {exc}"
            log.warning("reconcile: %s", error)
            out.append(
                replace(
                    m,
                    outcome="not_attempted",
                    detail="outcome unknown (the key makes a re-run safe): " + str(exc),
                )
            )
        else:
            out.append(
                replace(
                    m,
                    outcome="applied",
                    detail=f"re-placed as order {placed.id}",
                    new_order_id=placed.id,
                    new_total_cents=placed.total_cents,
                )
            )
    return ApplyResult(out, conflicts, error)
