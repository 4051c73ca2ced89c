"""The local tier's fault-injection layer: each fault does what it says, against real servers."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
import redis.asyncio as aioredis

from commerce_db.localtier import LocalTier
from commerce_db.localtier.faultproxy import FaultProxy, rewrite_port
from commerce_db.localtier.postgres import SUPERUSER

pytestmark = pytest.mark.integration


def test_rewrite_port_keeps_credentials_and_query() -> None:
    url = "postgresql://app:s%40cret@127.0.0.1:5432/db?sslmode=disable"
    assert rewrite_port(url, 7000) == "postgresql://app:s%40cret@127.0.0.1:7000/db?sslmode=disable"
    assert rewrite_port("redis://127.0.0.1:6379/0", 7001) == "redis://127.0.0.1:7001/0"


def test_arm_rejects_bad_arguments() -> None:
    proxy = FaultProxy("x", 1)
    with pytest.raises(ValueError, match="action"):
        proxy.arm(b"COMMIT", "explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pattern"):
        proxy.arm(b"", "cut")


async def _table(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS fp (k text PRIMARY KEY)")
    finally:
        await conn.close()


async def test_cut_after_commit_commits_but_the_client_loses_the_connection(fault_tier: LocalTier) -> None:
    dsns = fault_tier.dsns()
    await _table(dsns.primary)
    proxy = fault_tier.proxy("pgbouncer")
    conn = await asyncpg.connect(proxy.url(dsns.pgbouncer), statement_cache_size=0)
    key = uuid.uuid4().hex
    proxy.arm(b"COMMIT", "cut")
    with pytest.raises((asyncpg.ConnectionDoesNotExistError, ConnectionError, OSError)):
        async with conn.transaction():
            await conn.execute("INSERT INTO fp VALUES ($1)", key)
    assert proxy.fired == 1
    check = await asyncpg.connect(dsns.primary)
    try:
        assert await check.fetchval("SELECT count(*) FROM fp WHERE k = $1", key) == 1  # it committed
    finally:
        await check.close()
    conn.terminate()


async def test_hang_holds_traffic_until_heal_and_refuse_closes_new_connections(fault_tier: LocalTier) -> None:
    proxy = fault_tier.proxy("redis")
    client = aioredis.Redis.from_url(fault_tier.proxied_redis_url, socket_timeout=0.3, retry_on_timeout=False)
    try:
        assert await client.ping()
        await asyncio.to_thread(proxy.hang)
        with pytest.raises(Exception):  # noqa: B017 - a redis TimeoutError, however wrapped
            await client.set("k", "v")
        await asyncio.to_thread(proxy.heal)
        await client.connection_pool.disconnect()
        assert await client.set("k", "v")
        proxy.refuse()
        await asyncio.to_thread(proxy.cut)
        with pytest.raises(Exception):  # noqa: B017 - connection closed by the "down" server
            await client.get("k")
        proxy.heal()
        assert await client.get("k") == b"v"
    finally:
        await client.aclose()


async def test_delay_and_drop_rules_fire_on_a_redis_command(fault_tier: LocalTier) -> None:
    proxy = fault_tier.proxy("redis")
    client = aioredis.Redis.from_url(fault_tier.proxied_redis_url, socket_timeout=0.5, retry_on_timeout=False)
    try:
        proxy.arm(b"INCR", "drop")
        with pytest.raises(Exception):  # noqa: B017 - the reply never comes
            await client.incr("n")
        assert proxy.fired == 1
        await asyncio.to_thread(proxy.heal)
        await client.connection_pool.disconnect()
        assert await client.get("n") == b"1"  # the command reached the server
    finally:
        await client.aclose()


async def test_detached_wal_receiver_stops_replication_until_attached(fault_tier: LocalTier) -> None:
    dsns = fault_tier.dsns()
    await _table(dsns.primary)
    await asyncio.to_thread(fault_tier.wait_for_standby)
    await asyncio.to_thread(fault_tier.detach_wal_receiver)
    primary = await asyncpg.connect(dsns.primary)
    standby = await asyncpg.connect(dsns.standby)
    try:
        await primary.execute("INSERT INTO fp VALUES ('detached')")
        lsn = await primary.fetchval("SELECT pg_current_wal_lsn()::text")
        await asyncio.sleep(0.3)
        assert await standby.fetchval("SELECT count(*) FROM fp WHERE k = 'detached'") == 0
        await asyncio.to_thread(fault_tier.attach_wal_receiver)
        await asyncio.to_thread(fault_tier.wait_for_standby, lsn)
        assert await standby.fetchval("SELECT count(*) FROM fp WHERE k = 'detached'") == 1
    finally:
        await primary.close()
        await standby.close()


@pytest.mark.fault_tier_options(replication_proxy=True)
async def test_hung_wal_stream_keeps_the_receiver_streaming_but_stale(fault_tier: LocalTier) -> None:
    dsns = fault_tier.dsns()
    await _table(dsns.primary)
    await asyncio.to_thread(fault_tier.wait_for_standby)
    await asyncio.to_thread(fault_tier.hang_wal_stream)
    primary = await asyncpg.connect(dsns.primary)
    admin = await asyncpg.connect(fault_tier.standby.dsn(dsns.name, user=SUPERUSER))
    try:
        await primary.execute("INSERT INTO fp VALUES ('hung')")
        lsn = await primary.fetchval("SELECT pg_current_wal_lsn()::text")
        await asyncio.sleep(0.3)
        assert await admin.fetchval("SELECT status FROM pg_stat_wal_receiver") == "streaming"
        assert await admin.fetchval("SELECT count(*) FROM fp WHERE k = 'hung'") == 0
        await asyncio.to_thread(fault_tier.resume_wal_stream)
        await asyncio.to_thread(fault_tier.wait_for_standby, lsn)
        assert await admin.fetchval("SELECT count(*) FROM fp WHERE k = 'hung'") == 1
    finally:
        await primary.close()
        await admin.close()
