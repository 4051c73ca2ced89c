"""``commerce-db demo``: start the local tier, seed, run the flash-sale mix, report, stop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from commerce_db.bench.progress import Progress
from commerce_db.bench.report import format_table, write_json, write_latency_chart
from commerce_db.bench.seed import seed_catalogue
from commerce_db.bench.versions import collect_versions
from commerce_db.demo.traffic import BUYER_SHARE, MIX, FlashSaleTraffic, TrafficConfig, TrafficOutcome
from commerce_db.localtier import LocalTier
from dataaccess import DataAccess, Settings


@dataclass(frozen=True)
class DemoConfig:
    """Demo knobs (defaults in brackets): products [10000], users [10000], duration [15 s of
    traffic], concurrency [32 virtual users], hot_skus [3], hot_stock [60 units each: they sell
    out during the run, so the report shows both accepted and refused orders]."""

    products: int = 10_000
    users: int = 10_000
    duration: float = 15.0
    concurrency: int = 32
    hot_skus: int = 3
    hot_stock: int = 60

    def __post_init__(self) -> None:
        for name in ("products", "users", "concurrency", "hot_skus", "hot_stock"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if not 1 <= self.duration <= 3600:
            raise ValueError(f"--duration must be between 1 and 3600 seconds, got {self.duration}")


async def run_demo(
    cfg: DemoConfig, *, json_path: Path | None, chart_path: Path | None, progress: Progress
) -> dict[str, Any]:
    t_start = time.monotonic()
    tier = LocalTier()
    progress.step(
        "starting local tier: PostgreSQL primary + streaming standby, PgBouncer (as RDS Proxy), "
        "Redis primary + replica ..."
    )
    try:
        await asyncio.to_thread(tier.start)
        progress.step(
            f"  up in {tier.started_in:.1f} s; writer = PgBouncer :{tier.pgbouncer.port}, "
            f"reader = standby :{tier.standby.port}, Redis :{tier.redis.port}"
        )
        settings = Settings(
            writer_dsn=tier.pgbouncer_dsn,
            reader_dsns=(tier.standby_dsn,),
            redis_url=tier.redis_url,
            proxy_mode="pgbouncer",
            writer_pool_max=20,
            reader_pool_max=20,
            acquire_timeout=15.0,
            # The flash-sale gate: a Redis Lua counter refuses sold-out orders before they queue
            # on the hot row; PostgreSQL's conditional UPDATE stays the record.
            inventory_redis_gate=True,
        )
        async with await DataAccess.connect(settings) as da:
            await da.migrate()
            await da.apply_role_statement_timeout()
            t0 = time.monotonic()
            progress.step(f"seeding {cfg.products:,} products and {cfg.users:,} users (COPY) ...")
            catalogue = await seed_catalogue(tier.primary_dsn, products=cfg.products, users=cfg.users)
            hot = [
                await da.products.create(
                    sku=f"FLASH-{i + 1}",
                    name=f"Flash sale console edition {i + 1}",
                    price_cents=49_900,
                    stock=cfg.hot_stock,
                )
                for i in range(cfg.hot_skus)
            ]
            if da.stock_gate is not None:
                for p in hot:
                    await da.stock_gate.set_available(p.id, cfg.hot_stock)
            await asyncio.to_thread(tier.wait_for_standby)
            seed_s = time.monotonic() - t0
            progress.step(
                f"  seeded in {seed_s:.1f} s; {cfg.hot_skus} hot SKUs with {cfg.hot_stock} units each"
            )
            traffic = FlashSaleTraffic(
                da,
                product_ids=catalogue.product_ids,
                user_ids=catalogue.user_ids,
                search_terms=catalogue.search_terms,
                hot_product_ids=[p.id for p in hot],
                config=TrafficConfig(duration=cfg.duration, concurrency=cfg.concurrency),
            )
            lag = _LagSampler(tier)
            cache0 = da.cache.stats if da.cache else None
            progress.step(
                f"flash sale: {cfg.concurrency} virtual users for {cfg.duration:.0f} s "
                f"(browse {MIX['browse']:.0%}, search {MIX['search']:.0%}, login {MIX['login']:.0%}, "
                f"profile {MIX['profile']:.0%}); {BUYER_SHARE:.0%} of them are buyers ordering the hot SKUs"
            )
            last = {"t": time.perf_counter(), "n": 0}

            def tick() -> None:
                rec = traffic.out.recorder
                now, n = time.perf_counter(), rec.count()
                rate = (n - last["n"]) / max(1e-6, now - last["t"])
                last.update(t=now, n=n)
                hit = _hit_ratio(cache0, da.cache.stats if da.cache else None)
                progress.update(
                    f"  t={rec.elapsed:5.1f}s  {rate:7,.0f} ops/s  orders ok={len(traffic.out.accepted):,} "
                    f"sold-out={traffic.out.rejected_out_of_stock:,}  cache hit={hit:.0%}  "
                    f"replica lag={lag.last_bytes / 1024:,.0f} KiB"
                )

            lag_task = asyncio.create_task(lag.run())
            ctrl_c = _CtrlC(traffic)
            try:
                outcome = await traffic.run(on_tick=tick)
            finally:
                ctrl_c.restore()
                lag.stop()
                await lag_task
            if ctrl_c.interrupted.is_set():
                raise DemoInterruptedError
            progress.done()
            cache1 = da.cache.stats if da.cache else None
            gate = (
                {"refused_by_redis": da.stock_gate.rejected, "let_through": da.stock_gate.passthrough}
                if da.stock_gate is not None
                else None
            )
            check = await verify_orders(tier.primary_dsn, outcome, {p.id: cfg.hot_stock for p in hot})
            versions = await collect_versions(
                postgres_dsn=tier.primary_dsn,
                redis_url=tier.redis_url,
                pgbouncer_binary=tier.bins.pgbouncer if tier.bins else None,
            )
    finally:
        progress.step("stopping every server the demo started ...")
        await asyncio.to_thread(tier.stop)
    doc = _document(cfg, outcome, check, lag, cache0, cache1, versions, seed_s, time.monotonic() - t_start)
    doc["stock_gate"] = gate
    if json_path is not None:
        write_json(json_path, doc)
    if chart_path is not None:
        rec = outcome.recorder
        series = {
            label: rec.timeseries([op for op in ops if op in rec.ops], bucket=1.0, until=cfg.duration)
            for label, ops in CHART_SERIES
        }
        markers = [
            (t, f"SKU {pid} sold out") for pid, t in sorted(outcome.sold_out_at.items(), key=lambda x: x[1])
        ]
        if outcome.price_change:
            markers.append((outcome.price_change["at_s"], "price drop"))
        note = write_latency_chart(
            chart_path, series, title="commerce-db demo: latency over time (flash sale)", markers=markers
        )
        doc["chart"] = str(chart_path) if note is None else note
        if json_path is not None:
            write_json(json_path, doc)
    return doc


def _hit_ratio(a: Any, b: Any) -> float:
    if a is None or b is None:
        return 0.0
    hits, misses = b.hits - a.hits, b.misses - a.misses
    return hits / (hits + misses) if hits + misses else 0.0


CHART_SERIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cached reads (product, user, session)", ("product.get", "user.get", "session.get")),
    ("search", ("product.search",)),
    ("small writes (view counter, session)", ("counter.view", "session.create")),
    ("order placed (incl. retries)", ("order.place", "order.replay")),
    ("order refused: sold out", ("order.rejected",)),
)
"""The chart's five series: the nine operations pooled by what a shopper waits for (1 s buckets)."""


def render_gate(gate: dict[str, int] | None) -> list[str]:
    """The Redis stock gate's work as report lines (``stock gate`` column)."""
    if gate is None:
        return ["off (every order went to PostgreSQL)"]
    return [
        f"{gate['refused_by_redis']:,} sold-out orders refused in Redis without touching PostgreSQL",
        f"{gate['let_through']:,} let through unchecked to PostgreSQL (counter missing or Redis unavailable)",
    ]


class DemoInterruptedError(Exception):
    """Ctrl-C during the traffic; raised after the traffic stopped, before the servers stop."""


CTRL_C_GRACE_S = 5.0
"""After Ctrl-C, how long in-flight operations get to finish before they are cancelled."""


class _CtrlC:
    """Ctrl-C stops the traffic by flag: every virtual user finishes the operation it is in (so
    no connection goes back to its pool in the middle of a transaction, which asyncpg reports as
    "Resetting connection with an active transaction") and then the servers are stopped. A second
    Ctrl-C, or traffic still running ``CTRL_C_GRACE_S`` later, cancels the main task. The flag
    matters on its own too: a cancellation can be lost inside a library on Python 3.11, and the
    demo must still end promptly and stop every server it started."""

    def __init__(self, traffic: FlashSaleTraffic) -> None:
        self.interrupted = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._main = asyncio.current_task()
        self._traffic = traffic
        self._timer: asyncio.TimerHandle | None = None
        with contextlib.suppress(NotImplementedError, RuntimeError):  # no signals off the main thread
            self._loop.add_signal_handler(signal.SIGINT, self._handle)

    def _force(self) -> None:
        if self._main is not None and not self._main.done():
            self._main.cancel()

    def _handle(self) -> None:
        if self.interrupted.is_set():
            self._force()
            return
        self.interrupted.set()
        self._traffic.stop()
        self._timer = self._loop.call_later(CTRL_C_GRACE_S, self._force)

    def restore(self) -> None:
        """The traffic is over: the default Ctrl-C again, and no pending forced cancel (stopping
        the servers must not be cut short)."""
        if self._timer is not None:
            self._timer.cancel()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            self._loop.remove_signal_handler(signal.SIGINT)


class _LagSampler:
    """Samples pg_stat_replication on the primary every interval (bytes and seconds behind)."""

    def __init__(self, tier: LocalTier, interval: float = 0.5) -> None:
        self.tier = tier
        self.interval = interval
        self.samples: list[dict[str, float]] = []
        self.last_bytes = 0.0
        self._stop = asyncio.Event()
        self._t0 = time.perf_counter()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                lag = await self.tier.areplication_lag()
            except Exception:  # a sample lost is not worth failing the demo
                lag = None
            if lag is not None:
                self.last_bytes = lag["bytes"]
                self.samples.append({"t": round(time.perf_counter() - self._t0, 2), **lag})
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):  # not 3.11's wait_for (drops cancels)
                    await self._stop.wait()

    def stop(self) -> None:
        self._stop.set()


async def verify_orders(dsn: str, outcome: TrafficOutcome, hot_stock: dict[int, int]) -> dict[str, Any]:
    """Check the clients' view against the database (the record): oversell per hot SKU, every
    acknowledged order present, no idempotency key used by two orders."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT p.id, p.stock, COALESCE(sum(l.quantity), 0) AS sold FROM products p "
            "LEFT JOIN order_lines l ON l.product_id = p.id WHERE p.id = ANY($1::bigint[]) "
            "GROUP BY p.id, p.stock",
            list(hot_stock),
        )
        ids = list(outcome.accepted.values())
        found = await conn.fetchval("SELECT count(DISTINCT id) FROM orders WHERE id = ANY($1::bigint[])", ids)
        dup = await conn.fetchval(
            "SELECT count(*) FROM (SELECT idempotency_key FROM orders "
            "WHERE idempotency_key = ANY($1::text[]) GROUP BY idempotency_key HAVING count(*) > 1) d",
            list(outcome.accepted),
        )
    finally:
        await conn.close()
    skus = [
        {
            "product_id": r["id"],
            "initial_stock": hot_stock[r["id"]],
            "sold_in_db": int(r["sold"]),
            "left_in_db": r["stock"],
            "oversold": max(0, int(r["sold"]) - hot_stock[r["id"]]),
            "consistent": int(r["sold"]) + r["stock"] == hot_stock[r["id"]],
        }
        for r in rows
    ]
    return {
        "skus": skus,
        "oversold": sum(s["oversold"] for s in skus),
        "acknowledged": len(ids),
        "acknowledged_missing_in_db": len(set(ids)) - int(found),
        "duplicated_orders": int(dup),
    }


def _document(
    cfg: DemoConfig,
    out: TrafficOutcome,
    check: dict[str, Any],
    lag: _LagSampler,
    c0: Any,
    c1: Any,
    versions: dict[str, str],
    seed_s: float,
    wall: float,
) -> dict[str, Any]:
    rec = out.recorder
    lag_bytes = [s["bytes"] for s in lag.samples]
    lag_secs = [s["seconds"] for s in lag.samples]
    cache = None
    if c0 is not None and c1 is not None:
        cache = {k: getattr(c1, k) - getattr(c0, k) for k in ("hits", "misses", "errors")}
        cache["hit_ratio"] = round(_hit_ratio(c0, c1), 4)
    return {
        "config": cfg.__dict__,
        "mix": {"browsers": MIX, "buyer_share_of_users": BUYER_SHARE},
        "duration_s": round(rec.elapsed, 2),
        "seed_s": round(seed_s, 2),
        "wall_s": round(wall, 1),
        "total_ops": rec.count(),
        "throughput_ops_s": round(rec.count() / max(rec.elapsed, 1e-9), 1),
        "operations": [s.as_dict() for s in rec.summaries()],
        "cache": cache,
        "replica_lag": {
            "max_bytes": max(lag_bytes, default=0.0),
            "mean_bytes": round(sum(lag_bytes) / max(1, len(lag_bytes)), 1),
            "max_seconds": max(lag_secs, default=0.0),
            "samples": lag.samples,
        },
        "orders": {
            "accepted": len(out.accepted),
            "rejected_out_of_stock": out.rejected_out_of_stock,
            "idempotent_replays_ok": out.replays_ok,
            "idempotent_replays_mismatch": out.replays_mismatch,
            "idempotent_replays_failed": dict(out.replays_failed),
            "sold_out_at_s": {str(k): round(v, 2) for k, v in out.sold_out_at.items()},
        },
        "inventory_check": check,
        "oversold": check["oversold"],
        "price_drop": out.price_change,
        "client_errors": dict(out.errors),
        "versions": versions,
        "timeseries": {op: rec.timeseries(op, bucket=0.5) for op in rec.ops},
    }


def render_report(doc: dict[str, Any]) -> str:
    ops = doc["operations"]
    table = format_table(
        ["operation", "count", "ops/s", "p50 ms", "p95 ms", "p99 ms", "errors"],
        [
            [o["op"], o["count"], o["throughput"], o["p50_ms"], o["p95_ms"], o["p99_ms"], o["errors"]]
            for o in ops
        ],
    )
    o, chk, lag = doc["orders"], doc["inventory_check"], doc["replica_lag"]
    cache = doc["cache"] or {}
    lines = [
        table,
        "",
        f"throughput        {doc['throughput_ops_s']:,.0f} ops/s over {doc['duration_s']:.1f} s "
        f"({doc['total_ops']:,} operations, {len(ops)} kinds)",
        f"cache hit ratio   {cache.get('hit_ratio', 0):.1%} ({cache.get('hits', 0):,} hits, "
        f"{cache.get('misses', 0):,} misses, {cache.get('errors', 0)} errors)",
        f"replica lag       max {lag['max_bytes'] / 1024:,.1f} KiB / {lag['max_seconds'] * 1000:,.0f} ms "
        f"(mean {lag['mean_bytes'] / 1024:,.1f} KiB, pg_stat_replication)",
        f"orders            {o['accepted']:,} accepted, "
        f"{o['rejected_out_of_stock']:,} rejected out of stock, "
        f"{o['idempotent_replays_ok']} idempotent replays returned the same order "
        f"({o['idempotent_replays_mismatch']} mismatched, "
        f"{sum(o['idempotent_replays_failed'].values())} failed)",
        *(
            f"{'stock gate' if i == 0 else '':<18}{line}"
            for i, line in enumerate(render_gate(doc.get("stock_gate")))
        ),
        f"inventory (DB)    oversold units: {chk['oversold']}; acknowledged orders missing in DB: "
        f"{chk['acknowledged_missing_in_db']}; duplicated orders: {chk['duplicated_orders']}",
    ]
    for s in chk["skus"]:
        lines.append(
            f"                  SKU {s['product_id']}: stock {s['initial_stock']} -> sold {s['sold_in_db']}, "
            f"left {s['left_in_db']}{'' if s['consistent'] else '  INCONSISTENT'}"
        )
    pd = doc.get("price_drop") or {}
    if pd:
        lines.append(
            f"price drop        product {pd['product_id']}: {pd['old_cents']} -> {pd['new_cents']} cents; "
            f"next read showed {pd['read_after_write_cents']} "
            f"({'visible at once' if pd['visible_immediately'] else 'STALE'})"
        )
    if o["idempotent_replays_failed"] or o["idempotent_replays_mismatch"]:
        lines.append(
            "WARNING           a retried order (same idempotency key) did not return the original order"
        )
    if doc.get("client_errors"):
        errors = ", ".join(f"{n:,} {name}" for name, n in sorted(doc["client_errors"].items()))
        lines.append(f"client errors     {errors}")
    return "\n".join(lines)
