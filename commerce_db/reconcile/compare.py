"""The comparison itself: pure, no I/O (the rows come from :mod:`.source`).

An order of the old database is matched to the new writer by its idempotency key — the identity
the order path itself uses, so a client that retried on the new writer after the failover is
recognised (same key, same request, another order id) and nothing is placed twice:

* key on the new writer, same order id — on both (a status that differs is a conflict);
* key there, same request, another order — the client retried there (``replaced``);
* key there, another request — a conflict (``key_reused``);
* key unknown — **missing**: re-placed if it was not cancelled, its user and products are the
  same rows on the new writer, and the stock left there covers it (checked in ``created_at``
  order, the order they were placed in); otherwise a conflict for a human.

Users and products are matched by id, which only holds if the row is the same one: an id created on
the old writer after the divergence may belong to someone else on the new writer (sequences move on
independently), so the e-mail (users) and SKU (products) must match too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# The order path's own definition of "the same request" (one definition, not a copy of it).
from dataaccess.repositories.orders import _request_hash as request_hash

from .model import Conflict, MissingOrder, OldOrder, ReplacedOrder, StockImpact
from .source import NewKey, NewOrder, ProductRow, UserRow

__all__ = ["Comparison", "compare"]


@dataclass(frozen=True)
class Comparison:
    """What :func:`compare` found (the report without its header)."""

    orders_on_both: int
    replaced: tuple[ReplacedOrder, ...]
    missing: tuple[MissingOrder, ...]
    conflicts: tuple[Conflict, ...]
    stock: tuple[StockImpact, ...]


def compare(
    old_orders: Sequence[OldOrder],
    new_keys: Mapping[str, NewKey],
    *,
    users_old: Mapping[int, UserRow],
    users_new: Mapping[int, UserRow],
    products_old: Mapping[int, ProductRow],
    products_new: Mapping[int, ProductRow],
    changed_users: frozenset[int] = frozenset(),
    changed_products: frozenset[int] = frozenset(),
    new_user_orders: Mapping[int, Sequence[NewOrder]] | None = None,
) -> Comparison:
    """Classify every old order and check users and products changed on the old database.

    ``users_old`` / ``products_old``: rows of the old database referenced by the orders or
    changed in the window; ``users_new`` / ``products_new``: the rows with the same ids on the new
    writer (absent = no such id there); ``changed_users`` / ``changed_products``: ids created or
    updated on the old database in the window, whose rows are compared field by field;
    ``new_user_orders``: orders the new writer has of the missing orders' users since the window
    start (a customer who placed the lost order again under a *new* key is a likely duplicate).
    """
    on_both = 0
    replaced: list[ReplacedOrder] = []
    missing: list[MissingOrder] = []
    conflicts: list[Conflict] = []
    for order in sorted(old_orders, key=lambda o: (o.created_at, o.id)):
        key = new_keys.get(order.idempotency_key)
        if key is None:
            missing.append(MissingOrder(order, "conflict"))  # decided below
            continue
        subject = f"order {order.id}"
        if key.order_id == order.id or key.request_hash in _hashes(order):
            if key.order_id == order.id:
                on_both += 1
            else:  # the client retried on the new writer, or an earlier reconcile re-placed it
                replaced.append(ReplacedOrder(order.id, key.order_id, order.idempotency_key))
            if _status_lost(order.status, key.status):
                conflicts.append(
                    Conflict(
                        "status_differs",
                        subject,
                        f"status is {order.status!r} on the old database, {key.status!r} on the new writer "
                        f"(order {key.order_id}): the old writer's change is not on the new writer",
                        order.id,
                        order.idempotency_key,
                    )
                )
        else:
            conflicts.append(
                Conflict(
                    "key_reused",
                    subject,
                    f"its idempotency key holds another request on the new writer (order {key.order_id})",
                    order.id,
                    order.idempotency_key,
                )
            )

    # Orders the new writer has that could be a lost order placed again under another key: each
    # explains at most one lost order, and never one that is already matched by its key.
    matched = {k.order_id for k in new_keys.values() if k.order_id is not None}
    candidates = {
        uid: [o for o in orders if o.id not in matched] for uid, orders in (new_user_orders or {}).items()
    }

    # Reference checks, then stock in placement order against what the new writer has left.
    available = {pid: p.stock for pid, p in products_new.items()}
    needed: dict[int, int] = {}
    decided: list[MissingOrder] = []
    for m in missing:
        order = m.order
        if order.status == "cancelled":
            decided.append(
                MissingOrder(
                    order, "cancelled_on_old", "cancelled on the old database: its stock was given back"
                )
            )
            continue
        for ln in order.lines:
            needed[ln.product_id] = needed.get(ln.product_id, 0) + ln.quantity
        problem = _duplicate(order, candidates.get(order.user_id, []))
        if problem is None:
            problem = _reference_problem(order, users_old, users_new, products_old, products_new)
        if problem is None:
            short = {
                ln.product_id: available.get(ln.product_id, 0)
                for ln in order.lines
                if available.get(ln.product_id, 0) < ln.quantity
            }
            if short:
                problem = Conflict(
                    "out_of_stock",
                    f"order {order.id}",
                    "the new writer's stock no longer covers it: "
                    + ", ".join(
                        f"product {ln.product_id} needs {ln.quantity}, {short[ln.product_id]} left"
                        for ln in order.lines
                        if ln.product_id in short
                    ),
                    order.id,
                    order.idempotency_key,
                )
        if problem is not None:
            conflicts.append(problem)
            decided.append(MissingOrder(order, "conflict", problem.detail))
            continue
        for ln in order.lines:
            available[ln.product_id] -= ln.quantity
        if order.status != "placed":
            conflicts.append(
                Conflict(
                    "status_not_restored",
                    f"order {order.id}",
                    f"was {order.status!r} on the old database; the order path re-places it as 'placed': set "
                    "its status where payments/fulfilment are tracked",
                    order.id,
                    order.idempotency_key,
                )
            )
        decided.append(
            MissingOrder(
                order, "to_apply", "fits: user, products and stock check out", _notes(order, products_new)
            )
        )

    conflicts.extend(
        _changed_rows(
            {u: users_old[u] for u in changed_users if u in users_old},
            users_new,
            {p: products_old[p] for p in changed_products if p in products_old},
            products_new,
        )
    )
    stock = tuple(
        StockImpact(
            pid,
            (products_new.get(pid) or products_old.get(pid) or _NO_PRODUCT).sku or None,
            units,
            products_new[pid].stock if pid in products_new else None,
            products_old[pid].stock if pid in products_old else None,
        )
        for pid, units in sorted(needed.items())
    )
    return Comparison(on_both, tuple(replaced), tuple(decided), tuple(conflicts), stock)


_NO_PRODUCT = ProductRow(0, "", "", 0, 0)


_STATUS_RANK = {"placed": 0, "paid": 1, "shipped": 2, "cancelled": 3}


def _status_lost(old: str, new: str | None) -> bool:
    """True when the old database knew a status change the new writer lacks. An order still
    ``placed`` on the old database that moved on on the new writer (paid, shipped, cancelled
    after the promotion) lost nothing."""
    return new is not None and old != new and old != "placed"


def _duplicate(order: OldOrder, candidates: list[NewOrder]) -> Conflict | None:
    """A likely duplicate: the same user has an order on the new writer since the window start with
    exactly these lines, under another key (the customer placed it again after the failover). It
    is taken out of ``candidates``: one new order explains one lost order."""
    lines = tuple(sorted(order.request_lines()))
    for i, candidate in enumerate(candidates):
        if candidate.lines == lines:
            del candidates[i]
            return Conflict(
                "possible_duplicate",
                f"order {order.id}",
                f"user {order.user_id} has order {candidate.id} on the new writer with the same lines under "
                "another key (placed again after the failover?): not re-placed; re-place it by hand if both "
                "are wanted",
                order.id,
                order.idempotency_key,
            )
    return None


def _hashes(order: OldOrder) -> set[str]:
    """The request hashes that mean "the same request as ``order``": the one stored with its key on
    the old database, and the one ``orders.place`` computes for its user and lines today (what a
    re-placed order's key holds on the new writer, should the hashing ever have changed)."""
    out = {request_hash(order.user_id, order.request_lines())}
    if order.request_hash is not None:
        out.add(order.request_hash)
    return out


def _reference_problem(
    order: OldOrder,
    users_old: Mapping[int, UserRow],
    users_new: Mapping[int, UserRow],
    products_old: Mapping[int, ProductRow],
    products_new: Mapping[int, ProductRow],
) -> Conflict | None:
    """Why the order's user or a product on the new writer is not the one it was placed for."""
    subject = f"order {order.id}"
    user_new, user_old = users_new.get(order.user_id), users_old.get(order.user_id)
    if user_new is None:
        return Conflict(
            "unknown_user",
            subject,
            f"user {order.user_id} does not exist on the new writer (created on the old writer after the "
            "divergence?): create the user there first, then place the order by hand",
            order.id,
            order.idempotency_key,
        )
    if user_old is not None and user_old.email_lower != user_new.email_lower:
        return Conflict(
            "user_differs",
            subject,
            f"user id {order.user_id} is a different person on the new writer (e-mail differs): the id "
            "was reused after the divergence; re-placing would bill the wrong customer",
            order.id,
            order.idempotency_key,
        )
    for ln in order.lines:
        p_new, p_old = products_new.get(ln.product_id), products_old.get(ln.product_id)
        if p_new is None:
            return Conflict(
                "unknown_product",
                subject,
                f"product {ln.product_id} does not exist on the new writer",
                order.id,
                order.idempotency_key,
            )
        if p_old is not None and p_old.sku != p_new.sku:
            return Conflict(
                "product_differs",
                subject,
                f"product id {ln.product_id} is SKU {p_new.sku!r} on the new writer but {p_old.sku!r} on "
                "the old database",
                order.id,
                order.idempotency_key,
            )
    return None


def _notes(order: OldOrder, products_new: Mapping[int, ProductRow]) -> tuple[str, ...]:
    notes = []
    if order.status != "placed":
        notes.append(f"was {order.status!r} on the old database: re-placed as 'placed' (a conflict lists it)")
    repriced = [
        f"product {ln.product_id} {ln.unit_price_cents} -> {products_new[ln.product_id].price_cents}"
        for ln in order.lines
        if ln.product_id in products_new and products_new[ln.product_id].price_cents != ln.unit_price_cents
    ]
    if repriced:
        notes.append(
            "unit price differs on the new writer (the order path charges the current price): "
            + ", ".join(repriced)
        )
    return tuple(notes)


def _changed_rows(
    users_old: Mapping[int, UserRow],
    users_new: Mapping[int, UserRow],
    products_old: Mapping[int, ProductRow],
    products_new: Mapping[int, ProductRow],
) -> list[Conflict]:
    """Users and products of the old database that the new writer lacks or holds differently.
    Stock is left out: orders on either side change it (the stock section explains it)."""
    out: list[Conflict] = []
    for uid, u in sorted(users_old.items()):
        n = users_new.get(uid)
        if n is None:
            out.append(
                Conflict(
                    "user_only_on_old", f"user {uid}", "exists only on the old database (not re-created)"
                )
            )
        elif n != u:
            fields = [f for f in ("email_lower", "name") if getattr(n, f) != getattr(u, f)]
            names = ", ".join("email" if f == "email_lower" else f for f in fields)
            out.append(
                Conflict(
                    "user_differs",
                    f"user {uid}",
                    f"{names} differ(s) between the databases (changed on one side after the divergence)",
                )
            )
    for pid, p in sorted(products_old.items()):
        q = products_new.get(pid)
        if q is None:
            out.append(
                Conflict(
                    "product_only_on_old",
                    f"product {pid}",
                    f"SKU {p.sku!r} exists only on the old database (not re-created)",
                )
            )
            continue
        fields = [f for f in ("sku", "name", "price_cents") if getattr(q, f) != getattr(p, f)]
        if fields:
            shown = ", ".join(
                f"{f} {getattr(p, f)!r} (old) vs {getattr(q, f)!r} (new)" if f != "name" else "name"
                for f in fields
            )
            out.append(
                Conflict(
                    "product_differs",
                    f"product {pid}",
                    f"differs: {shown} (changed on one side after the divergence: check which is right)",
                )
            )
    return out
