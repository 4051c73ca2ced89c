"""Cache keys and durable keys never share a purgeable namespace (issue 10, defect 3).

When more invalidations are owed than the cache can remember, it purges its own key area on
recovery. Sessions, queue streams (with unprocessed and pending jobs), dead letters, counters and
rate limits of the same namespace must all survive that purge.
"""

from __future__ import annotations

import secrets

import pytest

from dataaccess.cache import CacheAside, CircuitBreaker
from dataaccess.counters import Counters
from dataaccess.queue import Queues
from dataaccess.redis_client import create_redis
from dataaccess.sessions import SessionStore

pytestmark = pytest.mark.integration


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_overflow_purge_keeps_sessions_queues_counters_and_rate_limits(redis_clean: str) -> None:
    ns = "t" + secrets.token_hex(4)
    client = create_redis(redis_clean)
    clock = _Clock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown=1.0, clock=clock)
    cache = CacheAside(
        client, namespace=ns, max_pending_invalidations=1, flush_interval=3600, breaker=breaker
    )
    sessions = SessionStore(client, namespace=ns)
    counters = Counters(client, namespace=ns)
    queues = Queues(client, namespace=ns)
    try:
        # Durable state of every kind, in the cache's namespace.
        session = await sessions.create(7, {"cart": [1, 2]})
        q = queues["emails"]
        await q.ensure_group()
        await q.enqueue({"n": 1})  # will stay pending (delivered, handler fails)

        async def fail(_msg: object) -> None:
            raise RuntimeError("boom")

        await q.process_once("w1", fail, reclaim=False)
        await q.enqueue({"n": 2})  # never delivered
        await counters.record_view(42)
        await counters.rate_limit("login:7", limit=5, window=3600)
        # Something cached, so the purge has work to do.
        cached = await cache.get_or_load("product:1", _load_one, ttl=60, encode=bytes, decode=bytes)
        assert cached == b"v1"

        breaker.record_failure()  # Redis "down": invalidations are queued ...
        await cache.invalidate("product:1", "product:2")  # ... more than remembered -> purge owed
        clock.now += 1.0
        assert await cache.flush_pending() is True
        assert cache.stats.namespace_purges == 1
        assert await client.exists(cache.key("product:1")) == 0  # the cache itself was purged

        assert (await sessions.get(session.id)) is not None
        assert await sessions.count_for_user(7) == 1
        assert await q.pending() == 1
        assert await q.length() == 2
        assert await counters.views(42) == 1
        limited = await counters.rate_limit("login:7", limit=5, window=3600)
        assert limited.remaining == 3  # the window's first hit survived
    finally:
        await cache.aclose()
        await client.aclose()


async def _load_one() -> bytes:
    return b"v1"


def test_cache_keys_cannot_match_durable_patterns() -> None:
    from dataaccess.keys import KeySpace

    cache = KeySpace("cdb", 1, "cache")
    durable = KeySpace("cdb", 1)
    assert cache.pattern() == "cdb:cache:v1:*"
    for kind in ("session", "user_sessions", "queue", "views", "ratelimit", "uv", "top"):
        assert not durable.key(kind, "x").startswith(cache.prefix)
    assert not cache.key("product", 1).startswith(durable.prefix)
