"""Output helpers: plain-text tables, JSON files and the latency-over-time PNG (matplotlib optional)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned text table; floats shown with 2-3 significant decimals."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:,}"
        return str(v)

    text_rows = [[cell(v) for v in r] for r in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in text_rows)) if text_rows else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in text_rows]
    return "\n".join([line, sep, *body])


def write_json(path: str | Path, data: Mapping[str, Any]) -> Path:
    """Write data as indented JSON, creating parent directories. Returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    return p


SERIES_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000")
"""Okabe-Ito colours: distinguishable with the common colour-vision deficiencies."""
SERIES_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
SERIES_DASHES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (3, 1)), (0, (1, 1)))


def write_latency_chart(
    path: str | Path,
    series: Mapping[str, Sequence[Mapping[str, float]]],
    *,
    title: str,
    markers: Sequence[tuple[float, str]] = (),
) -> str | None:
    """PNG of p50/p99 latency per series over time (one line pair per series; keep it to a handful:
    each gets its own colour, marker and dash, up to seven).

    series: label -> [{"t": s, "p50_ms": .., "p99_ms": ..}, ...] in legend order; markers: (t, label)
    vertical lines.
    Returns None on success, or a note why no chart was written (matplotlib is the optional
    ``charts`` extra).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no PNG chart: matplotlib is not installed (pip install 'commerce-db[charts]')"
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax50, ax99) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    drawn = [(op, points) for op, points in series.items() if points]  # caller's order = legend order
    for i, (op, points) in enumerate(drawn):
        # Colour, marker and dash all differ per series (colour-blind-safe palette, readable in grey).
        style = {
            "color": SERIES_COLOURS[i % len(SERIES_COLOURS)],
            "marker": SERIES_MARKERS[i % len(SERIES_MARKERS)],
            "linestyle": SERIES_DASHES[i % len(SERIES_DASHES)],
            "markersize": 4,
            "markevery": max(1, len(points) // 12),
            "linewidth": 1.4,
            "label": op,
        }
        ts = [pt["t"] for pt in points]
        ax50.plot(ts, [pt["p50_ms"] for pt in points], **style)
        ax99.plot(ts, [pt["p99_ms"] for pt in points], **style)
    for ax, name in ((ax50, "p50"), (ax99, "p99")):
        ax.set_ylabel(f"{name} latency (ms)")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        for t, _label in markers:
            ax.axvline(t, color="grey", linestyle="--", alpha=0.6)
    # Events a fraction of a second apart (three SKUs selling out together) share one short label;
    # successive labels step down so they never overprint each other.
    for i, (t, label) in enumerate(_merge_close_markers(markers)):
        ax50.annotate(
            label, (t, 0.97 - 0.08 * (i % 4)), xycoords=("data", "axes fraction"), fontsize=7,
            va="top", ha="left", color="dimgrey", xytext=(3, 0), textcoords="offset points",
        )  # fmt: skip
    ax99.set_xlabel("seconds since traffic start")
    handles, labels = ax50.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", fontsize=8, ncol=min(5, max(1, len(labels))))
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return None


def _merge_close_markers(
    markers: Sequence[tuple[float, str]], *, within: float = 0.75
) -> list[tuple[float, str]]:
    """Group markers less than ``within`` seconds apart into one (first time, joined labels)."""
    merged: list[tuple[float, list[str]]] = []
    for t, label in sorted(markers):
        if merged and t - merged[-1][0] < within:
            merged[-1][1].append(label)
        else:
            merged.append((t, [label]))
    return [(t, _summarise(labels)) for t, labels in merged]


def _summarise(labels: list[str]) -> str:
    """``["SKU 1 sold out", "SKU 2 sold out", "price drop"]`` -> ``"2 SKUs sold out, price drop"``."""
    sold_out = [x for x in labels if x.endswith(" sold out")]
    others = [x for x in labels if not x.endswith(" sold out")]
    parts = [f"{len(sold_out)} SKUs sold out"] if len(sold_out) > 1 else sold_out
    return ", ".join(parts + others)
