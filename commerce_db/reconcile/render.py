"""The human summary of a :class:`~commerce_db.reconcile.model.ReconcileReport`."""

from __future__ import annotations

from datetime import UTC, datetime

from .model import MissingOrder, ReconcileReport

__all__ = ["render"]

_ARROW = {
    "to_apply": "would re-place",
    "applied": "re-placed",
    "conflict": "CONFLICT",
    "cancelled_on_old": "nothing to do (cancelled on the old database)",
    "not_attempted": "NOT ATTEMPTED",
}


def _t(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _order_line(m: MissingOrder) -> str:
    o = m.order
    lines = ", ".join(f"{ln.quantity}x product {ln.product_id}" for ln in o.lines)
    head = (
        f"  order {o.id}  {_t(o.created_at)}  user {o.user_id}  {o.status}  {o.total_cents} cents  "
        f"[{lines}]  key {o.idempotency_key!r}"
    )
    tail = f"    -> {_ARROW[m.outcome]}"
    if m.outcome == "applied":
        tail += f" as order {m.new_order_id} ({m.new_total_cents} cents)"
    elif m.outcome in ("conflict", "not_attempted") and m.detail:
        tail += f": {m.detail}"
    return "\n".join([head, tail, *(f"       note: {n}" for n in m.notes)])


def render(report: ReconcileReport, *, mode_hint: bool = True) -> str:
    """Multi-line text for a terminal. ``mode_hint``: end with what to do next."""
    mode = "--apply" if report.applied else "dry run"
    out = [
        f"Reconcile ({mode}): old database {report.old} -> new writer {report.new}",
        f"Divergence point: {_t(report.divergence)} ({report.divergence_source}); orders compared from "
        f"{_t(report.window_start)}",
        f"Orders on the old database in the window: {report.orders_compared}; "
        f"on both: {report.orders_on_both}; "
        f"placed again on the new writer under the same key: {len(report.replaced)}; "
        f"missing on the new writer: {len(report.missing)}",
    ]
    if report.missing:
        out += ["", "Missing on the new writer (oldest first):", *(_order_line(m) for m in report.missing)]
    if report.stock:
        out += ["", "Stock the missing orders need (new writer before this run / old database):"]
        for s in report.stock:
            sku = f" ({s.sku})" if s.sku else ""
            short = f"  SHORT BY {s.short_by}" if s.short_by else ""
            out.append(
                f"  product {s.product_id}{sku}: {s.units_needed} unit(s); stock {_n(s.stock_new)} / "
                f"{_n(s.stock_old)}{short}"
            )
    if report.replaced:
        out += ["", "Retried by the client on the new writer (same key and request; ids map old -> new):"]
        out += [
            f"  order {r.old_order_id} -> {r.new_order_id}  key {r.idempotency_key!r}"
            for r in report.replaced
        ]
    if report.conflicts:
        out += ["", f"Conflicts for a human ({len(report.conflicts)}; nothing was forced):"]
        out += [f"  - {c.kind}: {c.subject}: {c.detail}" for c in report.conflicts]
    if report.error:
        out += ["", f"STOPPED: {report.error}", "Re-run the same command: orders already re-placed are kept."]
    if mode_hint:
        out.append("")
        if report.applied:
            out.append(
                f"Re-placed {report.count('applied')} order(s); {len(report.conflicts)} conflict(s) "
                "listed above for a human. Running it again re-places nothing twice (idempotency keys)."
            )
        elif report.count("to_apply"):
            out.append(
                f"Dry run: nothing changed. --apply re-places {report.count('to_apply')} order(s) "
                "through the normal order path (same idempotency keys; re-running is a no-op)."
            )
        else:
            out.append("Dry run: nothing changed; no order to re-place.")
        if report.nothing_to_do:
            out.append("Nothing left to reconcile.")
    return "\n".join(out)


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)
