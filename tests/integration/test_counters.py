"""Counters against a real Redis: views per product/day, top-N, unique visitors, rate limits."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from dataaccess.counters import Counters
from dataaccess.errors import Unavailable
from dataaccess.redis_client import RedisOptions, create_redis

pytestmark = pytest.mark.integration

# Days relative to today (UTC), never fixed dates: per-day keys expire ``retention_days`` after
# their day ends, so a fixed date would be written already expired once the calendar moves on.
DAY1 = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0) - timedelta(days=3)
DAY2 = DAY1 + timedelta(days=1)
DAY3 = DAY1 + timedelta(days=2)


@pytest.fixture
def counters(client: aioredis.Redis, ns: str) -> Counters:
    return Counters(client, namespace=ns, retention_days=10)


async def test_views_total_daily_and_window(counters: Counters, client: aioredis.Redis, ns: str):
    await counters.record_view(1, visitor_id="a", at=DAY1)
    await counters.record_views([(1, "a"), (1, "b"), (2, None)], at=DAY2)
    await counters.record_views([(1, None)] * 5, at=DAY3)
    assert await counters.views(1) == 8 and await counters.views(2) == 1
    assert await counters.views_on(1, DAY1.date()) == 1
    assert await counters.views_on(1, DAY2.date()) == 2
    assert await counters.views_on(1, date(2020, 1, 1)) == 0
    assert await counters.views_last(1, days=2, at=DAY3) == 7
    assert await counters.views_last(1, days=3, at=DAY3) == 8
    # Per-day keys expire retention_days after the end of their day; the total never expires.
    day1 = DAY1.strftime("%Y%m%d")
    end_of_day1 = DAY1.replace(hour=0) + timedelta(days=1)
    expected = int((end_of_day1 + timedelta(days=10)).timestamp())
    assert await client.expiretime(f"{ns}:v1:views:1:{day1}") == expected
    assert await client.expiretime(f"{ns}:v1:top:views:{day1}") == expected
    assert await client.ttl(f"{ns}:v1:views:1") == -1


async def test_top_products_today_and_over_window(counters: Counters):
    await counters.record_views([(10, None)] * 3 + [(20, None)] * 5 + [(30, None)], at=DAY1)
    await counters.record_views([(30, None)] * 9 + [(10, None)], at=DAY2)
    assert await counters.top_products(2, at=DAY1) == [(20, 5), (10, 3)]
    assert await counters.top_products(10, at=DAY2) == [(30, 9), (10, 1)]
    assert await counters.top_products(3, days=2, at=DAY2) == [(30, 10), (20, 5), (10, 4)]
    assert await counters.top_products(5, at=DAY3) == []


async def test_unique_visitors_per_day_and_merged(counters: Counters):
    await counters.record_views([(1, f"v{i}") for i in range(100)], at=DAY1)
    await counters.record_views([(2, f"v{i}") for i in range(50, 150)], at=DAY2)
    await counters.record_views([(2, "v1"), (3, "v1")], at=DAY2)  # repeats do not count twice
    day1 = await counters.unique_visitors(at=DAY1)
    both = await counters.unique_visitors(days=2, at=DAY2)
    assert abs(day1 - 100) <= 2  # HyperLogLog: ~0.81% standard error
    assert abs(both - 150) <= 3
    assert await counters.unique_visitors(at=DAY3) == 0


async def test_rate_limit_fixed_window(counters: Counters, client: aioredis.Redis, ns: str):
    results = [await counters.rate_limit("login:alice", limit=3, window=60) for _ in range(5)]
    assert [r.allowed for r in results] == [True, True, True, False, False]
    assert [r.remaining for r in results] == [2, 1, 0, 0, 0]
    assert all(0 < r.reset_after <= 60 for r in results)
    assert 0 < await client.pttl(f"{ns}:v1:ratelimit:login:alice") <= 60_000
    assert (await counters.rate_limit("login:bob", limit=3, window=60)).allowed
    await client.delete(f"{ns}:v1:ratelimit:login:alice")  # window over
    assert (await counters.rate_limit("login:alice", limit=3, window=60)).allowed


async def test_bad_input_rejected_and_nothing_recorded(counters: Counters, client: aioredis.Redis, ns: str):
    with pytest.raises(ValueError, match="product_id"):
        await counters.record_views([(1, "a"), (-5, "b")], at=DAY1)
    with pytest.raises(ValueError, match="visitor_id"):
        await counters.record_view(1, visitor_id="has space", at=DAY1)
    with pytest.raises(ValueError, match="timezone"):
        await counters.record_view(1, at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="days"):
        await counters.top_products(3, days=11)
    with pytest.raises(ValueError, match="limit"):
        await counters.rate_limit("x", limit=0, window=1)
    assert [k async for k in client.scan_iter(match=f"{ns}:*")] == []


async def test_redis_down_recording_fails_open_reads_raise():
    dead = create_redis("redis://127.0.0.1:1/0", options=RedisOptions(retries=0))
    counters = Counters(dead)
    try:
        assert await counters.record_views([(1, "a"), (2, None)]) == 0
        assert counters.dropped == 2
        assert (await counters.rate_limit("x", limit=1, window=1)).allowed is True
        with pytest.raises(Unavailable):
            await counters.views(1)
        strict = Counters(dead, rate_limit_fail_open=False)
        assert (await strict.rate_limit("x", limit=1, window=1)).allowed is False
    finally:
        await dead.aclose()
