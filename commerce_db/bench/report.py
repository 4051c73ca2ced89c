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


def write_latency_chart(
    path: str | Path,
    series: Mapping[str, Sequence[Mapping[str, float]]],
    *,
    title: str,
    markers: Sequence[tuple[float, str]] = (),
) -> str | None:
    """PNG of p50/p99 latency per operation over time (one line pair per op).

    series: op -> [{"t": s, "p50_ms": .., "p99_ms": ..}, ...]; markers: (t, label) vertical lines.
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
    for op, points in sorted(series.items()):
        if not points:
            continue
        ts = [pt["t"] for pt in points]
        (line,) = ax50.plot(ts, [pt["p50_ms"] for pt in points], label=op)
        ax99.plot(ts, [pt["p99_ms"] for pt in points], label=op, color=line.get_color())
    for ax, name in ((ax50, "p50"), (ax99, "p99")):
        ax.set_ylabel(f"{name} latency (ms)")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        for t, label in markers:
            ax.axvline(t, color="grey", linestyle="--", alpha=0.6)
            if ax is ax50:
                ax.annotate(label, (t, 1), xycoords=("data", "axes fraction"), fontsize=8, va="top")
    ax99.set_xlabel("seconds since traffic start")
    handles, labels = ax50.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", fontsize=8, ncol=min(5, max(1, len(labels))))
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return None
