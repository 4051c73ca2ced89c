"""The benchmark scenarios: each compares dataaccess with a baseline side by side (interleaved)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import redis.asyncio as aredis

from commerce_db.bench.alternatives import AdvisoryTryLock, BlockReservations, SkipLockedSlots, create_tables
from commerce_db.bench.cpu import ServerCpu
from commerce_db.bench.measure import (
    LoopResult,
    closed_loop,
    interleaved,
    interleaved_many,
    paired_ratio,
    pooled_mean_us,
    pooled_throughput,
    sequential,
)
from commerce_db.bench.naive import NaiveSoldOutError, naive_place_order
from commerce_db.bench.progress import Progress
from commerce_db.bench.seed import Catalogue
from commerce_db.bench.stats import percentile
from commerce_db.bench.zipf import ZipfPicker
from commerce_db.localtier import DatabaseDSNs, LocalTier
from commerce_db.localtier.postgres import SUPERUSER
from dataaccess import DataAccess, OutOfStock, Settings
from dataaccess.cache import CacheStats
from dataaccess.redis_client import create_redis
from dataaccess.settings import ProxyMode

# Fallback when the product read's SQL cannot be taken from pg_stat_statements.
_PRODUCT_SQL = "SELECT id, sku, name, price_cents, stock, version FROM products WHERE id = $1"


@dataclass
class Sizes:
    """How much work each scenario does (``quick`` keeps the whole bench under a minute)."""

    rounds: int
    seq_ops: int
    tput_rounds: int
    tput_seconds: float
    tput_concurrency: int
    flash_stock: dict[int, int]
    flash_rounds: int
    alt_rounds: int
    bouncer_clients: int
    bouncer_seconds: float

    @classmethod
    def for_mode(cls, quick: bool) -> Sizes:
        if quick:
            return cls(
                rounds=12,
                seq_ops=250,
                tput_rounds=4,
                tput_seconds=1.0,
                tput_concurrency=32,
                # >= 2,000 units a round: the sale, not the sold-out herd, is what is measured
                flash_stock={50: 2000, 500: 2000},
                flash_rounds=2,
                alt_rounds=1,
                bouncer_clients=100,
                bouncer_seconds=1.0,
            )
        return cls(
            rounds=24,
            seq_ops=600,
            tput_rounds=8,
            tput_seconds=2.5,
            tput_concurrency=32,
            flash_stock={50: 3000, 500: 3000},
            flash_rounds=4,
            alt_rounds=2,
            bouncer_clients=100,
            bouncer_seconds=2.5,
        )


@dataclass
class BenchEnv:
    tier: LocalTier
    db: DatabaseDSNs
    catalogue: Catalogue
    sizes: Sizes
    progress: Progress
    cpu: ServerCpu
    raw: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)
    """Informational ratios shown in the table next to the goals."""


@contextlib.asynccontextmanager
async def open_da(
    writer: str,
    *,
    readers: Sequence[str] = (),
    redis_url: str | None = None,
    proxy_mode: ProxyMode = "direct",
    **kw: Any,
) -> AsyncIterator[DataAccess]:
    settings = Settings(
        writer_dsn=writer, reader_dsns=tuple(readers), redis_url=redis_url, proxy_mode=proxy_mode, **kw
    )  # type: ignore[arg-type]
    da = await DataAccess.connect(settings)
    try:
        yield da
    finally:
        await da.close()


def _cache_stats(da: DataAccess) -> CacheStats:
    if da.cache is None:
        raise RuntimeError("this DataAccess has no cache (redis_url missing)")
    return da.cache.stats


def _summ(results: list[LoopResult]) -> dict[str, Any]:
    return {
        "rounds": len(results),
        "ops": sum(r.ops for r in results),
        "mean_us": round(pooled_mean_us(results), 2) if any(r.durations for r in results) else None,
        "per_round_mean_us": [round(r.mean_us, 2) for r in results],
        "per_round_p50_us": [round(r.p50_us, 2) for r in results],
        "throughput_per_s": round(pooled_throughput(results), 1),
        "errors": dict(sum((r.errors for r in results), start=Counter())),
    }


# -- 1. cached read vs raw Redis GET ------------------------------------------------------------
async def cached_read_vs_raw_redis(env: BenchEnv) -> float:
    env.progress.step("[1/6] cached read (dataaccess products.get, cache hit) vs raw redis.asyncio GET")
    hot = env.catalogue.product_ids[:200]
    assert env.db.standby and env.db.pgbouncer
    async with open_da(
        env.db.pgbouncer, readers=[env.db.standby], redis_url=env.tier.redis_url, proxy_mode="pgbouncer"
    ) as da:
        for _ in range(2):
            for pid in hot:
                await da.products.get(pid)
        raw = aredis.Redis.from_url(env.tier.redis_url)
        # Info: the same raw GET through a client built like dataaccess's (bounded blocking pool,
        # socket timeouts, health checks), to separate the data layer's own code from those settings.
        same_cfg = create_redis(env.tier.redis_url)
        try:
            template = await _cache_key_template(raw, hot[0])
            raw_keys = [template.format(pid) for pid in hot]
            payload_sizes = [len(await raw.get(k) or b"") for k in raw_keys[:20]]
            stats0 = _cache_stats(da)
            n = env.sizes.seq_ops
            res = await interleaved_many(
                env.sizes.rounds,
                {
                    "dataaccess": lambda: sequential(lambda i: da.products.get(hot[i % len(hot)]), n),
                    "raw": lambda: sequential(lambda i: raw.get(raw_keys[i % len(raw_keys)]), n),
                    "raw_same_client_settings": lambda: sequential(
                        lambda i: same_cfg.get(raw_keys[i % len(raw_keys)]), n
                    ),
                },
            )
            stats1 = _cache_stats(da)
        finally:
            await raw.aclose()
            await same_cfg.aclose()
    ra, rb, rs = res["dataaccess"], res["raw"], res["raw_same_client_settings"]
    hits, misses = stats1.hits - stats0.hits, stats1.misses - stats0.misses
    ratio = paired_ratio(ra, rb, metric="mean_us")
    same_ratio = paired_ratio(ra, rs, metric="mean_us")
    env.extra["cached_read_vs_raw_redis_same_client_settings"] = same_ratio
    env.raw["cached_read"] = {
        "dataaccess": _summ(ra),
        "raw_redis_get": _summ(rb),
        "raw_redis_get_same_client_settings": _summ(rs),
        "vs_same_client_settings": round(same_ratio, 4),
        "client_settings_cost": round(paired_ratio(rs, rb, metric="mean_us"), 4),
        "cache_key_example": raw_keys[0],
        "pooled_mean_ratio": round(pooled_mean_us(ra) / pooled_mean_us(rb), 4),
        "payload_bytes": payload_sizes[0] if payload_sizes else None,
        "hits_during_measure": hits,
        "misses_during_measure": misses,
    }
    return ratio


async def _cache_key_template(raw: aredis.Redis, pid: int) -> str:
    """Find the Redis key dataaccess cached product pid under, as a ``...{}`` template."""
    async for key in raw.scan_iter(match=f"*:{pid}", count=1000):
        k = key.decode()
        if "product" in k:
            return k[: -len(str(pid))] + "{}"
    raise RuntimeError(f"dataaccess did not cache product {pid} in Redis: no key ending in ':{pid}'")


# -- 2. uncached read vs raw asyncpg fetchrow ------------------------------------------------------
async def uncached_read_vs_raw_asyncpg(env: BenchEnv) -> float:
    """dataaccess (no cache, primary) vs raw asyncpg running the same SQL two ways: ``pool.fetchrow``
    on a pool sized like dataaccess's (the headline: both sides pool their connections) and
    ``conn.fetchrow`` on one dedicated connection (the floor; reported as info)."""
    env.progress.step("[2/6] uncached read (dataaccess, no cache) vs raw asyncpg fetchrow, same query")
    ids = env.catalogue.product_ids
    async with open_da(env.db.primary) as da:
        sqls = await _captured_product_sql(env, da, ids[0])
        pool = await asyncpg.create_pool(env.db.primary, min_size=1, max_size=10)
        conn = await asyncpg.connect(env.db.primary)
        try:
            n = env.sizes.seq_ops

            def pid(i: int) -> int:
                return ids[(i * 7919) % len(ids)]

            async def raw(target: asyncpg.Pool | asyncpg.Connection, product_id: int) -> None:
                for sql, nargs in sqls:
                    await target.fetchrow(sql, *([product_id] if nargs else []))

            res = await interleaved_many(
                env.sizes.rounds,
                {
                    "dataaccess": lambda: sequential(lambda i: da.products.get(pid(i)), n),
                    "raw_pool": lambda: sequential(lambda i: raw(pool, pid(i)), n),
                    "raw_connection": lambda: sequential(lambda i: raw(conn, pid(i)), n),
                },
            )
        finally:
            await conn.close()
            await pool.close()
    ra, rp, rc = res["dataaccess"], res["raw_pool"], res["raw_connection"]
    conn_ratio = paired_ratio(ra, rc, metric="mean_us")
    env.raw["uncached_read"] = {
        "dataaccess": _summ(ra),
        "raw_asyncpg_pool_fetchrow": _summ(rp),
        "raw_asyncpg_connection_fetchrow": _summ(rc),
        "vs_dedicated_connection": round(conn_ratio, 4),
        "queries": [s for s, _ in sqls],
        "endpoint": "primary (direct)",
        "note": "headline baseline: asyncpg.create_pool(min_size=1, max_size=10).fetchrow (asyncpg defaults, "
        "which include its reset query on release); vs_dedicated_connection: one connection, no pool",
    }
    env.extra["uncached_read_vs_raw_asyncpg_connection"] = conn_ratio
    return paired_ratio(ra, rp, metric="mean_us")


async def _captured_product_sql(env: BenchEnv, da: DataAccess, pid: int) -> list[tuple[str, int]]:
    """The statement(s) one uncached products.get runs, read back from pg_stat_statements."""
    calls = 25
    db = env.db.name
    await asyncio.to_thread(env.tier.primary.psql, "SELECT pg_stat_statements_reset()", db=db)
    for _ in range(calls):
        await da.products.get(pid)
    out = await asyncio.to_thread(
        env.tier.primary.psql,
        f"SELECT calls, replace(query, E'\\n', ' ') FROM pg_stat_statements s JOIN pg_database d "
        f"ON d.oid = s.dbid WHERE d.datname = '{db}' AND calls >= {calls} ORDER BY calls DESC",
        db=db,
    )
    sqls = []
    for line in out.splitlines():
        _, query = line.split("|", 1)
        if "pg_stat_statements" in query:
            continue
        if "$2" in query:  # normalised constants: cannot replay faithfully
            return [(_PRODUCT_SQL, 1)]
        sqls.append((query, 1 if "$1" in query else 0))
    return sqls or [(_PRODUCT_SQL, 1)]


# -- 3. read throughput: cache + replica vs primary only --------------------------------------------
SEARCH_SHARE = 0.2


NEAR_CACHE_TTL = 1.0
SEARCH_CACHE_TTL = 60.0

_STATEMENTS_SQL = """
SELECT coalesce(sum(s.calls), 0)::bigint AS calls,
       coalesce(sum(s.calls) FILTER (WHERE s.query ~* '^\\s*(with|select)' AND s.query !~ $3), 0)::bigint
           AS reads,
       coalesce(sum(s.calls) FILTER (WHERE s.query ~ $3), 0)::bigint AS probes
FROM pg_stat_statements s
JOIN pg_database d ON d.oid = s.dbid
JOIN pg_roles r ON r.oid = s.userid
WHERE d.datname = $1 AND r.rolname = $2
"""


# Health and freshness probes read the server's state (WAL positions, recovery), no table: the
# writer's WAL position is sampled once per replica_check_interval by every process with replicas,
# however many reads it serves. Counted (statements, probes), but not as data reads.
_PROBE_RE = r"pg_current_wal|pg_last_wal|pg_is_in_recovery|pg_last_xact_replay"


class StatementCounter:
    """All statements the application role ran on one server (pg_stat_statements, read as the
    superuser, so these reads are not counted themselves)."""

    def __init__(self, conn: asyncpg.Connection, db: str, role: str = "app") -> None:
        self.conn, self.db, self.role = conn, db, role

    async def sample(self) -> tuple[int, int, int]:
        """(all statements, data reads, server-state probes)."""
        row = await self.conn.fetchrow(_STATEMENTS_SQL, self.db, self.role, _PROBE_RE)
        return int(row["calls"]), int(row["reads"]), int(row["probes"])


async def read_throughput_cache_replica_vs_primary(env: BenchEnv) -> float:
    """Browse mix: 80% product page (products.get, Zipf keys) + 20% search (products.search, Zipf
    over phrases; each returns up to 20 products). Same mix, same workers on both sides.

    The cache side is dataaccess as a read-heavy service would run it: Redis cache, a near cache
    for hot products (``near_cache_ttl``), reads on the replica. During its rounds the statements
    the application ran are counted on both servers (pg_stat_statements), and server CPU is
    sampled for both sides."""
    env.progress.step("[3/6] read throughput: cache + replica vs primary only (browse mix, Zipf keys)")
    assert env.db.standby and env.db.pgbouncer
    products = ZipfPicker(env.catalogue.product_ids, s=1.1, seed=11)
    terms = ZipfPicker(env.catalogue.search_terms, s=1.1, seed=12)
    conc, secs = env.sizes.tput_concurrency, env.sizes.tput_seconds
    rng = random.Random(13)
    # Superuser connections to the bench database (pg_stat_statements lives there).
    primary_mon = await asyncpg.connect(env.tier.primary.dsn(env.db.name, user=SUPERUSER))
    standby_mon = await asyncpg.connect(env.tier.standby.dsn(env.db.name, user=SUPERUSER))
    counters = {
        "primary": StatementCounter(primary_mon, env.db.name),
        "standby": StatementCounter(standby_mon, env.db.name),
    }
    db_calls = {"primary": 0, "standby": 0}
    probes = {"primary": 0, "standby": 0}
    primary_reads = 0
    fast_ops = 0
    cpu_fast: list[dict[str, float | None]] = []
    cpu_plain: list[dict[str, float | None]] = []
    try:
        async with (
            open_da(
                env.db.pgbouncer,
                readers=[env.db.standby],
                redis_url=env.tier.redis_url,
                proxy_mode="pgbouncer",
                reader_pool_max=conc,
                near_cache_ttl=NEAR_CACHE_TTL,
                # Search results are cached under the catalogue generation, which every catalogue
                # write bumps, so a longer TTL does not serve results older than the last write;
                # it only lengthens the window after a Redis failover that lost the last bump.
                search_cache_ttl=SEARCH_CACHE_TTL,
            ) as fast,
            open_da(env.db.primary, writer_pool_max=conc) as plain,
        ):
            assert fast.cache is not None and fast.cache.near is not None
            await fast.cache.near.wait_live()

            def browse(da: DataAccess) -> Any:
                async def one(w: int, i: int) -> None:
                    if rng.random() < SEARCH_SHARE:
                        await da.products.search(terms.pick())
                    else:
                        await da.products.get(products.pick())

                return one

            async def measured_fast() -> LoopResult:
                nonlocal primary_reads, fast_ops
                before = {k: await c.sample() for k, c in counters.items()}
                cpu0 = await env.cpu.sample()
                res = await closed_loop(browse(fast), concurrency=conc, duration=secs)
                cpu1 = await env.cpu.sample()
                after = {k: await c.sample() for k, c in counters.items()}
                for k in counters:
                    db_calls[k] += after[k][0] - before[k][0]
                primary_reads += after["primary"][1] - before["primary"][1]
                for k in counters:
                    probes[k] += after[k][2] - before[k][2]
                fast_ops += res.ops
                cpu_fast.append(env.cpu.per_1000(cpu0, cpu1, res.ops))
                return res

            async def measured_plain() -> LoopResult:
                cpu0 = await env.cpu.sample()
                res = await closed_loop(browse(plain), concurrency=conc, duration=secs)
                cpu_plain.append(env.cpu.per_1000(cpu0, await env.cpu.sample(), res.ops))
                return res

            async def pk_only(da: DataAccess) -> Any:
                return await closed_loop(
                    lambda w, i: da.products.get(products.pick()), concurrency=conc, duration=secs / 2
                )

            # Warm the caches as a service that has been up for a while has them: the whole
            # catalogue and every search phrase once, then the browse mix itself.
            ids = env.catalogue.product_ids
            for i in range(0, len(ids), 200):
                await fast.products.get_many(ids[i : i + 200])
            for term in env.catalogue.search_terms:
                await fast.products.search(term)
            await closed_loop(browse(fast), concurrency=conc, duration=secs)
            s0 = _cache_stats(fast)
            n0 = fast.cache.near.stats
            routed0 = dict(fast.pools.routed)
            ra, rb = await interleaved(env.sizes.tput_rounds, measured_fast, measured_plain)
            s1 = _cache_stats(fast)
            n1 = fast.cache.near.stats
            routed1 = dict(fast.pools.routed)
            pa, pb = await interleaved(2, lambda: pk_only(fast), lambda: pk_only(plain))
    finally:
        await primary_mon.close()
        await standby_mon.close()
    hits, misses = s1.hits - s0.hits, s1.misses - s0.misses
    near_hits = n1.hits - n0.hits
    per_1000 = 1000.0 / max(1, fast_ops)
    env.extra["db_queries_per_1000_reads"] = round((db_calls["primary"] + db_calls["standby"]) * per_1000, 2)
    env.extra["primary_reads_per_1000_reads"] = round(primary_reads * per_1000, 2)
    env.raw["read_throughput"] = {
        "mix": {"products.get": 1 - SEARCH_SHARE, "products.search": SEARCH_SHARE},
        "cache_replica": _summ(ra),
        "primary_only": _summ(rb),
        "concurrency": conc,
        "zipf_s": 1.1,
        "near_cache_ttl_s": NEAR_CACHE_TTL,
        "top_1pct_products_share": round(products.top_share(0.01), 3),
        "cache_hit_ratio": round(hits / max(1, hits + misses), 4),
        "near_cache_hits": near_hits,
        "near_cache_stats": n1.__repr__(),
        "redis_hits": hits,
        "misses": misses,
        "reads_measured": fast_ops,
        "statements_on_servers": db_calls,
        "primary_select_statements": primary_reads,
        "of_which_health_probes": probes,
        "client_routed_during_measure": {k: routed1[k] - routed0.get(k, 0) for k in routed1},
        "server_cpu_ms_per_1000_reads": {
            "cache_replica": _median_cpu(cpu_fast),
            "primary_only": _median_cpu(cpu_plain),
        },
        "pk_lookup_only": {
            "cache_replica": _summ(pa),
            "primary_only": _summ(pb),
            "ratio": round(paired_ratio(pa, pb, metric="throughput"), 4),
        },
    }
    return paired_ratio(ra, rb, metric="throughput")


# -- 4. flash sale: group commit vs SELECT ... FOR UPDATE (and the textbook alternatives) -------
FLASH_POOL = 20
MAIN_VARIANTS = ("dataaccess", "dataaccess_redis_gate", "select_for_update")
ALTERNATIVES = {
    "skip_locked": SkipLockedSlots,
    "advisory_trylock": AdvisoryTryLock,
    "block_reservations": BlockReservations,
}


async def flash_sale(env: BenchEnv, buyers: int) -> tuple[float, float, int]:
    """Sell one hot SKU's stock to ``buyers`` concurrent buyers (1 unit per order, new idempotency
    key each, every buyer retries until told "sold out"); orders/s = accepted / time until every
    buyer is done (the sold-out herd included). Variants, interleaved per round: dataaccess
    (group commit), dataaccess with the Redis stock gate, naive ``SELECT ... FOR UPDATE``; then
    the textbook alternatives (``SKIP LOCKED`` slots, advisory try-lock, block reservations). All
    through PgBouncer with the same pool size. Latency per accepted order (p50/p99) and server CPU
    per 1,000 orders are recorded per variant.

    Returns (dataaccess/naive, gated/naive, oversold units over every variant).
    """
    stock = env.sizes.flash_stock[buyers]
    env.progress.step(f"[4/6] flash sale: {buyers} concurrent buyers, one hot SKU, stock {stock} per round")
    assert env.db.pgbouncer
    users = env.catalogue.user_ids
    checks: list[dict[str, Any]] = []
    common: dict[str, Any] = {
        "proxy_mode": "pgbouncer",
        "writer_pool_max": FLASH_POOL,
        "acquire_timeout": 60.0,
        "command_timeout": 60.0,
    }
    latencies: dict[str, list[float]] = {k: [] for k in (*MAIN_VARIANTS, *ALTERNATIVES)}
    cpu_ms: dict[str, list[dict[str, float | None]]] = {k: [] for k in latencies}
    async with (
        open_da(env.db.pgbouncer, **common) as da,
        open_da(env.db.pgbouncer, redis_url=env.tier.redis_url, inventory_redis_gate=True, **common) as gated,
    ):
        pool = await asyncpg.create_pool(
            env.db.pgbouncer, min_size=1, max_size=FLASH_POOL, statement_cache_size=0
        )
        try:
            await create_tables(pool)

            async def sell_out(kind: str, units: int = stock, warmup: bool = False) -> LoopResult:
                client = gated if kind == "dataaccess_redis_gate" else da
                product = await client.products.create(
                    sku=f"HOT-{uuid.uuid4().hex[:12]}",
                    name="Flash sale console",
                    price_cents=49_900,
                    stock=units,
                )
                if kind == "dataaccess_redis_gate":
                    assert gated.stock_gate is not None
                    await gated.stock_gate.set_available(product.id, units)
                alt = ALTERNATIVES[kind](pool, product.id, 49_900, units) if kind in ALTERNATIVES else None
                if alt is not None:
                    await alt.prepare()
                accepted = 0
                errors: Counter[str] = Counter()
                durations: list[float] = []

                async def buy(uid: int) -> None:
                    key = uuid.uuid4().hex
                    if kind == "select_for_update":
                        await naive_place_order(pool, uid, product.id, 1, key)
                    elif alt is not None:
                        await alt.place(uid, key)
                    else:
                        await client.orders.place(uid, [(product.id, 1)], idempotency_key=key)

                async def buyer(w: int) -> None:
                    nonlocal accepted
                    uid = users[w % len(users)]
                    pc = time.perf_counter
                    while errors.total() < 50 * buyers:
                        t0 = pc()
                        try:
                            await buy(uid)
                        except (OutOfStock, NaiveSoldOutError):
                            return
                        except Exception as exc:
                            errors[type(exc).__name__] += 1
                            continue
                        durations.append(pc() - t0)
                        accepted += 1

                cpu0 = await env.cpu.sample()
                t0 = time.perf_counter()
                await asyncio.gather(*(buyer(w) for w in range(buyers)))
                elapsed = time.perf_counter() - t0
                cpu1 = await env.cpu.sample()
                remaining = await alt.remaining() if alt is not None else None
                check = await _check_sale(pool, product.id, units, accepted, remaining=remaining)
                check.update(kind=kind, elapsed_s=round(elapsed, 3), errors=dict(errors))
                check["warmup"] = warmup
                checks.append(check)
                if not warmup:
                    latencies[kind].extend(durations)
                    cpu_ms[kind].append(env.cpu.per_1000(cpu0, cpu1, accepted))
                res = LoopResult(ops=accepted, elapsed=elapsed)
                res.errors.update(errors)
                return res

            results: dict[str, list[LoopResult]] = {k: [] for k in latencies}
            for kind in results:  # unmeasured: fill client pools and PgBouncer's server pool first
                await sell_out(kind, units=max(10, buyers // 5), warmup=True)
            for r in range(env.sizes.flash_rounds):
                order = list(MAIN_VARIANTS) if r % 2 == 0 else list(reversed(MAIN_VARIANTS))
                if r < env.sizes.alt_rounds:
                    order += list(ALTERNATIVES)
                for kind in order:
                    results[kind].append(await sell_out(kind))
        finally:
            await pool.close()
    oversold = sum(c["oversold"] for c in checks)
    ra, rg, rb = results["dataaccess"], results["dataaccess_redis_gate"], results["select_for_update"]
    naive_tput = pooled_throughput(rb)
    env.raw[f"flash_sale_{buyers}"] = {
        "buyers": buyers,
        "stock_per_round": stock,
        "writer_pool": FLASH_POOL,
        "endpoint": "pgbouncer",
        "orders_per_s": {k: round(pooled_throughput(v), 1) for k, v in results.items() if v},
        "vs_select_for_update": {
            k: round(pooled_throughput(v) / naive_tput, 3) for k, v in results.items() if v and naive_tput
        },
        "latency_ms": {k: _latency_ms(v) for k, v in latencies.items() if v},
        "server_cpu_ms_per_1000_orders": {k: _median_cpu(v) for k, v in cpu_ms.items() if v},
        "gate_vs_select_for_update": round(paired_ratio(rg, rb, metric="throughput"), 4),
        "rounds": checks,
        "oversold_by_variant": {k: sum(c["oversold"] for c in checks if c["kind"] == k) for k in results},
        "all_consistent": all(c["consistent"] for c in checks),
    }
    lat = env.raw[f"flash_sale_{buyers}"]["latency_ms"].get("dataaccess", {})
    env.extra[f"flash_sale_p50_ms_{buyers}"] = lat.get("p50", 0.0)
    env.extra[f"flash_sale_p99_ms_{buyers}"] = lat.get("p99", 0.0)
    return paired_ratio(ra, rb, metric="throughput"), paired_ratio(rg, rb, metric="throughput"), oversold


def _latency_ms(durations: list[float]) -> dict[str, float]:
    d = sorted(durations)
    return {
        "p50": round(percentile(d, 50) * 1000, 2),
        "p99": round(percentile(d, 99) * 1000, 2),
        "orders": len(d),
    }


def _median_cpu(samples: list[dict[str, float | None]]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key in samples[0]:
        vals = sorted(v for s in samples if (v := s.get(key)) is not None)
        out[key] = vals[len(vals) // 2] if vals else None
    return out


async def _check_sale(
    pool: asyncpg.Pool, product_id: int, stock: int, acknowledged: int, *, remaining: int | None = None
) -> dict[str, Any]:
    """Oversell and lost-order accounting from the database (the record), not from the client.
    ``remaining``: units left where a variant keeps them outside ``products.stock``."""
    row = await pool.fetchrow(
        "SELECT p.stock AS left, COALESCE(sum(l.quantity), 0) AS sold, count(l.*) AS lines "
        "FROM products p LEFT JOIN order_lines l ON l.product_id = p.id WHERE p.id = $1 GROUP BY p.stock",
        product_id,
    )
    sold = int(row["sold"])
    left = int(row["left"]) if remaining is None else remaining
    return {
        "product_id": product_id,
        "stock": stock,
        "sold_in_db": sold,
        "left_in_db": left,
        "acknowledged": acknowledged,
        "oversold": max(0, sold - stock),
        "consistent": sold + left == stock and int(row["lines"]) == acknowledged,
    }


# -- 5. PgBouncer vs direct ----------------------------------------------------------------------
async def pgbouncer_vs_direct(env: BenchEnv) -> dict[str, float]:
    """Many clients, uncached product reads, through PgBouncer (20 server connections) vs direct
    (one server connection per client). Peak server connections sampled from pg_stat_activity."""
    clients, secs = env.sizes.bouncer_clients, env.sizes.bouncer_seconds
    env.progress.step(f"[5/6] PgBouncer vs direct: {clients} concurrent clients, uncached reads")
    assert env.db.pgbouncer
    ids = env.catalogue.product_ids
    peaks: dict[str, list[int]] = {"pgbouncer": [], "direct": []}
    monitor = await asyncpg.connect(env.tier.primary_admin_dsn)
    try:

        async def run(name: str) -> LoopResult:
            assert env.db.pgbouncer is not None
            mode: ProxyMode = "pgbouncer" if name == "pgbouncer" else "direct"
            dsn = env.db.pgbouncer if name == "pgbouncer" else env.db.primary
            # One side at a time holds connections, so the server-side count is that side's alone.
            app_name = f"bench-{name}"
            async with open_da(
                dsn,
                proxy_mode=mode,
                writer_pool_min=clients,
                writer_pool_max=clients,
                acquire_timeout=30.0,
                application_name=app_name,
            ) as da:
                peak = 0
                done = asyncio.Event()

                async def sample() -> None:
                    nonlocal peak
                    while not done.is_set():
                        n = await monitor.fetchval(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND usename = 'app' "
                            "AND application_name = $2",
                            env.db.name,
                            app_name,
                        )
                        peak = max(peak, int(n))
                        await asyncio.sleep(0.1)

                sampler = asyncio.create_task(sample())
                try:
                    res = await closed_loop(
                        lambda w, i: da.products.get(ids[(w * 1009 + i * 7919) % len(ids)]),
                        concurrency=clients,
                        duration=secs,
                    )
                finally:
                    done.set()
                    await sampler
            peaks[name].append(peak)
            return res

        ra, rb = await interleaved(
            env.sizes.tput_rounds // 2 or 1, lambda: run("pgbouncer"), lambda: run("direct")
        )
    finally:
        await monitor.close()
    out = {
        "throughput_ratio": paired_ratio(ra, rb, metric="throughput"),
        "server_connections_pgbouncer": float(max(peaks["pgbouncer"])),
        "server_connections_direct": float(max(peaks["direct"])),
    }
    env.raw["pgbouncer_vs_direct"] = {
        "clients": clients,
        "pgbouncer": _summ(ra),
        "direct": _summ(rb),
        "server_connections_peak": {k: max(v) for k, v in peaks.items()},
        "pgbouncer_default_pool_size": 20,
    }
    return out
