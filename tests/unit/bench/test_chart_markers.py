"""Event markers on the demo's latency chart: close events share one short label."""

from commerce_db.bench.report import _merge_close_markers


def test_close_sell_outs_and_a_price_drop_share_one_label() -> None:
    markers = [(5.2, "SKU 3 sold out"), (5.0, "SKU 1 sold out"), (5.1, "SKU 2 sold out"), (5.3, "price drop")]
    assert _merge_close_markers(markers) == [(5.0, "3 SKUs sold out, price drop")]


def test_markers_far_apart_keep_their_own_labels() -> None:
    markers = [(2.0, "SKU 1 sold out"), (9.0, "price drop")]
    assert _merge_close_markers(markers) == [(2.0, "SKU 1 sold out"), (9.0, "price drop")]
