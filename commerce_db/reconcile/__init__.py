"""Finding and re-applying the writes a regional failover lost (``commerce-db failover reconcile``).

After an unplanned failover, orders the old writer committed but never replicated exist only
there (RDS: on the fenced old writer and in its final snapshot; Aurora: in the
``rds:unplanned-global-failover-…`` snapshot AWS takes of the old primary's volume). This package
compares that old data with the new writer and re-places the missing orders through the data
layer's order path (see docs/operations.md, "Reconciling writes lost in a failover")::

    report = await reconcile(old_settings, new_settings, since=promotion_time)   # dry run
    print(render(report))
    report = await reconcile(old_settings, new_settings, since=promotion_time, apply=True)

Modules: :mod:`.model` (the report), :mod:`.inputs` (checking inputs, naming databases without
secrets), :mod:`.source` (read-only queries), :mod:`.compare` (the pure comparison),
:mod:`.apply` (re-placing through ``orders.place``), :mod:`.run` (one run), :mod:`.render`.
"""

from __future__ import annotations

from .inputs import DEFAULT_LOOKBACK, parse_since
from .model import Conflict, MissingOrder, OldOrder, ReconcileError, ReconcileReport, StockImpact
from .render import render
from .run import DEFAULT_MAX_ORDERS, reconcile

__all__ = [
    "DEFAULT_LOOKBACK",
    "DEFAULT_MAX_ORDERS",
    "Conflict",
    "MissingOrder",
    "OldOrder",
    "ReconcileError",
    "ReconcileReport",
    "StockImpact",
    "parse_since",
    "reconcile",
    "render",
]
