"""The bounded Redis pool of ``create_redis``: free connections are handed out directly (fast path),
an exhausted pool still waits for a released connection, and gives up after ``pool_timeout``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from dataaccess.redis_client import RedisOptions, create_redis

pytestmark = pytest.mark.integration


def _open_connections(pool: Any) -> int:
    return len(pool._in_use_connections) + len(pool._available_connections)


async def test_free_connections_are_reused_and_the_bound_holds(redis_clean: str) -> None:
    client = create_redis(redis_clean, options=RedisOptions(max_connections=2, pool_timeout=5))
    try:
        await client.set("k", b"v")
        for _ in range(20):  # sequential: one connection, taken and returned each time
            assert await client.get("k") == b"v"
        assert _open_connections(client.connection_pool) == 1
        got = await asyncio.gather(*(client.get("k") for _ in range(30)))  # more callers than slots
        assert got == [b"v"] * 30
        assert _open_connections(client.connection_pool) <= 2
    finally:
        await client.aclose()


async def test_exhausted_pool_waits_for_a_release(redis_clean: str) -> None:
    client = create_redis(redis_clean, options=RedisOptions(max_connections=1, pool_timeout=30))
    pool: Any = client.connection_pool
    try:
        await client.set("k", b"v")
        held = await pool.get_connection()  # the only connection

        async def get() -> Any:
            return await client.get("k")

        waiter = asyncio.create_task(get())
        while not pool._condition._waiters:  # the GET is queued on the pool, not failed
            assert not waiter.done(), waiter
            await asyncio.sleep(0)
        await pool.release(held)
        assert await waiter == b"v"
    finally:
        await client.aclose()


async def test_exhausted_pool_gives_up_after_pool_timeout(redis_clean: str) -> None:
    client = create_redis(redis_clean, options=RedisOptions(max_connections=1, pool_timeout=0.2))
    pool = client.connection_pool
    try:
        held = await pool.get_connection()
        with pytest.raises(RedisConnectionError, match="No connection available"):
            await client.get("k")
        await pool.release(held)
        assert await client.get("k") is None  # usable again once the connection is back
    finally:
        await client.aclose()
