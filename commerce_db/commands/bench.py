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
    p.add_argument(
        "--search",
        action="store_true",
        help="instead: search scaling (products.search p50/p99 per query kind at each catalogue size; "
        "default JSON out/bench-search.json)",
    )
    p.add_argument(
        "--sizes",
        type=_sizes,
        default=None,
        metavar="N,N,...",
        help="with --search: ascending catalogue sizes (default 10000,1000000; --quick 10000,100000)",
    )
    p.add_argument(
        "--samples",
        type=int,
        default=None,
        help="with --search: timed calls per query kind and size (default 240)",
    )
    p.set_defaults(func=_run)


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(x.replace("_", "")) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes {text!r}: expected comma-separated integers") from None
    if list(sizes) != sorted(set(sizes)) or sizes[0] < 1:
        raise argparse.ArgumentTypeError(f"--sizes {text!r}: sizes must be positive and ascending")
    return sizes


def _run_search(args: argparse.Namespace) -> int:
    from commerce_db.bench.progress import Progress
    from commerce_db.bench.search_bench import SearchBenchOptions, render_search_table, run_search_bench
    from commerce_db.localtier import MissingBinaryError

    sizes = args.sizes or ((10_000, 100_000) if args.quick else (10_000, 1_000_000))
    samples = args.samples or (80 if args.quick else 240)
    json_path = Path("out/bench-search.json") if args.json == Path("out/bench.json") else args.json
    try:
        options = SearchBenchOptions(sizes=sizes, samples=samples)
    except ValueError as exc:
        print(f"commerce-db bench: {exc}", file=sys.stderr)
        return 2
    progress = Progress()
    try:
        doc = asyncio.run(run_search_bench(options, json_path=json_path, progress=progress))
    except MissingBinaryError as exc:
        print(f"commerce-db bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ncommerce-db bench: interrupted; all servers stopped", file=sys.stderr)
        return 130
    progress.done()
    print()
    print(render_search_table(doc))
    verdict = "passed" if doc["relevance_ok"] else "FAILED"
    print(f"\nsearch run, {doc['wall_seconds']} s; relevance checks {verdict}; JSON: {json_path}")
    return 0 if doc["relevance_ok"] else 1


def _run(args: argparse.Namespace) -> int:
    if args.search:
        return _run_search(args)
    if args.sizes is not None or args.samples is not None:
        print("commerce-db bench: --sizes and --samples need --search", file=sys.stderr)
        return 2
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
