"""``commerce-db bench``: ratios of dataaccess vs raw clients / naive baselines, measured side by side."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bench",
        help="benchmark dataaccess against raw asyncpg/redis and naive SELECT FOR UPDATE (local servers)",
        description="Start the local tier, seed it and measure each ratio in interleaved A/B rounds. "
        "Prints a table with goals and writes every raw figure plus versions as JSON.",
    )
    p.add_argument(
        "--json",
        type=Path,
        default=Path("out/bench.json"),
        metavar="PATH",
        help="where to write the JSON result (default: out/bench.json)",
    )
    p.add_argument("--quick", action="store_true", help="smaller run, under a minute on 2 cores")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from commerce_db.bench.progress import Progress
    from commerce_db.bench.runner import GOALS, render_table, run_bench
    from commerce_db.localtier import MissingBinaryError

    progress = Progress()
    try:
        doc = asyncio.run(run_bench(quick=args.quick, json_path=args.json, progress=progress))
    except MissingBinaryError as exc:
        print(f"commerce-db bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ncommerce-db bench: interrupted; all servers stopped", file=sys.stderr)
        return 130
    progress.done()
    print()
    print(render_table(doc))
    print(f"\n{doc['mode']} run, {doc['wall_seconds']} s; JSON: {args.json}")
    missed = [k for k, g in GOALS.items() if not g.met(float(doc[k]))]
    # oversell is a correctness failure; missed performance goals are reported, not fatal.
    if missed:
        print("missed goals: " + ", ".join(missed))
    return 1 if doc["oversold"] else 0
