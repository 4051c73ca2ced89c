"""What TLS costs: the same raw clients over the tier's TLS and over plaintext, side by side.

The bench's tier runs TLS (verify-full, ``rediss://``), like production; its headline ratios compare
the data layer with raw asyncpg / redis-py over that same TLS. This scenario adds what TLS itself
costs, so the two are not confused: a second, minimal local tier in the named plaintext mode
(PostgreSQL primary + Redis, same binaries and configuration otherwise) is started next to it for
the duration of the scenario, and the same operations run against both in alternating rounds
(ABBA), on the same machine at the same time:

* a Redis GET of the same ~200-byte value, and a product read (``fetchrow`` by primary key) on one
  dedicated asyncpg connection: the per-operation cost of encryption on an open connection;
* opening a connection: ``asyncpg.connect`` + close (SCRAM in both; TLS adds the handshake and,
  with the DSN's ``sslrootcert``, a CA parse per connection, which a shared ``SSLContext`` avoids)
  and a new redis-py client + PING + close (TLS adds the handshake).

Each figure is the median over rounds of the paired TLS/plaintext mean-latency ratio.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import asyncpg
import redis.asyncio as aredis

from commerce_db.bench.measure import LoopResult, interleaved_many, paired_ratio, pooled_mean_us, sequential
from commerce_db.bench.seed import seed_catalogue
from commerce_db.localtier import LocalTier
from dataaccess import DataAccess, Settings

_KEY = "bench:tls-cost"
_VALUE = b"\x01" + b'{"id": 1, "sku": "SKU-000001", "name": "wireless headphones", "price": 4999}' * 3
_SQL = "SELECT id, sku, name, price_cents, stock, version FROM products WHERE id = $1"

KEYS: tuple[tuple[str, str], ...] = (
    ("tls_vs_plaintext_raw_redis_get", "raw redis-py GET, open connection"),
    ("tls_vs_plaintext_raw_asyncpg_fetchrow", "raw asyncpg fetchrow, open connection"),
    ("tls_vs_plaintext_asyncpg_connect", "asyncpg.connect + close, DSN with sslrootcert"),
    ("tls_shared_context_vs_plaintext_asyncpg_connect", "asyncpg.connect, one SSLContext"),
    ("tls_vs_plaintext_redis_connect", "new redis-py client + PING + close"),
)
"""Result keys this scenario adds (all informational: TLS/plaintext ratios, >= 1 means TLS is slower)."""


async def _products(dsn: str, n: int) -> list[int]:
    conn = await asyncpg.connect(dsn)
    try:
        return [int(r["id"]) for r in await conn.fetch("SELECT id FROM products ORDER BY id LIMIT $1", n)]
    finally:
        await conn.close()


async def tls_cost(tls_tier: LocalTier, tls_dsn: str, *, rounds: int, seq_ops: int) -> dict[str, Any]:
    """Run the comparison; returns ``{"ratios": {key: value}, "detail": {...}}``.

    :param tls_tier: the bench's (TLS) tier; its Redis and ``tls_dsn``'s database are read, and one
        key (``bench:tls-cost``) is written to its Redis.
    :param tls_dsn: a database on it with the dataaccess schema and seeded products.
    :param rounds: ABBA rounds per comparison. :param seq_ops: operations per round (connects: 1/10).
    """
    if tls_tier.tls is None:
        raise ValueError("tls_cost needs the bench tier in its TLS transport")
    plain_tier = LocalTier(transport="plaintext", standby=False, pgbouncer=False, redis_replica=False)
    await asyncio.to_thread(plain_tier.start)
    try:
        plain_db = await asyncio.to_thread(plain_tier.create_database, "bench_plain")
        async with DataAccess.connect(Settings(writer_dsn=plain_db.primary)) as da:
            await da.migrate()
        await seed_catalogue(plain_db.primary, products=500, users=10)
        return await _measure(tls_tier, tls_dsn, plain_tier, plain_db.primary, rounds=rounds, seq_ops=seq_ops)
    finally:
        await asyncio.to_thread(plain_tier.stop)


async def _measure(
    tls_tier: LocalTier, tls_dsn: str, plain_tier: LocalTier, plain_dsn: str, *, rounds: int, seq_ops: int
) -> dict[str, Any]:
    assert tls_tier.tls is not None
    shared_ctx = ssl.create_default_context(cafile=str(tls_tier.tls.ca_cert))
    ids = {"tls": await _products(tls_dsn, 200), "plain": await _products(plain_dsn, 200)}
    redis_urls = {"tls": tls_tier.redis_url, "plain": plain_tier.redis_url}
    rclients = {k: aredis.Redis.from_url(u) for k, u in redis_urls.items()}
    # ssl=False on the plaintext side: asyncpg's default "prefer" would first ask for TLS and be
    # turned down, a round trip no plaintext deployment pays.
    conns = {"tls": await asyncpg.connect(tls_dsn), "plain": await asyncpg.connect(plain_dsn, ssl=False)}
    n_connect = max(3, seq_ops // 10)
    try:
        for client in rclients.values():
            await client.set(_KEY, _VALUE)

        def get(side: str) -> Any:
            return lambda: sequential(lambda i: rclients[side].get(_KEY), seq_ops)

        def fetch(side: str) -> Any:
            pool = ids[side]
            return lambda: sequential(lambda i: conns[side].fetchrow(_SQL, pool[i % len(pool)]), seq_ops)

        async def pg_connect(dsn: str, **kw: Any) -> None:
            conn = await asyncpg.connect(dsn, **kw)
            await conn.close()

        async def redis_connect(url: str) -> None:
            client = aredis.Redis.from_url(url)
            try:
                await client.ping()
            finally:
                await client.aclose()

        ops = await interleaved_many(
            rounds,
            {
                "get_tls": get("tls"),
                "get_plain": get("plain"),
                "fetch_tls": fetch("tls"),
                "fetch_plain": fetch("plain"),
            },
        )
        connects = await interleaved_many(
            rounds,
            {
                "pg_tls": lambda: sequential(lambda i: pg_connect(tls_dsn), n_connect),
                "pg_tls_shared_context": lambda: sequential(
                    lambda i: pg_connect(tls_dsn, ssl=shared_ctx), n_connect
                ),
                "pg_plain": lambda: sequential(lambda i: pg_connect(plain_dsn, ssl=False), n_connect),
                "redis_tls": lambda: sequential(lambda i: redis_connect(redis_urls["tls"]), n_connect),
                "redis_plain": lambda: sequential(lambda i: redis_connect(redis_urls["plain"]), n_connect),
            },
        )
    finally:
        for conn in conns.values():
            await conn.close()
        for client in rclients.values():
            await client.delete(_KEY)
            await client.aclose()
    res: dict[str, list[LoopResult]] = {**ops, **connects}
    ratios = {
        "tls_vs_plaintext_raw_redis_get": paired_ratio(res["get_tls"], res["get_plain"], metric="mean_us"),
        "tls_vs_plaintext_raw_asyncpg_fetchrow": paired_ratio(
            res["fetch_tls"], res["fetch_plain"], metric="mean_us"
        ),
        "tls_vs_plaintext_asyncpg_connect": paired_ratio(res["pg_tls"], res["pg_plain"], metric="mean_us"),
        "tls_shared_context_vs_plaintext_asyncpg_connect": paired_ratio(
            res["pg_tls_shared_context"], res["pg_plain"], metric="mean_us"
        ),
        "tls_vs_plaintext_redis_connect": paired_ratio(
            res["redis_tls"], res["redis_plain"], metric="mean_us"
        ),
    }
    detail = {
        "mean_us": {name: round(pooled_mean_us(r), 1) for name, r in res.items()},
        "errors": {name: sum(sum(x.errors.values()) for x in r) for name, r in res.items()},
        "plaintext_tier": "LocalTier(transport='plaintext', standby=False, pgbouncer=False, "
        "redis_replica=False)",
    }
    return {"ratios": ratios, "detail": detail}
