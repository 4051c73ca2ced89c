"""``commerce-db bench``: start the local tier, seed, run every scenario, print the table, write JSON."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from commerce_db.bench import scenarios
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
    "flash_sale_vs_select_for_update_50": Goal(1.0, False, ">= 1x (faster than naive)"),
    "flash_sale_vs_select_for_update_500": Goal(1.0, False, ">= 1x (faster than naive)"),
    "oversold": Goal(0.0, True, "= 0"),
}


async def run_bench(*, quick: bool, json_path: Path | None, progress: Progress) -> dict[str, Any]:
    """Run the whole benchmark and return the result document (also written to json_path)."""
    sizes = scenarios.Sizes.for_mode(quick)
    t_start = time.monotonic()
    tier = LocalTier()
    progress.step("starting local tier (PostgreSQL primary + standby, PgBouncer, Redis)...")
    await asyncio.to_thread(tier.start)
    try:
        db = await asyncio.to_thread(tier.create_database, "bench")
        async with scenarios.open_da(db.primary) as da:
            await da.migrate()
        n_products = 5_000 if quick else 20_000
        progress.step(f"seeding {n_products} products and {n_products} users (COPY)...")
        catalogue = await seed_catalogue(db.primary, products=n_products, users=n_products)
        await asyncio.to_thread(tier.wait_for_standby)
        env = scenarios.BenchEnv(tier=tier, db=db, catalogue=catalogue, sizes=sizes, progress=progress)
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
        result.update(env.extra)
        bouncer = await scenarios.pgbouncer_vs_direct(env)
        result["pgbouncer_vs_direct_throughput"] = bouncer["throughput_ratio"]
        result["pgbouncer_server_connections"] = bouncer["server_connections_pgbouncer"]
        result["direct_server_connections"] = bouncer["server_connections_direct"]
        versions = await collect_versions(
            postgres_dsn=db.primary,
            redis_url=tier.redis_url,
            pgbouncer_binary=tier.bins.pgbouncer if tier.bins else None,
        )
    finally:
        progress.step("stopping local tier...")
        await asyncio.to_thread(tier.stop)
    doc: dict[str, Any] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items()}
    doc["goals"] = {k: {"goal": g.text, "met": g.met(float(result[k]))} for k, g in GOALS.items()}
    doc["mode"] = "quick" if quick else "full"
    doc["sizes"] = sizes.__dict__
    doc["catalogue"] = {"products": len(catalogue.product_ids), "users": len(catalogue.user_ids)}
    doc["raw"] = env.raw
    doc["versions"] = versions
    doc["wall_seconds"] = round(time.monotonic() - t_start, 1)
    doc["method"] = (
        "Each ratio compares variants measured in alternating rounds (ABBA) in one run on the "
        "same servers; the figure is the median over rounds of the paired A/B ratio (mean latency "
        "of sequential calls for latency ratios, ops/s of closed-loop workers for throughput)."
    )
    if json_path is not None:
        write_json(json_path, doc)
    return doc


def render_table(doc: dict[str, Any]) -> str:
    rows: list[list[Any]] = []
    for key, goal in GOALS.items():
        value = doc[key]
        rows.append([key, value, goal.text, "pass" if goal.met(float(value)) else "MISS"])
    rows.append(
        [
            "cached_read_vs_raw_redis_same_client_settings",
            doc["cached_read_vs_raw_redis_same_client_settings"],
            "(info: raw GET with dataaccess's client settings)",
            "",
        ]
    )
    rows.append(
        [
            "uncached_read_vs_raw_asyncpg_connection",
            doc["uncached_read_vs_raw_asyncpg_connection"],
            "(info: vs one dedicated connection)",
            "",
        ]
    )
    for n in (50, 500):
        rows.append(
            [
                f"flash_sale_redis_gate_vs_select_for_update_{n}",
                doc[f"flash_sale_redis_gate_vs_select_for_update_{n}"],
                "(info)",
                "",
            ]
        )
    rows.append(["pgbouncer_vs_direct_throughput", doc["pgbouncer_vs_direct_throughput"], "(info)", ""])
    rows.append(
        [
            "server connections pgbouncer/direct",
            f"{doc['pgbouncer_server_connections']:.0f} / {doc['direct_server_connections']:.0f}",
            "(info)",
            "",
        ]
    )
    return format_table(["ratio", "value", "goal", "result"], rows)
