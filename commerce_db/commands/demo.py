"""``commerce-db demo``: the data tier on one machine under a flash sale, with a report."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run PostgreSQL+standby, PgBouncer and Redis locally under a flash-sale traffic mix",
        description="Start the local stand-in of the tier (PostgreSQL primary + streaming standby, PgBouncer "
        "as RDS Proxy, Redis), seed a catalogue, run a short flash-sale traffic mix through dataaccess "
        "and report throughput, latency percentiles, cache hit ratio, replica lag and oversell (must be "
        "0). Every process started is stopped at the end, also on Ctrl-C.",
    )
    p.add_argument(
        "--json",
        type=Path,
        default=Path("out/demo.json"),
        metavar="PATH",
        help="JSON report (default: out/demo.json)",
    )
    p.add_argument(
        "--chart",
        type=Path,
        default=Path("out/demo-latency.png"),
        metavar="PATH",
        help="PNG latency-over-time chart (default: out/demo-latency.png; needs matplotlib)",
    )
    p.add_argument(
        "--duration", type=float, default=15.0, metavar="S", help="seconds of traffic (default: 15)"
    )
    p.add_argument(
        "--products", type=int, default=10_000, metavar="N", help="products to seed (default: 10000)"
    )
    p.add_argument("--users", type=int, default=10_000, metavar="N", help="users to seed (default: 10000)")
    p.add_argument("--concurrency", type=int, default=32, metavar="N", help="virtual users (default: 32)")
    p.add_argument(
        "--hot-stock",
        type=int,
        default=60,
        metavar="N",
        help="units of each of the 3 hot SKUs (default: 60: they sell out during the run)",
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from commerce_db.bench.progress import Progress
    from commerce_db.demo.runner import DemoConfig, DemoInterruptedError, render_report, run_demo
    from commerce_db.localtier import MissingBinaryError

    try:
        cfg = DemoConfig(
            products=args.products,
            users=args.users,
            duration=args.duration,
            concurrency=args.concurrency,
            hot_stock=args.hot_stock,
        )
    except ValueError as exc:
        print(f"commerce-db demo: {exc}", file=sys.stderr)
        return 2
    progress = Progress()
    try:
        doc = asyncio.run(run_demo(cfg, json_path=args.json, chart_path=args.chart, progress=progress))
    except MissingBinaryError as exc:
        print(f"commerce-db demo: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, asyncio.CancelledError, DemoInterruptedError):
        print("\ncommerce-db demo: interrupted; every server it started has been stopped", file=sys.stderr)
        return 130
    print()
    print(render_report(doc))
    chart = doc.get("chart")
    print(f"\nJSON: {args.json}" + (f"   chart: {chart}" if chart else ""))
    bad = (
        doc["oversold"]
        or doc["inventory_check"]["acknowledged_missing_in_db"]
        or doc["inventory_check"]["duplicated_orders"]
    )
    return 1 if bad else 0
