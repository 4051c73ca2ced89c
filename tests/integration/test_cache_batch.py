"""The batched miss path (``CacheAside.get_or_load_many``, used by ``products.get_many`` and so by
search results) against a real Redis and PostgreSQL: one source read for all misses, with the
lease guarantees of the single-key path key by key (issue 18).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from dataaccess.cache import CacheAside
from dataaccess.redis_client import create_redis
from tests.integration.conftest import MakeDA

pytestmark = pytest.mark.integration


def enc(value: dict[str, Any]) -> bytes:
    return json.dumps(value).encode()


def dec(raw: bytes) -> dict[str, Any]:
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value


class ManySource:
    """Stand-in for the database with a many-key loader; records every call's keys. With
    ``gated``, each load reads its rows, then parks until ``proceed`` is set."""

    def __init__(self, rows: dict[str, dict[str, Any]], *, gated: bool = False) -> None:
        self.rows = rows
        self.calls: list[list[str]] = []
        self.gated = gated
        self.read_done = asyncio.Event()
        self.proceed = asyncio.Event()

    async def load(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        self.calls.append(sorted(keys))
        found = {k: dict(self.rows[k]) for k in keys if k in self.rows}  # the DB read ...
        if self.gated:
            self.read_done.set()
            await self.proceed.wait()  # ... and the fill after whatever the test does meanwhile
        return found

    def one(self, key: str) -> Any:
        async def load() -> dict[str, Any] | None:
            return (await self.load([key])).get(key)

        return load


@pytest.fixture
async def cache(client: aioredis.Redis, ns: str) -> AsyncIterator[CacheAside]:
    c = CacheAside(client, namespace=ns, invalidation_grace=0.5)
    yield c
    await c.aclose()


async def many(cache: CacheAside, src: ManySource, keys: list[str], **kw: Any) -> dict[str, Any]:
    kw.setdefault("ttl", 60)
    return await cache.get_or_load_many(keys, src.load, encode=enc, decode=dec, **kw)


async def test_misses_are_loaded_in_one_call_and_filled(cache: CacheAside, client: aioredis.Redis, ns: str):
    rows = {f"p:{i}": {"i": i} for i in range(20)}
    src = ManySource(rows)
    keys = [*rows, "p:404", "p:3"]  # an absent key and a duplicate
    got = await many(cache, src, keys)
    assert got == {**rows, "p:404": None}
    assert src.calls == [sorted([*rows, "p:404"])]  # one source read for every miss
    for k, v in rows.items():
        assert await client.get(f"{ns}:cache:v1:{k}") == b"\x01" + enc(v)
    # every lease consumed or released; the absent key is not cached (cache_none=False)
    assert not [k async for k in client.scan_iter(match=f"{ns}:cache:v1:*:lease")]
    assert await client.exists(f"{ns}:cache:v1:p:404") == 0
    s = cache.stats
    assert (s.loads, s.misses, s.fills) == (1, 21, 20)
    assert await many(cache, src, keys) == got  # now hits (the absent key is loaded again)
    assert src.calls[1:] == [["p:404"]]


async def test_absent_keys_cached_when_asked(cache: CacheAside, client: aioredis.Redis, ns: str):
    src = ManySource({"p:1": {"v": 1}})
    assert await many(cache, src, ["p:1", "p:2"], cache_none=True) == {"p:1": {"v": 1}, "p:2": None}
    assert await client.get(f"{ns}:cache:v1:p:2") == b"\x00"
    assert await many(cache, src, ["p:1", "p:2"], cache_none=True) == {"p:1": {"v": 1}, "p:2": None}
    assert len(src.calls) == 1


async def test_only_misses_reach_the_source(cache: CacheAside):
    rows = {f"p:{i}": {"i": i} for i in range(6)}
    src = ManySource(rows)
    await many(cache, src, ["p:0", "p:1", "p:2"])
    assert await many(cache, src, list(rows)) == rows
    assert src.calls[1] == ["p:3", "p:4", "p:5"]


async def test_invalidation_during_the_batch_rejects_only_that_fill(
    cache: CacheAside, client: aioredis.Redis, ns: str
):
    """The stale-set race, batched: a writer commits and invalidates one key while the batch that
    read the old row is in flight; that key is not cached, the others are."""
    src = ManySource({"p:1": {"price": 100}, "p:2": {"price": 5}}, gated=True)
    reader = asyncio.create_task(many(cache, src, ["p:1", "p:2"]))
    await src.read_done.wait()  # leases taken, old rows read
    assert await client.exists(f"{ns}:cache:v1:p:1:lease", f"{ns}:cache:v1:p:2:lease") == 2
    src.rows["p:1"] = {"price": 80}  # the writer commits ...
    await cache.invalidate("p:1")  # ... and invalidates
    src.proceed.set()
    assert await reader == {"p:1": {"price": 100}, "p:2": {"price": 5}}  # began before the write
    assert await client.exists(f"{ns}:cache:v1:p:1") == 0
    assert await client.get(f"{ns}:cache:v1:p:2") == b"\x01" + enc({"price": 5})
    assert cache.stats.stale_fills_rejected == 1 and cache.stats.fills == 1
    src.gated = False
    assert (await many(cache, src, ["p:1"]))["p:1"] == {"price": 80}


async def test_recently_invalidated_key_is_loaded_but_not_filled(client: aioredis.Redis, ns: str):
    """A batch that starts after an invalidation may read a lagging replica: no fill for that key
    within ``invalidation_grace``."""
    cache = CacheAside(client, namespace=ns, invalidation_grace=30.0)
    await cache.invalidate("p:1")
    lagging = ManySource({"p:1": {"price": 100}, "p:2": {"price": 5}})
    assert await many(cache, lagging, ["p:1", "p:2"]) == {"p:1": {"price": 100}, "p:2": {"price": 5}}
    assert await client.exists(f"{ns}:cache:v1:p:1") == 0
    assert await client.exists(f"{ns}:cache:v1:p:2") == 1
    assert cache.stats.fills_skipped == 1 and len(lagging.calls) == 1
    await cache.aclose()


async def test_single_flight_with_the_single_key_path_both_ways(cache: CacheAside):
    """A get_or_load of a key the batch is loading joins the batch; a batch joins a get_or_load
    already loading one of its keys. Each key is read from the source once."""
    src = ManySource({"p:1": {"v": 1}, "p:2": {"v": 2}, "p:3": {"v": 3}}, gated=True)
    batch = asyncio.create_task(many(cache, src, ["p:1", "p:2"]))
    await src.read_done.wait()
    single = asyncio.create_task(cache.get_or_load("p:2", src.one("p:2"), ttl=60, encode=enc, decode=dec))
    async with asyncio.timeout(30):
        while cache.stats.coalesced < 1:
            await asyncio.sleep(0.005)
    src.proceed.set()
    assert await batch == {"p:1": {"v": 1}, "p:2": {"v": 2}}
    assert await single == {"v": 2}
    assert src.calls == [["p:1", "p:2"]]

    src.read_done.clear()
    src.proceed.clear()
    lone = asyncio.create_task(cache.get_or_load("p:3", src.one("p:3"), ttl=60, encode=enc, decode=dec))
    await src.read_done.wait()
    joined = asyncio.create_task(many(cache, src, ["p:1", "p:3"]))
    async with asyncio.timeout(30):
        while cache.stats.coalesced < 2:
            await asyncio.sleep(0.005)
    src.proceed.set()
    assert await joined == {"p:1": {"v": 1}, "p:3": {"v": 3}}
    assert await lone == {"v": 3}
    assert src.calls[1:] == [["p:3"]]  # p:1 was a hit, p:3 joined the lone load


async def test_key_leased_by_another_process_waits_for_its_fill(client: aioredis.Redis, tier: Any, ns: str):
    """Another process holds one key's lease: the batch loads the others at once and polls for
    that one (single-key path), taking the holder's value instead of reading it again."""
    other = create_redis(tier.redis_url)
    try:
        a = CacheAside(client, namespace=ns, lease_wait=30)
        b = CacheAside(other, namespace=ns)
        holder_src = ManySource({"p:1": {"v": 1}}, gated=True)
        holder = asyncio.create_task(
            b.get_or_load("p:1", holder_src.one("p:1"), ttl=60, encode=enc, decode=dec)
        )
        await holder_src.read_done.wait()  # B holds p:1's lease
        src = ManySource({"p:1": {"v": 1}, "p:2": {"v": 2}})
        batch = asyncio.create_task(many(a, src, ["p:1", "p:2"]))
        async with asyncio.timeout(30):
            while a.stats.lease_waits < 1:
                await asyncio.sleep(0.005)
        assert src.calls == [["p:2"]]
        holder_src.proceed.set()
        assert await batch == {"p:1": {"v": 1}, "p:2": {"v": 2}}
        assert await holder == {"v": 1}
        assert src.calls == [["p:2"]] and a.stats.lease_fallbacks == 0
    finally:
        await other.aclose()


async def test_corrupt_entry_is_deleted_and_reloaded(cache: CacheAside, client: aioredis.Redis, ns: str):
    await client.set(f"{ns}:cache:v1:p:7", b"\x01{not json")
    src = ManySource({"p:7": {"id": 7}, "p:8": {"id": 8}})
    # The MGET skips the undecodable entry; the lease script returns it; the single-key path
    # counts it, deletes it and reloads.
    assert await many(cache, src, ["p:7", "p:8"]) == {"p:7": {"id": 7}, "p:8": {"id": 8}}
    assert cache.stats.corrupt == 1
    assert await client.get(f"{ns}:cache:v1:p:7") == b"\x01" + enc({"id": 7})


async def test_loader_error_reaches_every_caller_and_releases_the_leases(
    cache: CacheAside, client: aioredis.Redis, ns: str
):
    gate, started = asyncio.Event(), asyncio.Event()

    async def failing(keys: list[str]) -> dict[str, Any]:
        started.set()
        await gate.wait()
        raise LookupError("db said no")

    batch = asyncio.create_task(cache.get_or_load_many(["a", "b"], failing, ttl=5, encode=enc, decode=dec))
    await started.wait()
    joined = asyncio.create_task(cache.get_or_load("b", _never, ttl=5, encode=enc, decode=dec))
    async with asyncio.timeout(30):
        while cache.stats.coalesced < 1:
            await asyncio.sleep(0.005)
    gate.set()
    for task in (batch, joined):
        with pytest.raises(LookupError):
            await task
    assert await client.exists(f"{ns}:cache:v1:a:lease", f"{ns}:cache:v1:b:lease") == 0


async def _never() -> dict[str, Any]:
    raise AssertionError("a caller that joined an in-flight load must not load itself")


async def test_cancelled_caller_does_not_cancel_the_batch(cache: CacheAside, client: aioredis.Redis, ns: str):
    src = ManySource({"p:1": {"v": 1}}, gated=True)
    doomed = asyncio.create_task(many(cache, src, ["p:1"]))
    await src.read_done.wait()
    survivor = asyncio.create_task(cache.get_or_load("p:1", src.one("p:1"), ttl=60, encode=enc, decode=dec))
    async with asyncio.timeout(30):
        while cache.stats.coalesced < 1:
            await asyncio.sleep(0.005)
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    src.proceed.set()
    assert await survivor == {"v": 1}
    assert len(src.calls) == 1 and await client.exists(f"{ns}:cache:v1:p:1") == 1


async def test_redis_down_fails_open_with_one_load() -> None:
    dead = create_redis("redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        cache = CacheAside(dead, namespace="down")
        src = ManySource({"p:1": {"v": 1}, "p:2": {"v": 2}})
        assert await many(cache, src, ["p:1", "p:2", "p:3"]) == {
            "p:1": {"v": 1},
            "p:2": {"v": 2},
            "p:3": None,
        }
        assert src.calls == [["p:1", "p:2", "p:3"]]
        assert cache.stats.errors >= 1 and cache.stats.fills == 0
        await cache.aclose()
    finally:
        await dead.aclose()


# --------------------------------------------------------------------------- through DataAccess


async def test_get_many_uncached_reads_the_database_once(make_da: MakeDA) -> None:
    """Search results are hydrated by get_many: 20 uncached products cost one query (before:
    one per product), the next call none."""
    da = await make_da()
    await da.migrate()
    ids = [
        (await da.products.create(sku=f"B{i}", name=f"Batch item {i}", price_cents=100 + i, stock=i)).id
        for i in range(20)
    ]
    assert da.cache is not None
    await da.cache.invalidate(*(f"product:{i}" for i in ids))
    routed = sum(da.pools.routed.values())
    got = await da.products.get_many([*reversed(ids), 10**12])
    assert [p.id for p in got] == list(reversed(ids))  # order kept, the unknown id skipped
    assert [p.price_cents for p in got] == [100 + i for i in reversed(range(20))]
    assert sum(da.pools.routed.values()) - routed == 1
    again = await da.products.get_many([*ids, 10**12])
    assert again == list(reversed(got)) and sum(da.pools.routed.values()) - routed == 2  # the unknown id only
    assert await da.products.get_many(ids[:5]) == again[:5]
    assert sum(da.pools.routed.values()) - routed == 2


async def test_get_many_reads_other_processes_writes_with_replay_paused(
    make_da: MakeDA, paused: Any, tier: Any
) -> None:
    """Read-your-writes across processes for the batched path: with the standby's replay paused,
    B's batched miss for products A just changed is routed to a source that has the write, and
    B's cached copies are gone; products nobody wrote still come from the standby."""
    a = await make_da()
    b = await make_da()
    await a.migrate()
    ps = [
        await a.products.create(sku=f"R{i}", name=f"Repriced {i}", price_cents=100, stock=1) for i in range(6)
    ]
    ids = [p.id for p in ps]
    await asyncio.to_thread(tier.wait_for_standby)
    assert [p.price_cents for p in await b.products.get_many(ids)] == [100] * 6  # cached by B
    paused()
    for pid in ids[:3]:
        await a.products.update_price(pid, 250)
    assert b.cache is not None
    await b.cache.invalidate(*(f"product:{pid}" for pid in ids[3:]))  # the rest uncached too
    replica_before = b.pools.routed["replica"]
    got = await b.products.get_many(ids)
    assert [p.price_cents for p in got] == [250, 250, 250, 100, 100, 100]
    assert b.pools.routed["replica"] == replica_before  # one read, on the writer (markers)
    # Products nobody wrote since the pause: the batched miss still reads the standby.
    await b.cache.invalidate(*(f"product:{pid}" for pid in ids[3:]))
    assert [p.price_cents for p in await b.products.get_many(ids[3:])] == [100] * 3
    assert b.pools.routed["replica"] == replica_before + 1


async def test_loader_error_does_not_strand_a_key_waiting_for_another_process(
    client: aioredis.Redis, tier: Any, ns: str
) -> None:
    """The batch's own load fails while one of its keys waits for another process's fill: the
    failed keys get the error, the waiting key still gets the holder's value."""
    other = create_redis(tier.redis_url)
    try:
        a = CacheAside(client, namespace=ns, lease_wait=30)
        b = CacheAside(other, namespace=ns)
        holder_src = ManySource({"p:1": {"v": 1}}, gated=True)
        holder = asyncio.create_task(
            b.get_or_load("p:1", holder_src.one("p:1"), ttl=60, encode=enc, decode=dec)
        )
        await holder_src.read_done.wait()  # B holds p:1's lease

        async def failing(keys: list[str]) -> dict[str, Any]:
            raise LookupError(f"db said no to {keys}")

        batch = asyncio.create_task(
            a.get_or_load_many(["p:1", "p:2"], failing, ttl=60, encode=enc, decode=dec)
        )
        waiter = asyncio.create_task(a.get_or_load("p:1", _never, ttl=60, encode=enc, decode=dec))
        async with asyncio.timeout(30):
            while a.stats.lease_waits < 1 or a.stats.coalesced < 1:
                await asyncio.sleep(0.005)
        holder_src.proceed.set()
        with pytest.raises(LookupError, match="p:2"):
            await batch
        assert await waiter == {"v": 1}  # joined p:1's wait, which the failure did not abandon
        assert await holder == {"v": 1}
    finally:
        await other.aclose()


@pytest.mark.parametrize("seed", range(2))
async def test_concurrent_writers_and_batched_readers_leave_no_stale_cache_entry(
    make_da: MakeDA, tier: Any, seed: int
) -> None:
    """Three processes share Redis: one reprices products while two others keep reading
    overlapping sets with get_many (batched misses, fills racing the invalidations). Once the
    writer stops, every process reads every product's committed price, from the cache or not."""
    import random

    rng = random.Random(seed)
    writer = await make_da()
    readers = [await make_da(), await make_da()]
    await writer.migrate()
    ids = [
        (await writer.products.create(sku=f"S{seed}-{i}", name=f"Race {i}", price_cents=1, stock=1)).id
        for i in range(12)
    ]
    await asyncio.to_thread(tier.wait_for_standby)
    stop = asyncio.Event()

    async def write() -> None:
        for n in range(2, 42):
            await writer.products.update_price(rng.choice(ids), n)
            await asyncio.sleep(rng.choice([0, 0, 0.001, 0.003]))
        stop.set()

    async def read(da: Any) -> None:
        while not stop.is_set():
            await da.products.get_many(rng.sample(ids, rng.randint(1, len(ids))))
            await asyncio.sleep(rng.choice([0, 0.001]))

    await asyncio.gather(write(), *(read(da) for da in readers))
    committed = {p.id: p.price_cents for p in await writer.products.get_many(ids)}
    check = await make_da(redis_url=None)  # no cache at all: the database's answer
    assert committed == {p.id: p.price_cents for p in await check.products.get_many(ids)}
    for da in readers:
        for _ in range(2):  # the second read is served from whatever the first one cached
            assert {p.id: p.price_cents for p in await da.products.get_many(ids)} == committed


async def test_many_keys_are_split_into_bounded_batches(cache: CacheAside, client: aioredis.Redis, ns: str):
    """A Redis script blocks the server while it runs: 2,500 keys go as batches of at most
    MAX_BATCH, each with one loader call, and every key is still served and filled."""
    from dataaccess.cache import MAX_BATCH

    rows = {f"k:{i}": {"i": i} for i in range(2 * MAX_BATCH + 500)}
    src = ManySource(rows)
    assert await many(cache, src, list(rows)) == rows
    assert sorted(len(c) for c in src.calls) == [500, MAX_BATCH, MAX_BATCH]
    assert cache.stats.fills == len(rows)
    assert await many(cache, src, list(rows)) == rows and len(src.calls) == 3


async def test_get_many_with_redis_hung_mid_call_is_served_from_the_database(fault_tier: Any) -> None:
    """Redis stops answering (every byte held) while get_many needs it: the batched path fails
    open after the socket timeout and returns the database's rows; once Redis answers again the
    next call fills the cache."""
    from dataaccess import DataAccess, Settings

    proxy = fault_tier.proxy("redis")
    da = await DataAccess.connect(
        Settings(
            writer_dsn=fault_tier.dsns().primary,
            redis_url=fault_tier.proxied_redis_url,
            redis_socket_timeout=0.5,
        )
    )
    try:
        await da.migrate()
        ps = [
            await da.products.create(sku=f"H{i}", name=f"Hung {i}", price_cents=10 + i, stock=1)
            for i in range(5)
        ]
        await asyncio.to_thread(proxy.hang)
        try:
            got = await da.products.get_many([p.id for p in ps])
        finally:
            await asyncio.to_thread(proxy.heal)
        assert got == ps
        assert da.cache is not None and da.cache.stats.errors >= 1
        fills = da.cache.stats.fills
        for _ in range(100):  # the breaker lets Redis back in after its cooldown
            assert await da.products.get_many([p.id for p in ps]) == ps
            if da.cache.stats.fills > fills:
                break
            await asyncio.sleep(0.1)
        assert da.cache.stats.fills >= fills + 5
    finally:
        await da.close()
