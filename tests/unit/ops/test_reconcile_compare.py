"""``commerce_db.reconcile``'s pure parts: how an old order is classified against the new writer,
and how inputs and secrets are checked. The databases' side is in
tests/integration/test_failover_reconcile.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from commerce_db.reconcile import ReconcileError, parse_since
from commerce_db.reconcile.compare import compare
from commerce_db.reconcile.inputs import check_lookback, describe, scrub
from commerce_db.reconcile.model import OldOrder, OldOrderLine
from commerce_db.reconcile.source import NewKey, ProductRow, UserRow
from dataaccess import Settings

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def order(
    oid: int, key: str, lines: list[tuple[int, int]], *, user: int = 1, status: str = "placed"
) -> OldOrder:
    return OldOrder(
        id=oid,
        created_at=T0 + timedelta(seconds=oid),
        user_id=user,
        status=status,
        total_cents=100 * sum(q for _, q in lines),
        idempotency_key=key,
        request_hash=f"h-{key}",
        lines=tuple(OldOrderLine(p, q, 100) for p, q in lines),
    )


USERS = {1: UserRow(1, "a@example.com", "A"), 2: UserRow(2, "b@example.com", "B")}
PRODUCTS = {10: ProductRow(10, "SKU-10", "Ten", 100, 5), 11: ProductRow(11, "SKU-11", "Eleven", 100, 5)}


def run(orders: list[OldOrder], keys: dict[str, NewKey] | None = None, **kw: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = {
        "users_old": USERS,
        "users_new": USERS,
        "products_old": PRODUCTS,
        "products_new": PRODUCTS,
    }
    args.update(kw)
    return compare(orders, keys or {}, **args)  # type: ignore[arg-type]


def test_keys_decide_on_both_retried_reused_and_missing() -> None:
    orders = [
        order(1, "same", [(10, 1)]),
        order(2, "retried", [(10, 1)]),
        order(3, "reused", [(10, 1)]),
        order(4, "lost", [(10, 1)]),
        order(5, "status", [(10, 1)], status="cancelled"),
    ]
    keys = {
        "same": NewKey(1, "h-same", "placed"),
        "retried": NewKey(99, "h-retried", "placed"),
        "reused": NewKey(98, "h-other-request", "placed"),
        "status": NewKey(5, "h-status", "placed"),
    }
    found = run(orders, keys)
    assert found.orders_on_both == 2
    assert [(r.old_order_id, r.new_order_id) for r in found.replaced] == [(2, 99)]
    assert [(m.order.id, m.outcome) for m in found.missing] == [(4, "to_apply")]
    assert sorted((c.kind, c.order_id) for c in found.conflicts) == [("key_reused", 3), ("status_differs", 5)]


def test_only_a_status_change_the_new_writer_lacks_is_a_conflict() -> None:
    orders = [
        order(1, "moved-on", [(10, 1)]),  # placed on old, paid on new after the promotion: nothing lost
        order(2, "paid-lost", [(10, 1)], status="paid"),  # paid on old only: lost
        order(3, "retried-shipped", [(10, 1)], status="shipped"),  # retried on new, still placed there
    ]
    keys = {
        "moved-on": NewKey(1, "h-moved-on", "paid"),
        "paid-lost": NewKey(2, "h-paid-lost", "placed"),
        "retried-shipped": NewKey(33, "h-retried-shipped", "placed"),
    }
    found = run(orders, keys)
    assert sorted((c.kind, c.order_id) for c in found.conflicts) == [
        ("status_differs", 2),
        ("status_differs", 3),
    ]


def test_the_same_lines_placed_again_under_a_new_key_are_a_likely_duplicate() -> None:
    from commerce_db.reconcile.source import NewOrder

    orders = [order(1, "a", [(11, 2), (10, 1)]), order(2, "b", [(10, 1), (11, 2)]), order(3, "c", [(10, 1)])]
    again = {1: [NewOrder(50, 1, ((10, 1), (11, 2))), NewOrder(51, 1, ((10, 9),))]}
    found = run(orders, new_user_orders=again)
    # One new order explains one lost order: the second identical one is re-placed.
    assert [(m.order.id, m.outcome) for m in found.missing] == [
        (1, "conflict"),
        (2, "to_apply"),
        (3, "to_apply"),
    ]
    assert [(c.kind, c.order_id) for c in found.conflicts] == [("possible_duplicate", 1)]
    assert "order 50" in found.conflicts[0].detail
    # An order matched to an old one by its key is never taken for a duplicate.
    found = run(orders[:1], {"x": NewKey(50, "h-x", "placed")}, new_user_orders=again)
    assert found.missing[0].outcome == "to_apply"


def test_a_retry_is_recognised_by_the_order_paths_own_request_hash() -> None:
    from dataaccess.repositories.orders import _request_hash

    old = order(1, "k", [(11, 2), (10, 1)])
    old = replace(old, request_hash=None)  # only the hash the order path computes
    found = run([old], {"k": NewKey(7, _request_hash(1, [(10, 1), (11, 2)]), "placed")})
    assert [r.new_order_id for r in found.replaced] == [7] and not found.conflicts


def test_stock_is_allocated_in_placement_order_and_a_short_order_is_a_conflict() -> None:
    orders = [order(1, "a", [(10, 3)]), order(2, "b", [(10, 3), (11, 1)]), order(3, "c", [(10, 2)])]
    found = run(orders)
    assert [m.outcome for m in found.missing] == ["to_apply", "conflict", "to_apply"]
    assert found.missing[1].detail.endswith("product 10 needs 3, 2 left")
    impact = {s.product_id: (s.units_needed, s.stock_new, s.short_by) for s in found.stock}
    assert impact == {10: (8, 5, 3), 11: (1, 5, 0)}


def test_a_reused_user_id_or_product_id_is_never_reapplied() -> None:
    other = {1: UserRow(1, "someone-else@example.com", "A"), 2: USERS[2]}
    found = run([order(1, "a", [(10, 1)])], users_new=other)
    assert found.missing[0].outcome == "conflict" and found.conflicts[0].kind == "user_differs"
    assert "someone-else" not in found.conflicts[0].detail  # no personal data in reports
    found = run([order(1, "a", [(10, 1)], user=7)])
    assert found.conflicts[0].kind == "unknown_user"
    renamed = {**PRODUCTS, 10: ProductRow(10, "SKU-OTHER", "Ten", 100, 5)}
    found = run([order(1, "a", [(10, 1)])], products_new=renamed)
    assert found.conflicts[0].kind == "product_differs"
    found = run([order(1, "a", [(12, 1)])])
    assert found.conflicts[0].kind == "unknown_product"


def test_cancelled_orders_need_nothing_and_paid_or_repriced_ones_carry_notes() -> None:
    repriced = {**PRODUCTS, 10: ProductRow(10, "SKU-10", "Ten", 150, 5)}
    found = run(
        [order(1, "a", [(10, 1)], status="cancelled"), order(2, "b", [(10, 1)], status="paid")],
        products_new=repriced,
    )
    assert [m.outcome for m in found.missing] == ["cancelled_on_old", "to_apply"]
    notes = " ".join(found.missing[1].notes)
    assert "'paid'" in notes and "product 10 100 -> 150" in notes
    # Re-placed as 'placed', so a human must restore 'paid': a conflict (exit 3), not only a note.
    assert [(c.kind, c.order_id) for c in found.conflicts] == [("status_not_restored", 2)]
    assert {s.product_id: s.units_needed for s in found.stock} == {10: 1}


def test_rows_changed_on_the_old_database_are_compared() -> None:
    old_users = {**USERS, 3: UserRow(3, "new@example.com", "New")}
    old_products = {**PRODUCTS, 11: ProductRow(11, "SKU-11", "Eleven", 120, 0)}
    found = run(
        [],
        users_old=old_users,
        products_old=old_products,
        changed_users=frozenset({1, 3}),
        changed_products=frozenset({10, 11}),
    )
    kinds = sorted((c.kind, c.subject) for c in found.conflicts)
    # Product 10 differs only in stock (orders on both sides change it): not a conflict.
    assert kinds == [("product_differs", "product 11"), ("user_only_on_old", "user 3")]
    product = next(c for c in found.conflicts if c.kind == "product_differs")
    assert "price_cents 120 (old) vs 100 (new)" in product.detail


def test_since_must_parse_and_carry_a_timezone() -> None:
    assert parse_since("2026-12-06T07:05:00Z") == datetime(2026, 12, 6, 7, 5, tzinfo=UTC)
    assert parse_since("2026-12-06 08:05:00+01:00") == datetime(2026, 12, 6, 7, 5, tzinfo=UTC)
    with pytest.raises(ReconcileError, match="not an ISO 8601 time"):
        parse_since("last tuesday")
    with pytest.raises(ReconcileError, match="no timezone"):
        parse_since("2026-12-06T07:05:00")
    with pytest.raises(ReconcileError, match="--lookback"):
        check_lookback(timedelta(days=2))


def test_messages_never_carry_a_password() -> None:
    s = Settings(writer_dsn="postgresql://app:pa%24%24word@127.0.0.1:5432/shop", password="other-secret")
    assert describe(s) == "127.0.0.1:5432/shop"
    text = scrub("failed for postgresql://app:pa%24%24word@127.0.0.1:5432/shop: pa$$word / other-secret", s)
    assert "pa$$word" not in text and "pa%24%24word" not in text and "other-secret" not in text
    assert "127.0.0.1:5432/shop" in text
