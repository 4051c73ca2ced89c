"""``commerce-db bench``: start the local tier, seed, run every scenario, print the table, write JSON."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aredis

from commerce_db.bench import scenarios, tls_cost
from commerce_db.bench.cpu import ServerCpu
from commerce_db.bench.progress import Progress
from commerce_db.bench.report import format_table, write_json
from commerce_db.bench.seed import seed_catalogue
from commerce_db.bench.versions import collect_versions
from commerce_db.localtier import LocalTier


@dataclass(frozen=True)
class Goal:
    """A ratio's goal: value must be <= (``at_most``) or >= the target."""

    target: float
    at_most: bool
    text: str

    def met(self, value: float) -> bool:
        return value <= self.target if self.at_most else value >= self.target


GOALS: dict[str, Goal] = {
    "cached_read_vs_raw_redis": Goal(1.2, True, "<= 1.2x"),
    "uncached_read_vs_raw_asyncpg": Goal(1.15, True, "<= 1.15x"),
    "read_throughput_cache_replica_vs_primary": Goal(3.0, False, ">= 3x"),
    "db_queries_per_1000_reads": Goal(30.0, True, "<= 30"),
    "primary_reads_per_1000_reads": Goal(0.0, True, "= 0"),
    "flash_sale_vs_select_for_update_50": Goal(2.0, False, ">= 2x"),
    "flash_sale_vs_select_for_update_500": Goal(5.0, False, ">= 5x"),
    "flash_sale_units_per_round": Goal(2000.0, False, ">= 2000"),
    "oversold": Goal(0.0, True, "= 0"),
}

INFO_KEYS: tuple[tuple[str, str], ...] = (
    ("cached_read_vs_raw_redis_same_client_settings", "raw GET with dataaccess's client settings"),
    ("uncached_read_vs_raw_asyncpg_connection", "vs one dedicated connection"),
    ("flash_sale_redis_gate_vs_select_for_update_50", "Redis gate in front"),
    ("flash_sale_redis_gate_vs_select_for_update_500", "Redis gate in front"),
    ("flash_sale_p50_ms_50", "order latency, group commit"),
    ("flash_sale_p99_ms_50", "order latency, group commit"),
    ("flash_sale_p50_ms_500", "order latency, group commit"),
    ("flash_sale_p99_ms_500", "order latency, group commit"),
    ("pgbouncer_vs_direct_throughput", ""),
    *((key, f"TLS/plaintext, {note}") for key, note in tls_cost.KEYS),
)


async def _run_once(env: scenarios.BenchEnv) -> dict[str, Any]:
    """Every scenario once; returns the flat result keys (env.raw holds the details)."""
    result: dict[str, Any] = {}
    result["cached_read_vs_raw_redis"] = await scenarios.cached_read_vs_raw_redis(env)
    result["uncached_read_vs_raw_asyncpg"] = await scenarios.uncached_read_vs_raw_asyncpg(env)
    result[
        "read_throughput_cache_replica_vs_primary"
    ] = await scenarios.read_throughput_cache_replica_vs_primary(env)
    oversold = 0
    for buyers in (50, 500):
        ratio, gated, over = await scenarios.flash_sale(env, buyers)
        result[f"flash_sale_vs_select_for_update_{buyers}"] = ratio
        result[f"flash_sale_redis_gate_vs_select_for_update_{buyers}"] = gated
        oversold += over
    result["oversold"] = oversold
    result["flash_sale_units_per_round"] = min(env.sizes.flash_stock.values())
    result.update(env.extra)
    bouncer = await scenarios.pgbouncer_vs_direct(env)
    result["pgbouncer_vs_direct_throughput"] = bouncer["throughput_ratio"]
    result["pgbouncer_server_connections"] = bouncer["server_connections_pgbouncer"]
    result["direct_server_connections"] = bouncer["server_connections_direct"]
    env.progress.step("[6/6] TLS cost: raw clients over TLS vs over plaintext (second, plaintext tier)")
    cost = await tls_cost.tls_cost(
        env.tier, env.db.primary, rounds=env.sizes.rounds, seq_ops=env.sizes.seq_ops
    )
    result.update(cost["ratios"])
    env.raw["tls_cost"] = cost["detail"]
    return result


def _server_cpu(raw: dict[str, Any]) -> dict[str, Any]:
    """The server-CPU figures of one run, gathered in one place for the report."""
    out: dict[str, Any] = {}
    rt = raw.get("read_throughput", {}).get("server_cpu_ms_per_1000_reads")
    if rt:
        out["browse_reads"] = rt
    for n in (50, 500):
        fs = raw.get(f"flash_sale_{n}", {}).get("server_cpu_ms_per_1000_orders")
        if fs:
            out[f"flash_sale_orders_{n}_buyers"] = fs
    return out


async def run_bench(
    *, quick: bool, json_path: Path | None, progress: Progress, runs: int | None = None
) -> dict[str, Any]:
    """Run the whole benchmark ``runs`` times (default: 1 quick, 3 full) on one local tier and
    return the result document (also written to json_path): each key is the median over the
    runs, ``ranges`` holds [min, max], ``runs`` every run's figures and raw details."""
    sizes = scenarios.Sizes.for_mode(quick)
    n_runs = runs if runs is not None else (1 if quick else 3)
    if n_runs < 1:
        raise ValueError(f"runs must be >= 1, got {n_runs}")
    t_start = time.monotonic()
    load_before = os.getloadavg()
    tier = LocalTier()
    progress.step("starting local tier (PostgreSQL primary + standby, PgBouncer, Redis)...")
    await asyncio.to_thread(tier.start)
    per_run: list[dict[str, Any]] = []
    try:
        db = await asyncio.to_thread(tier.create_database, "bench")
        async with scenarios.open_da(db.primary) as da:
            await da.migrate()
        n_products = 5_000 if quick else 20_000
        progress.step(f"seeding {n_products} products and {n_products} users (COPY)...")
        catalogue = await seed_catalogue(db.primary, products=n_products, users=n_products)
        await asyncio.to_thread(tier.wait_for_standby)
        cpu = ServerCpu({"primary": tier.primary.datadir, "standby": tier.standby.datadir}, tier.redis_url)
        try:
            for i in range(n_runs):
                if n_runs > 1:
                    progress.step(f"== run {i + 1} of {n_runs} ==")
                # Each run starts from an empty Redis: no run is warmed by the one before.
                flush = aredis.Redis.from_url(tier.redis_url)
                try:
                    await flush.flushdb()
                finally:
                    await flush.aclose()
                env = scenarios.BenchEnv(
                    tier=tier, db=db, catalogue=catalogue, sizes=sizes, progress=progress, cpu=cpu
                )
                result = await _run_once(env)
                per_run.append({"result": result, "raw": env.raw, "load": os.getloadavg()})
        finally:
            await cpu.aclose()
        versions = await collect_versions(
            postgres_dsn=db.primary,
            redis_url=tier.redis_url,
            pgbouncer_binary=tier.bins.pgbouncer if tier.bins else None,
        )
    finally:
        progress.step("stopping local tier...")
        await asyncio.to_thread(tier.stop)
    keys = list(per_run[0]["result"])
    doc: dict[str, Any] = {}
    ranges: dict[str, list[float]] = {}
    for k in keys:
        vals = [float(r["result"][k]) for r in per_run]
        doc[k] = round(median(vals), 4)
        ranges[k] = [round(min(vals), 4), round(max(vals), 4)]
    doc["oversold"] = int(sum(r["result"]["oversold"] for r in per_run))  # any oversell counts
    doc["goals"] = {
        k: {"goal": g.text, "met": g.met(float(doc[k])), "range": ranges[k]} for k, g in GOALS.items()
    }
    doc["missed_goals"] = [k for k, g in GOALS.items() if not g.met(float(doc[k]))]
    doc["mode"] = "quick" if quick else "full"
    # Every headline ratio compares the data layer with raw clients over this same transport.
    doc["transport"] = tier.transport
    doc["runs_count"] = n_runs
    doc["ranges"] = ranges
    doc["server_cpu_ms_per_1000_ops"] = _server_cpu(per_run[len(per_run) // 2]["raw"])
    doc["sizes"] = sizes.__dict__
    doc["catalogue"] = {"products": len(catalogue.product_ids), "users": len(catalogue.user_ids)}
    doc["raw"] = per_run[-1]["raw"]
    doc["runs"] = [
        {
            "result": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r["result"].items()},
            "load_avg_after": [round(x, 2) for x in r["load"]],
        }
        for r in per_run
    ]
    doc["load_avg"] = {
        "before": [round(x, 2) for x in load_before],
        "after": [round(x, 2) for x in os.getloadavg()],
    }
    doc["versions"] = versions
    doc["wall_seconds"] = round(time.monotonic() - t_start, 1)
    doc["method"] = (
        "Each ratio compares variants measured in alternating rounds (ABBA) in one run on the "
        "same servers; the figure is the median over rounds of the paired A/B ratio (mean latency "
        "of sequential calls for latency ratios, ops/s of closed-loop workers for throughput). "
        "With several runs, each key is the median over runs and ranges[key] is [min, max]. "
        "Server CPU: /proc CPU time of every PostgreSQL process and Redis INFO cpu, per 1,000 "
        "operations of the phase. The tier runs TLS (verify-full, rediss://): the data layer and "
        "the raw clients it is compared with use the same TLS endpoints. tls_vs_plaintext_* keys: "
        "the same raw clients against a second, plaintext tier (primary + Redis) started for that "
        "scenario, in alternating rounds in the same run."
    )
    if json_path is not None:
        write_json(json_path, doc)
    return doc


def median(values: list[float]) -> float:
    v = sorted(values)
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


def render_table(doc: dict[str, Any]) -> str:
    """Goals (value = median over runs, with the range when there were several), then info
    figures and the server CPU per 1,000 operations."""
    multi = doc.get("runs_count", 1) > 1
    rows: list[list[Any]] = []
    for key, goal in GOALS.items():
        value = doc[key]
        lo, hi = doc.get("ranges", {}).get(key, (value, value))
        shown = f"{value:.3f} ({lo:.3f}-{hi:.3f})" if multi else value
        rows.append([key, shown, goal.text, "pass" if goal.met(float(value)) else "MISS"])
    for key, note in INFO_KEYS:
        if key in doc:
            rows.append([key, doc[key], f"(info{': ' + note if note else ''})", ""])
    rows.append(
        [
            "server connections pgbouncer/direct",
            f"{doc['pgbouncer_server_connections']:.0f} / {doc['direct_server_connections']:.0f}",
            "(info)",
            "",
        ]
    )
    out = [format_table(["key", "value" + (" (range)" if multi else ""), "goal", "result"], rows)]
    cpu_rows: list[list[Any]] = []
    for phase, variants in doc.get("server_cpu_ms_per_1000_ops", {}).items():
        for variant, fig in variants.items():
            cpu_rows.append([phase, variant, fig.get("postgres"), fig.get("redis")])
    if cpu_rows:
        out.append("\nserver CPU, ms per 1,000 operations (all PostgreSQL processes of both clusters; Redis)")
        out.append(format_table(["phase", "variant", "postgres_ms", "redis_ms"], cpu_rows))
    fs = doc.get("raw", {}).get("flash_sale_500", {})
    if fs:
        alt_rows = [
            [
                k,
                fs["orders_per_s"].get(k),
                fs["vs_select_for_update"].get(k),
                fs["latency_ms"].get(k, {}).get("p50"),
                fs["latency_ms"].get(k, {}).get("p99"),
            ]
            for k in fs.get("orders_per_s", {})
        ]
        out.append("\nflash sale, 500 buyers (last run): every variant")
        out.append(format_table(["variant", "orders/s", "vs naive", "p50 ms", "p99 ms"], alt_rows))
    return "\n".join(out)
