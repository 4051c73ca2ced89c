"""``commerce-db bench --search``: does product search stay fast as the catalogue grows (issue 18)?

One local tier (PostgreSQL primary + streaming standby, Redis). The catalogue is loaded by SQL
(:mod:`commerce_db.bench.search_catalogue`) and grown through the requested sizes (default 10k,
then 1M products); at each size every query of :func:`bench_queries` is sent through the public
``products.search`` API with reads on the standby and Redis flushed before every call (uncached:
no cached ids, no cached products). Reported per size and query kind: p50 / p99 / max; then the
growth from the smallest to the largest size, against the goals: p50 grows at most 2x, p99 at
most 3x, p99 at the largest size within 150 ms. Relevance is checked on the way: a typo's top hit
must contain the intended word, gibberish must return nothing.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aredis

from commerce_db.bench.progress import Progress
from commerce_db.bench.report import format_table, write_json
from commerce_db.bench.search_catalogue import QUERY_KINDS, BenchQuery, bench_queries, load_products
from commerce_db.bench.stats import percentile
from commerce_db.bench.versions import collect_versions
from commerce_db.localtier import LocalTier
from dataaccess import DataAccess, Settings
from dataaccess.repositories.search import search_ids

DEFAULT_SIZES = (10_000, 1_000_000)
P50_GROWTH_GOAL = 2.0
P99_GROWTH_GOAL = 3.0
P99_LARGEST_GOAL_MS = 150.0


@dataclass(frozen=True)
class SearchBenchOptions:
    """What to run. ``sizes``: catalogue sizes in ascending order [10k, 1M]; ``samples``: timed
    calls per query kind and size [240]; ``per_kind``: distinct queries per kind [12]."""

    sizes: tuple[int, ...] = DEFAULT_SIZES
    samples: int = 240
    per_kind: int = 12

    def __post_init__(self) -> None:
        if not self.sizes or list(self.sizes) != sorted(set(self.sizes)) or self.sizes[0] < 1:
            raise ValueError(f"sizes must be ascending positive product counts, got {self.sizes}")
        if self.samples < 10:
            raise ValueError(f"samples must be >= 10 (p99 needs them), got {self.samples}")


def _loadavg() -> list[float] | None:
    try:
        return [round(float(x), 2) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


async def _standby_xacts(admin_dsn: str, db: str) -> int:
    conn = await asyncpg.connect(admin_dsn)
    try:
        value = await conn.fetchval("SELECT xact_commit FROM pg_stat_database WHERE datname = $1", db)
        return int(value or 0)
    finally:
        await conn.close()


async def _until_reads_on_replica(da: DataAccess, timeout: float = 60.0) -> None:
    """After a bulk load the replica's health check may still see it lagging (reads then go to the
    writer) for up to one check interval after it caught up: wait until a search is routed to it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = da.pools.routed["replica"]
        await da.products.search("warm up")
        if da.pools.routed["replica"] > before:
            return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"reads did not go to the standby within {timeout:.0f} s")


async def _measure(
    da: DataAccess, redis_url: str, standby_dsn: str, queries: list[BenchQuery], samples: int, seed: int
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, Any]]:
    """``samples`` uncached calls per kind, kinds interleaved at random; durations in ms. Each API
    call is followed by the same query's search SQL alone (``search_ids`` on one standby
    connection: no Redis, no product fetch), to show what the search itself costs."""
    rng = random.Random(seed)
    by_kind: dict[str, list[BenchQuery]] = defaultdict(list)
    for q in queries:
        by_kind[q.kind].append(q)
    plan = [q for kind in QUERY_KINDS for q in rng.choices(by_kind[kind], k=samples)]
    rng.shuffle(plan)
    durations: dict[str, list[float]] = defaultdict(list)
    sql_durations: dict[str, list[float]] = defaultdict(list)
    checks: dict[str, Any] = {"typo_top_hit_wrong": [], "gibberish_non_empty": [], "empty_results": 0}
    flusher = aredis.Redis.from_url(redis_url)
    standby = await asyncpg.connect(standby_dsn)
    try:
        for q in queries:  # warm-up pass (connections, buffers), not timed
            await flusher.flushdb()
            await da.products.search(q.text)
        for q in plan:
            await flusher.flushdb()
            t0 = time.perf_counter()
            hits = await da.products.search(q.text)
            durations[q.kind].append((time.perf_counter() - t0) * 1000.0)
            wrong = q.expect_word is not None and (not hits or q.expect_word not in hits[0].name.lower())
            if wrong and q.text not in checks["typo_top_hit_wrong"]:
                checks["typo_top_hit_wrong"].append(q.text)
            if q.kind == "gibberish" and hits and q.text not in checks["gibberish_non_empty"]:
                checks["gibberish_non_empty"].append(q.text)
            if q.kind != "gibberish" and not hits:
                checks["empty_results"] += 1
            t0 = time.perf_counter()
            await search_ids(standby, q.text, 20)
            sql_durations[q.kind].append((time.perf_counter() - t0) * 1000.0)
    finally:
        await standby.close()
        await flusher.aclose()
    return durations, sql_durations, checks


def _summary(values: list[float]) -> dict[str, float]:
    s = sorted(values)
    return {
        "p50_ms": round(percentile(s, 50), 2),
        "p99_ms": round(percentile(s, 99), 2),
        "max_ms": round(s[-1], 2),
        "n": len(s),
    }


async def run_search_bench(
    options: SearchBenchOptions, *, json_path: Path | None, progress: Progress
) -> dict[str, Any]:
    """Run the search-scaling benchmark and return the result document (also written to json_path)."""
    t_start = time.monotonic()
    queries = bench_queries(options.per_kind)
    tier = LocalTier(pgbouncer=False, redis_replica=False)
    progress.step("starting local tier (PostgreSQL primary + standby, Redis)...")
    await asyncio.to_thread(tier.start)
    sizes: dict[str, Any] = {}
    try:
        db = await asyncio.to_thread(tier.create_database, "search_bench")
        if db.standby is None:
            raise RuntimeError("the search benchmark reads on the standby, and the local tier has none")
        # near_cache_ttl=0: no in-process copies either, so every call is uncached (Redis flushed).
        settings = Settings(
            writer_dsn=db.primary, reader_dsns=(db.standby,), redis_url=tier.redis_url, near_cache_ttl=0.0
        )
        da = await DataAccess.connect(settings)
        try:
            await da.migrate()
            loader = await asyncpg.connect(db.primary)
            try:
                for size in options.sizes:
                    have = int(await loader.fetchval("SELECT count(*) FROM products"))
                    progress.step(f"loading products {have:,} -> {size:,} (SQL, then VACUUM ANALYZE)...")
                    t_load = time.monotonic()
                    await load_products(loader, size - have)
                    load_s = time.monotonic() - t_load
                    await asyncio.to_thread(tier.wait_for_standby, None, 600.0)
                    words = int(await loader.fetchval("SELECT count(*) FROM search_words"))
                    progress.step(
                        f"{size:,} products ({words:,} lexicon words): "
                        f"{options.samples} uncached searches per kind on the standby..."
                    )
                    await _until_reads_on_replica(da)
                    before = await _standby_xacts(tier.standby_admin_dsn, db.name)
                    routed_before = dict(da.pools.routed)
                    load_before = _loadavg()
                    durations, sql_durations, checks = await _measure(
                        da, tier.redis_url, db.standby, queries, options.samples, seed=size
                    )
                    standby_xacts = await _standby_xacts(tier.standby_admin_dsn, db.name) - before
                    routed = {k: v - routed_before[k] for k, v in da.pools.routed.items()}
                    sizes[str(size)] = {
                        "products": size,
                        "lexicon_words": words,
                        "load_seconds": round(load_s, 1),
                        "kinds": {k: _summary(durations[k]) for k in QUERY_KINDS},
                        "search_sql_only": {k: _summary(sql_durations[k]) for k in QUERY_KINDS},
                        "checks": checks,
                        "standby_transactions": standby_xacts,
                        "reads_routed": routed,
                        "loadavg_before_after": [load_before, _loadavg()],
                    }
            finally:
                await loader.close()
        finally:
            await da.close()
        versions = await collect_versions(
            postgres_dsn=db.primary, redis_url=tier.redis_url, pgbouncer_binary=None
        )
    finally:
        progress.step("stopping local tier...")
        await asyncio.to_thread(tier.stop)
    doc = _document(options, queries, sizes)
    doc["versions"] = versions
    doc["wall_seconds"] = round(time.monotonic() - t_start, 1)
    if json_path is not None:
        write_json(json_path, doc)
    return doc


def _document(
    options: SearchBenchOptions, queries: list[BenchQuery], sizes: dict[str, Any]
) -> dict[str, Any]:
    small, large = sizes[str(options.sizes[0])], sizes[str(options.sizes[-1])]
    growth: dict[str, Any] = {}
    for kind in QUERY_KINDS:
        a, b = small["kinds"][kind], large["kinds"][kind]
        p50 = b["p50_ms"] / a["p50_ms"] if a["p50_ms"] else float("inf")
        p99 = b["p99_ms"] / a["p99_ms"] if a["p99_ms"] else float("inf")
        growth[kind] = {
            "p50_growth": round(p50, 2),
            "p99_growth": round(p99, 2),
            "p99_largest_ms": b["p99_ms"],
            "met": p50 <= P50_GROWTH_GOAL and p99 <= P99_GROWTH_GOAL and b["p99_ms"] <= P99_LARGEST_GOAL_MS,
        }
    relevance_ok = all(
        not s["checks"]["typo_top_hit_wrong"] and not s["checks"]["gibberish_non_empty"]
        for s in sizes.values()
    )
    return {
        "mode": "search",
        "sizes": sizes,
        "growth": growth,
        "relevance_ok": relevance_ok,
        "goals": {
            "p50_growth": f"<= {P50_GROWTH_GOAL}x",
            "p99_growth": f"<= {P99_GROWTH_GOAL}x",
            "p99_largest_ms": f"<= {P99_LARGEST_GOAL_MS:.0f} ms",
        },
        "queries": {k: [q.text for q in queries if q.kind == k] for k in QUERY_KINDS},
        "samples_per_kind": options.samples,
        "method": (
            "Each size: a warm-up pass over every query, then samples_per_kind timed calls per kind "
            "of DataAccess.products.search (reader = the streaming standby), kinds interleaved at "
            "random, Redis FLUSHDB before every call (not timed). Wall-clock per call, ms. "
            "search_sql_only: the same queries' SQL (dataaccess.repositories.search.search_ids) on "
            "one direct standby connection right after each API call, for information."
        ),
    }


def render_search_table(doc: dict[str, Any]) -> str:
    """Per kind: p50 / p99 at each size, the growth ratios and whether the goals are met."""
    sizes = list(doc["sizes"].values())
    headers = ["query kind", *(f"{s['products']:,}: p50 / p99 ms" for s in sizes), "p50 x", "p99 x", "goals"]
    rows = []
    for kind in QUERY_KINDS:
        g = doc["growth"][kind]
        cells = [f"{s['kinds'][kind]['p50_ms']:.1f} / {s['kinds'][kind]['p99_ms']:.1f}" for s in sizes]
        rows.append([kind, *cells, g["p50_growth"], g["p99_growth"], "met" if g["met"] else "MISSED"])
    sql = [
        [
            kind,
            *(
                f"{s['search_sql_only'][kind]['p50_ms']:.2f} / {s['search_sql_only'][kind]['p99_ms']:.2f}"
                for s in sizes
                if "search_sql_only" in s
            ),
        ]
        for kind in QUERY_KINDS
    ]
    notes = [
        f"{s['products']:,} products: {s['lexicon_words']:,} lexicon words, loaded in {s['load_seconds']} s; "
        f"reads routed {s.get('reads_routed', {})}; load average before/after {s['loadavg_before_after']}"
        for s in sizes
    ]
    sql_headers = ["search SQL only (info)", *(f"{s['products']:,}: p50 / p99 ms" for s in sizes)]
    return "\n".join([format_table(headers, rows), "", format_table(sql_headers, sql), "", *notes])
