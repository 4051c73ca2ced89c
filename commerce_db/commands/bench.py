"""``commerce-db bench``: ratios of dataaccess vs raw clients / naive baselines, measured side by side."""

from __future__ import annotations

import argparse
import asyncio
import json
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
        nargs="?",
        const="-",
        default="out/bench.json",
        metavar="PATH",
        help="where to write the JSON result (default: out/bench.json); --json alone prints it on "
        "stdout (then the table goes to stderr)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smaller run (one run, >= 2,000 units per flash-sale round; about 3 minutes on 2 cores)",
    )
    p.add_argument(
        "--runs",
        type=_positive_int,
        default=None,
        metavar="N",
        help="repeat every scenario N times and report the median and range (default: 1 quick, 3 full)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when any goal is missed (default: only an oversell exits 1)",
    )
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


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--runs must be a whole number, got {raw!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--runs must be >= 1, got {value}")
    return value


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
    json_path = Path("out/bench-search.json") if args.json in ("out/bench.json", "-") else Path(args.json)
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

    to_stdout = args.json == "-"
    json_path = None if to_stdout else Path(args.json)
    out = sys.stderr if to_stdout else sys.stdout
    progress = Progress()
    try:
        doc = asyncio.run(run_bench(quick=args.quick, json_path=json_path, progress=progress, runs=args.runs))
    except MissingBinaryError as exc:
        print(f"commerce-db bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ncommerce-db bench: interrupted; all servers stopped", file=sys.stderr)
        return 130
    progress.done()
    print(file=out)
    print(render_table(doc), file=out)
    where = "stdout" if to_stdout else str(json_path)
    print(
        f"\n{doc['mode']} mode, {doc['runs_count']} run(s), {doc['wall_seconds']} s, "
        f"load average before/after {doc['load_avg']['before'][0]}/{doc['load_avg']['after'][0]}; "
        f"JSON: {where}",
        file=out,
    )
    missed = [k for k, g in GOALS.items() if not g.met(float(doc[k]))]
    if missed:
        print("missed goals: " + ", ".join(missed), file=out)
    if to_stdout:
        print(json.dumps(doc, indent=2, default=str))
    # An oversell is a correctness failure: always exit 1. Missed performance goals only with --strict.
    return 1 if doc["oversold"] or (args.strict and missed) else 0
