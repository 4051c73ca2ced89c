"""What ``failover reconcile`` found and did: frozen, JSON-ready records (no logic beyond counting).

Nothing here holds a DSN, a password or personal data: databases are named by ``host:port/db``,
users by id (a differing e-mail is reported as "differs", never shown).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

__all__ = [
    "Conflict",
    "MissingOrder",
    "OldOrder",
    "OldOrderLine",
    "Outcome",
    "ReconcileError",
    "ReconcileReport",
    "ReplacedOrder",
    "StockImpact",
]


class ReconcileError(Exception):
    """Bad input or an unusable database: the message names what was wrong (never a password).
    Raised before anything is written."""


Outcome = Literal["to_apply", "applied", "conflict", "cancelled_on_old", "not_attempted"]
"""What happens to an order missing on the new writer:

* ``to_apply`` — dry run: it fits (user, products and stock check out); ``--apply`` re-places it;
* ``applied`` — re-placed through ``orders.place`` with its idempotency key (``new_order_id``);
* ``conflict`` — not re-placed: a human decides (see the report's conflicts for why);
* ``cancelled_on_old`` — it was cancelled on the old writer too (stock given back): nothing to do;
* ``not_attempted`` — ``--apply`` stopped before it (the new writer failed); re-run to continue.
"""


@dataclass(frozen=True, slots=True)
class OldOrderLine:
    """One line of an order on the old database (price as charged there)."""

    product_id: int
    quantity: int
    unit_price_cents: int


@dataclass(frozen=True, slots=True)
class OldOrder:
    """An order read from the old database (the old writer or its restored snapshot)."""

    id: int
    created_at: datetime
    user_id: int
    status: str
    total_cents: int
    idempotency_key: str
    request_hash: str | None
    """``order_idempotency.request_hash`` on the old database (None if the key row is gone)."""
    lines: tuple[OldOrderLine, ...]

    def request_lines(self) -> list[tuple[int, int]]:
        """``[(product_id, quantity), ...]`` as ``orders.place`` takes them."""
        return [(ln.product_id, ln.quantity) for ln in self.lines]


@dataclass(frozen=True, slots=True)
class ReplacedOrder:
    """An old order whose idempotency key holds a *different* order on the new writer for the
    same request: the client retried after the failover. Nothing to apply; the ids map."""

    old_order_id: int
    new_order_id: int | None
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class Conflict:
    """Something a human must decide; reconcile never forces it.

    ``kind``: ``out_of_stock``, ``unknown_user``, ``user_differs``, ``unknown_product``,
    ``product_differs``, ``key_reused``, ``status_differs`` (the old database has a status change
    the new writer lacks), ``status_not_restored`` (a paid/shipped order re-placed as placed),
    ``possible_duplicate`` (the customer placed the same lines again under another key; not
    re-placed), ``user_only_on_old``, ``product_only_on_old``, ``unknown_reference`` / ``key_reused``
    / ``rejected`` (the order path refused it at ``--apply``).
    """

    kind: str
    subject: str
    """``order 123``, ``product 5``, ``user 7``."""
    detail: str
    order_id: int | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class MissingOrder:
    """An order on the old database whose idempotency key is unknown to the new writer."""

    order: OldOrder
    outcome: Outcome
    detail: str = ""
    notes: tuple[str, ...] = ()
    """For a human even when the order is re-placed: e.g. it was ``paid`` on the old writer (the
    order path re-places it as ``placed``), or a unit price changed since."""
    new_order_id: int | None = None
    new_total_cents: int | None = None


@dataclass(frozen=True, slots=True)
class StockImpact:
    """Stock of one product that orders missing on the new writer need."""

    product_id: int
    sku: str | None
    units_needed: int
    """Units in the missing (not cancelled) orders."""
    stock_new: int | None
    """On the new writer before this run placed anything (None: no such product there)."""
    stock_old: int | None

    @property
    def short_by(self) -> int:
        """Units the new writer lacks to re-place every missing order of this product."""
        return max(0, self.units_needed - (self.stock_new or 0))


@dataclass(frozen=True)
class ReconcileReport:
    """The result of one run (dry run or ``--apply``)."""

    old: str
    """The old database, as ``host:port/db``."""
    new: str
    """The new writer, as ``host:port/db``."""
    applied: bool
    """True for an ``--apply`` run."""
    divergence: datetime
    """The promotion time given, or the newest order present on both databases."""
    divergence_source: str
    window_start: datetime
    """Orders created on the old database since this instant were compared."""
    orders_compared: int
    orders_on_both: int
    replaced: tuple[ReplacedOrder, ...] = ()
    missing: tuple[MissingOrder, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    stock: tuple[StockImpact, ...] = ()
    error: str | None = None
    """Set when ``--apply`` stopped part-way (the orders after it are ``not_attempted``)."""
    notes: tuple[str, ...] = field(default=())

    def count(self, outcome: Outcome) -> int:
        """How many missing orders have ``outcome``."""
        return sum(1 for m in self.missing if m.outcome == outcome)

    @property
    def nothing_to_do(self) -> bool:
        """No order left to re-place and nothing for a human."""
        return not self.conflicts and not any(
            m.outcome in ("to_apply", "not_attempted") for m in self.missing
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601 strings)."""
        out = asdict(self)
        out["stock"] = [{**asdict(s), "short_by": s.short_by} for s in self.stock]
        out["summary"] = {
            "missing": len(self.missing),
            **{
                o: self.count(o)
                for o in ("to_apply", "applied", "conflict", "cancelled_on_old", "not_attempted")
            },
            "conflicts": len(self.conflicts),
            "replaced_on_new": len(self.replaced),
            "nothing_to_do": self.nothing_to_do,
        }
        return _iso(out)


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _iso(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_iso(v) for v in value]
    return value
