"""CacheAside against a real Redis: hits/misses, TTL+jitter, corrupt entries, leases, stampede.

The "source of truth" here is a small in-memory stand-in for the DB so each interleaving can be
driven step by step with asyncio.Events; the Redis side is the real server from the tier.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from dataaccess.cache import CacheAside
from dataaccess.redis_client import RedisOptions, create_redis

pytestmark = pytest.mark.integration


def enc(value: dict[str, Any]) -> bytes:
    return json.dumps(value).encode()


def dec(raw: bytes) -> dict[str, Any]:
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value


class Source:
    """Stand-in for the database: a dict plus a load counter."""

    def __init__(self, **rows: dict[str, Any]) -> None:
        self.rows = dict(rows)
        self.loads = 0

    def loader(self, key: str) -> Callable[[], Awaitable[dict[str, Any] | None]]:
        async def load() -> dict[str, Any] | None:
            self.loads += 1
            await asyncio.sleep(0)
            return self.rows.get(key)

        return load


# The cache's logic is under test here, not Redis timeouts (test_cache_outage covers those): a
# command or TLS connect timing out on a starved machine would make the cache fail open.
PATIENT = RedisOptions(socket_timeout=30.0, socket_connect_timeout=30.0)


@pytest.fixture
async def client(tier: Any) -> AsyncIterator[aioredis.Redis]:
    c = create_redis(tier.redis_url, options=PATIENT)
    assert await c.ping()
    yield c
    await c.aclose()


@pytest.fixture
async def cache(client: aioredis.Redis, ns: str) -> AsyncIterator[CacheAside]:
    c = CacheAside(client, namespace=ns, invalidation_grace=0.5)
    yield c
    await c.aclose()


async def get(cache: CacheAside, src: Source, key: str, **kw: Any) -> dict[str, Any] | None:
    kw.setdefault("ttl", 60)
    return await cache.get_or_load(key, src.loader(key), encode=enc, decode=dec, **kw)


async def test_miss_then_hit_uses_namespaced_versioned_key(
    cache: CacheAside, client: aioredis.Redis, ns: str
):
    src = Source(**{"product:42": {"id": 42, "name": "lamp"}})
    assert await get(cache, src, "product:42") == {"id": 42, "name": "lamp"}
    assert await get(cache, src, "product:42") == {"id": 42, "name": "lamp"}
    assert src.loads == 1
    assert await client.get(f"{ns}:cache:v1:product:42") == b"\x01" + enc({"id": 42, "name": "lamp"})
    assert await client.exists(f"{ns}:cache:v1:product:42:lease") == 0  # lease consumed by the fill
    s = cache.stats
    assert (s.hits, s.misses, s.fills, s.loads, s.errors) == (1, 1, 1, 1, 0)


async def test_ttl_has_jitter_within_documented_bounds(client: aioredis.Redis, ns: str):
    cache = CacheAside(client, namespace=ns, ttl_jitter=0.2)
    src = Source(**{f"k:{i}": {"i": i} for i in range(30)})
    for i in range(30):
        await get(cache, src, f"k:{i}", ttl=100)
    pttls = [await client.pttl(f"{ns}:cache:v1:k:{i}") for i in range(30)]
    assert all(80_000 - 1000 <= p <= 100_000 for p in pttls), pttls
    assert max(pttls) - min(pttls) > 1000  # spread, not one fixed TTL


async def test_none_is_cached_only_when_asked(cache: CacheAside, client: aioredis.Redis, ns: str):
    src = Source()
    assert await get(cache, src, "user:1") is None
    assert await get(cache, src, "user:1") is None
    assert src.loads == 2 and await client.exists(f"{ns}:cache:v1:user:1") == 0
    assert await get(cache, src, "user:2", cache_none=True) is None
    assert await get(cache, src, "user:2", cache_none=True) is None
    assert src.loads == 3 and cache.stats.hits == 1


@pytest.mark.parametrize("junk", [b"\xff\xfe garbage", b"\x01{not json", b"\x01[1, 2]"])
async def test_corrupt_entry_is_a_miss_deleted_and_reloaded(
    cache: CacheAside, client: aioredis.Redis, ns: str, junk: bytes
):
    await client.set(f"{ns}:cache:v1:product:7", junk)
    src = Source(**{"product:7": {"id": 7}})
    assert await get(cache, src, "product:7") == {"id": 7}
    assert cache.stats.corrupt == 1 and src.loads == 1
    assert await client.get(f"{ns}:cache:v1:product:7") == b"\x01" + enc({"id": 7})
    assert await get(cache, src, "product:7") == {"id": 7} and src.loads == 1


async def test_invalidate_deletes_value_and_lease(cache: CacheAside, client: aioredis.Redis, ns: str):
    src = Source(**{"p:1": {"v": 1}})
    await get(cache, src, "p:1")
    await client.set(f"{ns}:cache:v1:p:1:lease", b"someone")
    await cache.invalidate("p:1")
    assert await client.exists(f"{ns}:cache:v1:p:1", f"{ns}:cache:v1:p:1:lease") == 0
    assert 0 < await client.pttl(f"{ns}:cache:v1:p:1:inv") <= 500
    assert cache.stats.invalidations == 1


# --------------------------------------------------------------------------- stale-set race


class GatedSource(Source):
    """Loader that reads the row, then parks until the test lets it continue (to fill)."""

    def __init__(self, **rows: dict[str, Any]) -> None:
        super().__init__(**rows)
        self.read_done = asyncio.Event()
        self.proceed = asyncio.Event()

    def loader(self, key: str) -> Callable[[], Awaitable[dict[str, Any] | None]]:
        async def load() -> dict[str, Any] | None:
            self.loads += 1
            row = self.rows.get(key)  # the DB read happens here ...
            self.read_done.set()
            await self.proceed.wait()  # ... and the fill happens after the writer ran
            return row

        return load


async def naive_get(client: aioredis.Redis, key: str, loader: Callable[[], Awaitable[Any]]) -> Any:
    """Textbook cache-aside (GET, load, SET) — what the lease protects against."""
    raw = await client.get(key)
    if raw is not None:
        return json.loads(raw)
    value = await loader()
    await client.set(key, json.dumps(value), ex=60)
    return value


async def test_stale_set_race_reproduced_with_naive_cache_aside(client: aioredis.Redis, ns: str):
    src = GatedSource(**{"product:1": {"price": 100}})
    key = f"{ns}:naive:product:1"
    reader = asyncio.create_task(naive_get(client, key, src.loader("product:1")))
    await src.read_done.wait()  # R has read price=100 from the DB
    src.rows["product:1"] = {"price": 80}  # W commits the new price ...
    await client.delete(key)  # ... and invalidates
    src.proceed.set()  # R now fills with what it read
    assert await reader == {"price": 100}
    assert json.loads(await client.get(key)) == {"price": 100}  # stale value left in Redis: the bug


async def test_stale_set_race_fixed_by_lease(cache: CacheAside, client: aioredis.Redis, ns: str):
    src = GatedSource(**{"product:1": {"price": 100}})
    reader = asyncio.create_task(get(cache, src, "product:1"))
    await src.read_done.wait()  # R holds the lease and has read price=100
    assert await client.exists(f"{ns}:cache:v1:product:1:lease") == 1
    src.rows["product:1"] = {"price": 80}  # W commits ...
    await cache.invalidate("product:1")  # ... and invalidates: value + lease deleted
    src.proceed.set()
    assert await reader == {"price": 100}  # R's own read began before the write: fine to return
    assert await client.exists(f"{ns}:cache:v1:product:1") == 0  # but it could not cache it
    assert cache.stats.stale_fills_rejected == 1 and cache.stats.fills == 0
    fresh = Source(**src.rows)
    assert await get(cache, fresh, "product:1") == {"price": 80}


async def test_read_after_invalidate_does_not_join_older_inflight_load(cache: CacheAside):
    """In-process read-your-writes: a read that starts after invalidate() returned gets a fresh
    load, never the result of a load that began before the write."""
    src = GatedSource(**{"product:1": {"price": 100}})
    before = asyncio.create_task(get(cache, src, "product:1"))
    await src.read_done.wait()  # a load is in flight with the old row
    src.rows["product:1"] = {"price": 80}
    await cache.invalidate("product:1")
    after = asyncio.create_task(get(cache, src, "product:1"))
    await asyncio.sleep(0)
    src.proceed.set()
    assert await before == {"price": 100}  # overlapped the write: either value is correct
    assert await after == {"price": 80}  # started after it: must see the write
    assert src.loads == 2 and cache.stats.coalesced == 0


async def test_stale_fill_from_other_process_rejected(client: aioredis.Redis, tier: Any, ns: str):
    """Reader and writer in different 'processes' (separate pools): same guarantee."""
    other = create_redis(tier.redis_url, options=PATIENT)
    try:
        reader_cache = CacheAside(client, namespace=ns, invalidation_grace=0)
        writer_cache = CacheAside(other, namespace=ns, invalidation_grace=0)
        src = GatedSource(**{"p:9": {"v": 1}})
        reader = asyncio.create_task(get(reader_cache, src, "p:9"))
        await src.read_done.wait()
        src.rows["p:9"] = {"v": 2}
        await writer_cache.invalidate("p:9")
        src.proceed.set()
        await reader
        assert await client.exists(f"{ns}:cache:v1:p:9") == 0
        assert reader_cache.stats.stale_fills_rejected == 1
        # Without a marker (grace=0) the next reader caches the new value right away.
        assert await get(reader_cache, Source(**src.rows), "p:9") == {"v": 2}
        assert await client.get(f"{ns}:cache:v1:p:9") == b"\x01" + enc({"v": 2})
    finally:
        await other.aclose()


async def test_expired_lease_cannot_fill(client: aioredis.Redis, ns: str):
    """A loader slower than lease_ttl loses its lease to a newer reader; its fill is refused."""
    cache = CacheAside(client, namespace=ns, lease_ttl=0.05)
    src = GatedSource(**{"p:3": {"v": "old"}})
    slow = asyncio.create_task(get(cache, src, "p:3"))
    await src.read_done.wait()
    lease_key = f"{ns}:cache:v1:p:3:lease"
    while await client.exists(lease_key):  # wait for the lease to expire in Redis
        await asyncio.sleep(0.01)
    await client.set(lease_key, b"newer-reader-token", px=5000)  # someone else's lease now
    src.proceed.set()
    await slow
    assert await client.exists(f"{ns}:cache:v1:p:3") == 0
    assert cache.stats.stale_fills_rejected == 1


async def test_marker_blocks_fill_from_lagging_source(client: aioredis.Redis, ns: str):
    """A loader that starts after the invalidation but reads a lagging replica must not cache."""
    lagging_replica = Source(**{"p:5": {"price": 100}})  # the write (price 80) not replayed yet

    protected = CacheAside(client, namespace=ns, invalidation_grace=5.0)
    await protected.invalidate("p:5")
    assert await get(protected, lagging_replica, "p:5") == {"price": 100}
    assert await client.exists(f"{ns}:cache:v1:p:5") == 0
    assert protected.stats.fills_skipped == 1

    # Same sequence without the marker: the lagging read gets cached (what the marker prevents).
    unprotected = CacheAside(client, namespace=ns + "x", invalidation_grace=0)
    await unprotected.invalidate("p:5")
    await get(unprotected, lagging_replica, "p:5")
    assert await client.get(f"{ns}x:cache:v1:p:5") == b"\x01" + enc({"price": 100})


@pytest.mark.parametrize("seed", range(5))
async def test_random_interleavings_never_leave_a_stale_value(
    client: aioredis.Redis, tier: Any, ns: str, seed: int
):
    """Readers in two 'processes' and writers race on one key with random yields between the
    DB read and the fill; once everyone is done, Redis holds either nothing or the final row."""
    rng = random.Random(seed)
    other = create_redis(tier.redis_url, options=PATIENT)
    try:
        caches = [
            CacheAside(client, namespace=ns, invalidation_grace=0),
            CacheAside(other, namespace=ns, invalidation_grace=0),
        ]
        db = {"v": 0}

        async def load() -> dict[str, Any]:
            row = dict(db)  # the DB read ...
            for _ in range(rng.randint(0, 6)):  # ... then arbitrary delay before the fill
                await asyncio.sleep(rng.choice([0, 0, 0.001]))
            return row

        async def reader(i: int) -> None:
            for _ in range(rng.randint(1, 4)):
                await caches[i % 2].get_or_load("k", load, ttl=60, encode=enc, decode=dec)
                await asyncio.sleep(rng.choice([0, 0.001]))

        async def writer(i: int) -> None:
            for _ in range(3):
                await asyncio.sleep(rng.choice([0, 0.001, 0.002]))
                db["v"] += 1  # commit ...
                await caches[i % 2].invalidate("k")  # ... then invalidate

        await asyncio.gather(*(reader(i) for i in range(30)), *(writer(i) for i in range(3)))
        raw = await client.get(f"{ns}:cache:v1:k")
        assert raw is None or dec(raw[1:]) == db, (raw, db)
        assert await caches[0].get_or_load("k", load, ttl=60, encode=enc, decode=dec) == db
    finally:
        await other.aclose()


# --------------------------------------------------------------------------- stampede


async def test_stampede_in_process_single_flight(cache: CacheAside):
    src = GatedSource(**{"hot": {"v": 1}})
    callers = [asyncio.create_task(get(cache, src, "hot")) for _ in range(100)]
    await src.read_done.wait()
    # Hold the one load until every other caller has joined it: on a busy machine some callers are
    # still in their Redis GET when the load starts, and releasing early would let them hit the
    # freshly filled cache instead (correct, but not what this test is about).
    async with asyncio.timeout(30):
        while cache.stats.coalesced < 99:
            await asyncio.sleep(0.005)
    src.proceed.set()
    results = await asyncio.gather(*callers)
    assert src.loads == 1
    assert all(r == {"v": 1} for r in results)
    assert cache.stats.coalesced == 99


async def test_stampede_across_processes_loads_once(client: aioredis.Redis, tier: Any, ns: str):
    other = create_redis(tier.redis_url, options=PATIENT)  # separate connection pool = another process
    try:
        a = CacheAside(client, namespace=ns)
        b = CacheAside(other, namespace=ns, lease_wait=30)
        src = GatedSource(**{"hot": {"v": 7}})
        first = [asyncio.create_task(get(a, src, "hot")) for _ in range(50)]
        await src.read_done.wait()  # A holds the lease and is loading
        second = [asyncio.create_task(get(b, src, "hot")) for _ in range(50)]
        while b.stats.lease_waits == 0:  # B found A's lease and is polling
            await asyncio.sleep(0.001)
        src.proceed.set()
        results = await asyncio.gather(*first, *second)
        assert src.loads == 1
        assert all(r == {"v": 7} for r in results)
        assert b.stats.loads == 0 and b.stats.lease_fallbacks == 0
        # Every B caller was served by Redis: its own GET (a caller whose plain GET came back
        # after A's fill) or the one B load it joined, which found A's value.
        assert b.stats.hits >= 1 and b.stats.hits + b.stats.coalesced == 50
    finally:
        await other.aclose()


async def test_stampede_with_slow_loader_is_bounded_by_process_count(
    client: aioredis.Redis, tier: Any, ns: str
):
    """When the lease holder is slower than lease_wait, each other process loads once itself:
    loads are bounded by the number of processes, not by the number of callers."""
    # Patient clients with connections opened up front (see PATIENT). The holder stays gated until
    # both others have loaded, so "slower than lease_wait" holds by construction, not by timing.
    others = [create_redis(tier.redis_url, options=PATIENT) for _ in range(2)]
    try:
        for c in others:
            assert await c.ping()
        caches = [CacheAside(c, namespace=ns, lease_wait=0.01) for c in [client, *others]]
        src = GatedSource(**{"hot": {"v": 1}})
        first = [asyncio.create_task(get(caches[0], src, "hot")) for _ in range(100)]
        await asyncio.wait_for(src.read_done.wait(), 60)
        rest = [asyncio.create_task(get(c, src, "hot")) for c in caches[1:] for _ in range(100)]
        async with asyncio.timeout(60):  # a hang here is a failure, not a stuck run
            while src.loads < 3:  # the two other processes gave up waiting and loaded themselves
                await asyncio.sleep(0.001)
        src.proceed.set()
        results = await asyncio.gather(*first, *rest)
        assert all(r == {"v": 1} for r in results)
        assert src.loads == 3
        assert [c.stats.lease_fallbacks for c in caches] == [0, 1, 1]
        assert await client.get(f"{ns}:cache:v1:hot") == b"\x01" + enc({"v": 1})  # the lease holder filled
    finally:
        for c in others:
            await c.aclose()


async def test_dead_lease_holder_does_not_deadlock(cache: CacheAside, client: aioredis.Redis, ns: str):
    # A "process" took the lease and died: nobody will ever fill or release it.
    await client.set(f"{ns}:cache:v1:orphan:lease", b"dead-process", px=60_000)
    cache.lease_wait = 0.05
    src = Source(orphan={"v": 1})
    assert await get(cache, src, "orphan") == {"v": 1}
    s = cache.stats
    assert (s.lease_waits, s.lease_fallbacks, s.loads, s.fills) == (1, 1, 1, 0)


async def test_loader_error_propagates_and_releases_lease(cache: CacheAside, client: aioredis.Redis, ns: str):
    gate, started = asyncio.Event(), asyncio.Event()

    async def failing() -> dict[str, Any]:
        started.set()  # the loader runs only once the lease is taken
        await gate.wait()
        raise LookupError("db said no")

    callers = [
        asyncio.create_task(cache.get_or_load("bad", failing, ttl=5, encode=enc, decode=dec))
        for _ in range(5)
    ]
    await started.wait()
    assert await client.exists(f"{ns}:cache:v1:bad:lease") == 1
    gate.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, LookupError) for r in results)
    assert await client.exists(f"{ns}:cache:v1:bad:lease") == 0  # other processes need not wait it out


async def test_cancelled_caller_does_not_cancel_shared_load(
    cache: CacheAside, client: aioredis.Redis, ns: str
):
    src = GatedSource(k={"v": 1})
    doomed = asyncio.create_task(get(cache, src, "k"))
    await src.read_done.wait()
    survivor = asyncio.create_task(get(cache, src, "k"))
    await asyncio.sleep(0)
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    src.proceed.set()
    assert await survivor == {"v": 1}
    assert src.loads == 1
    assert await client.exists(f"{ns}:cache:v1:k") == 1


async def test_encoder_failure_serves_value_uncached(cache: CacheAside, client: aioredis.Redis, ns: str):
    def bad_encode(value: Any) -> bytes:
        raise TypeError("not serialisable")

    src = Source(k={"v": 1})
    got = await cache.get_or_load("k", src.loader("k"), ttl=5, encode=bad_encode, decode=dec)
    assert got == {"v": 1}
    assert await client.exists(f"{ns}:cache:v1:k", f"{ns}:cache:v1:k:lease") == 0  # lease released too


async def test_bad_arguments_are_rejected_clearly(cache: CacheAside):
    src = Source()
    with pytest.raises(ValueError, match="ttl"):
        await get(cache, src, "k", ttl=0)
    with pytest.raises(ValueError, match="cache key"):
        await get(cache, src, "has space")
    with pytest.raises(ValueError, match="cache key"):
        await cache.invalidate("")
    assert src.loads == 0


async def test_decode_responses_client_refused(tier: Any):
    c = aioredis.Redis.from_url(tier.redis_url, decode_responses=True)
    try:
        with pytest.raises(ValueError, match="decode_responses"):
            CacheAside(c)
    finally:
        await c.aclose()
