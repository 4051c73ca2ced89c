"""Fault drills under steady load through dataaccess (marker ``drill``).

Each drill runs order writers and product readers against a private LocalTier, injects one
fault, recovers, and then checks against the database:
  * no acknowledged order lost (every key the client got an Order for has that order in the DB),
  * none duplicated (one order per idempotency key; a client retries a failed attempt with the
    same key, as a real client must when the outcome is unknown),
  * stock accounting exact (units sold in order lines == stock decrement),
  * error budget: client-visible failures only inside the outage window
    [fault injected, first success after recovery + grace],
and prints the measured recovery time. No timing is asserted (the box is shared); every wait has
a generous deadline so a hung recovery fails the test instead of hanging CI.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest

from commerce_db.localtier import LocalTier
from dataaccess import DataAccess, Settings

pytestmark = [pytest.mark.drill, pytest.mark.timeout(120)]

STOCK = 1_000_000
GRACE = 2.0  # seconds after the first post-recovery success during which stragglers may still fail
RECOVERY_DEADLINE = 45.0
KEY_DEADLINE = 60.0  # a client gives up on one idempotency key after this long (outcome then unknown)


@dataclass
class LoadStats:
    acked: dict[str, int] = field(default_factory=dict)
    abandoned: list[str] = field(default_factory=list)
    failures: list[tuple[float, str, str]] = field(default_factory=list)  # (t, kind, exception)
    successes: list[float] = field(default_factory=list)
    reads_ok: int = 0


class SteadyLoad:
    """Order writers (retrying each idempotency key until it succeeds) plus product readers."""

    def __init__(
        self,
        da: DataAccess,
        user_id: int,
        product_id: int,
        read_ids: list[int],
        *,
        writers: int = 6,
        readers: int = 4,
    ) -> None:
        self.da = da
        self.user_id = user_id
        self.product_id = product_id
        self.read_ids = read_ids
        self.stats = LoadStats()
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(self._writer()) for _ in range(writers)]
        self._tasks += [asyncio.create_task(self._reader(i)) for i in range(readers)]

    async def _writer(self) -> None:
        while not self._stop.is_set():
            key = f"ack-{uuid.uuid4().hex}"  # the prefix lets a drill arm a fault on the order's Bind
            first = time.monotonic()
            while True:  # same key until it succeeds: the outcome of a failed attempt is unknown
                try:
                    order = await self.da.orders.place(
                        self.user_id, [(self.product_id, 1)], idempotency_key=key
                    )
                except Exception as exc:
                    self.stats.failures.append((time.monotonic(), "order", type(exc).__name__))
                    if time.monotonic() - first > KEY_DEADLINE:
                        self.stats.abandoned.append(key)
                        break
                    await asyncio.sleep(0.05)
                    continue
                self.stats.acked[key] = order.id
                self.stats.successes.append(time.monotonic())
                break
            await asyncio.sleep(0.005)

    async def _reader(self, n: int) -> None:
        rng = random.Random(n)
        while not self._stop.is_set():
            try:
                await self.da.products.get(rng.choice(self.read_ids))
                self.stats.reads_ok += 1
            except Exception as exc:
                self.stats.failures.append((time.monotonic(), "read", type(exc).__name__))
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.002)

    async def wait_for_orders(self, n: int, timeout: float = RECOVERY_DEADLINE) -> None:
        """Wait until n more orders have been acknowledged (steady state reached / resumed)."""
        target = len(self.stats.acked) + n
        deadline = time.monotonic() + timeout
        while len(self.stats.acked) < target:
            assert time.monotonic() < deadline, f"load made no progress: {self.stats.failures[-5:]}"
            await asyncio.sleep(0.02)

    async def first_success_after(self, t: float, timeout: float = RECOVERY_DEADLINE) -> float:
        deadline = time.monotonic() + timeout
        while True:
            after = [s for s in self.stats.successes if s > t]
            if after:
                return min(after)
            assert time.monotonic() < deadline, (
                f"no order succeeded after the fault: {self.stats.failures[-5:]}"
            )
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.wait_for(asyncio.gather(*self._tasks), timeout=KEY_DEADLINE + 10)


async def _setup(
    tier: LocalTier,
    writer_dsn: str,
    *,
    proxy_mode: str,
    readers: list[str] | None = None,
    redis_url: str | None = None,
) -> tuple[DataAccess, int, int, list[int]]:
    settings = Settings(
        writer_dsn=writer_dsn,
        reader_dsns=tuple(readers or ()),
        redis_url=redis_url or tier.redis_url,
        proxy_mode=proxy_mode,  # type: ignore[arg-type]
        connect_timeout=1.0,
        command_timeout=5.0,
        retry_attempts=8,
        retry_max_delay=1.0,
    )
    da = await DataAccess.connect(settings)
    await da.migrate()
    user = await da.users.create(email=f"drill-{uuid.uuid4().hex[:8]}@example.com", name="Drill")
    product = await da.products.create(
        sku=f"DRILL-{uuid.uuid4().hex[:8]}", name="Drill item", price_cents=100, stock=STOCK
    )
    others = [
        (
            await da.products.create(
                sku=f"R-{uuid.uuid4().hex[:8]}", name=f"Read item {i}", price_cents=5, stock=1
            )
        ).id
        for i in range(20)
    ]
    return da, user.id, product.id, others


async def _verify(dsn: str, stats: LoadStats, product_id: int) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT idempotency_key, count(*) AS n, min(id) AS id FROM orders "
            "WHERE idempotency_key = ANY($1::text[]) GROUP BY idempotency_key",
            list(stats.acked),
        )
        sold = await conn.fetchval(
            "SELECT COALESCE(sum(quantity), 0) FROM order_lines WHERE product_id = $1", product_id
        )
        stock = await conn.fetchval("SELECT stock FROM products WHERE id = $1", product_id)
        dups_any = await conn.fetchval(
            "SELECT count(*) FROM (SELECT idempotency_key FROM orders GROUP BY 1 HAVING count(*) > 1) d"
        )
    finally:
        await conn.close()
    in_db = {r["idempotency_key"]: (r["n"], r["id"]) for r in rows}
    lost = [k for k in stats.acked if k not in in_db]
    wrong = [k for k, oid in stats.acked.items() if k in in_db and in_db[k][1] != oid]
    dup = [k for k, (n, _) in in_db.items() if n > 1]
    return {
        "acked": len(stats.acked),
        "lost": lost,
        "wrong_id": wrong,
        "duplicated": dup,
        "duplicated_any_key": int(dups_any),
        "sold": int(sold),
        "stock_decrement": STOCK - int(stock),
    }


def _report(
    name: str, stats: LoadStats, t_fault: float, t_back: float, t_recovered: float, check: dict[str, Any]
) -> None:
    outside = [f for f in stats.failures if not (t_fault <= f[0] <= t_recovered + GRACE)]
    during = sum(1 for s in stats.successes if t_fault <= s <= t_back)
    kinds: dict[str, int] = {}
    for _, kind, exc in stats.failures:
        kinds[f"{kind}:{exc}"] = kinds.get(f"{kind}:{exc}", 0) + 1
    print(
        f"\n[drill] {name}: recovery {t_recovered - t_fault:.2f} s after the fault "
        f"({t_recovered - t_back:.2f} s after the repair action); acknowledged orders {check['acked']}, "
        f"lost {len(check['lost'])}, duplicated {len(check['duplicated'])}; client-visible failures "
        f"{len(stats.failures)} (all inside the outage window: {not outside}) {kinds}; "
        f"reads served {stats.reads_ok}; orders acknowledged during the outage {during}; "
        f"abandoned keys {len(stats.abandoned)}"
    )
    assert not check["lost"], f"acknowledged orders missing after {name}: {check['lost'][:5]}"
    assert not check["wrong_id"], f"orders with a different id than acknowledged: {check['wrong_id'][:5]}"
    assert not check["duplicated"] and check["duplicated_any_key"] == 0, f"duplicated orders: {check}"
    assert check["sold"] == check["stock_decrement"], f"stock accounting broken: {check}"
    assert not outside, f"failures outside the outage window: {outside[:5]}"


async def _drill(
    tier: LocalTier,
    da: DataAccess,
    uid: int,
    pid: int,
    reads: list[int],
    *,
    name: str,
    fault: Callable[[], Awaitable[None]],
    repair: Callable[[], Awaitable[None]],
    outage: float = 0.5,
) -> tuple[LoadStats, dict[str, float]]:
    load = SteadyLoad(da, uid, pid, reads)
    try:
        await load.wait_for_orders(30)
        t_fault = time.monotonic()
        await fault()
        await asyncio.sleep(outage)  # the outage lasts a moment, under load
        t_back = time.monotonic()
        await repair()
        t_recovered = await load.first_success_after(t_back)
        await load.wait_for_orders(30)
    finally:
        await load.stop()
    return load.stats, {"fault": t_fault, "back": t_back, "recovered": t_recovered}


@contextlib.asynccontextmanager
async def _closing(da: DataAccess) -> AsyncIterator[DataAccess]:
    try:
        yield da
    finally:
        await da.close()


@pytest.mark.fault_tier_options(synchronous_standby=True)
async def test_drill_kill_primary_and_promote_standby(fault_tier: LocalTier) -> None:
    """kill -9 the primary (synchronous standby, like Multi-AZ), promote the standby and point the
    data layer at it with ``set_writer_dsn``."""
    dsns = fault_tier.dsns()
    assert dsns.standby is not None
    da, uid, pid, reads = await _setup(fault_tier, dsns.primary, proxy_mode="direct", readers=[dsns.standby])
    async with _closing(da):
        new_writer: list[str] = []

        async def repair() -> None:
            new_writer.append(await fault_tier.apromote_standby())
            await da.set_writer_dsn(new_writer[0])

        stats, t = await _drill(
            fault_tier,
            da,
            uid,
            pid,
            reads,
            name="kill -9 primary + promote",
            fault=fault_tier.akill_primary,
            repair=repair,
        )
        check = await _verify(new_writer[0], stats, pid)
    _report("kill -9 primary + promote standby", stats, t["fault"], t["back"], t["recovered"], check)


async def test_drill_kill_redis_and_bring_it_back(fault_tier: LocalTier) -> None:
    """Redis SIGKILLed under load: orders and reads carry on from PostgreSQL (fail-open), the cache
    refills after Redis returns."""
    dsns = fault_tier.dsns()
    assert dsns.pgbouncer is not None and dsns.standby is not None
    da, uid, pid, reads = await _setup(
        fault_tier, dsns.pgbouncer, proxy_mode="pgbouncer", readers=[dsns.standby]
    )
    async with _closing(da):
        assert da.cache is not None
        stats, t = await _drill(
            fault_tier,
            da,
            uid,
            pid,
            reads,
            name="kill redis",
            fault=fault_tier.akill_redis,
            repair=fault_tier.astart_redis,
            outage=1.5,
        )
        hits_before = da.cache.stats.hits
        deadline = time.monotonic() + RECOVERY_DEADLINE
        while da.cache.stats.hits == hits_before:  # the cache serves hits again
            assert time.monotonic() < deadline, "cache never served a hit after Redis came back"
            await da.products.get(reads[0])
            await asyncio.sleep(0.05)
        cache_back = time.monotonic() - t["back"]
        check = await _verify(dsns.primary, stats, pid)
    print(f"\n[drill] kill redis: cache hits resumed {cache_back:.2f} s after Redis restarted")
    _report("kill redis + restart", stats, t["fault"], t["back"], t["recovered"], check)


async def test_drill_restart_pgbouncer(fault_tier: LocalTier) -> None:
    """PgBouncer (the RDS Proxy stand-in) restarted under load: clients reconnect and retry."""
    dsns = fault_tier.dsns()
    assert dsns.pgbouncer is not None
    da, uid, pid, reads = await _setup(fault_tier, dsns.pgbouncer, proxy_mode="pgbouncer")
    async with _closing(da):

        async def fault() -> None:
            await asyncio.to_thread(fault_tier.pgbouncer.stop)

        async def repair() -> None:
            await asyncio.to_thread(fault_tier.pgbouncer.start)

        stats, t = await _drill(
            fault_tier, da, uid, pid, reads, name="restart pgbouncer", fault=fault, repair=repair
        )
        check = await _verify(dsns.primary, stats, pid)
    _report("pgbouncer restart", stats, t["fault"], t["back"], t["recovered"], check)


async def test_drill_commits_cut_after_the_server_committed(fault_tier: LocalTier) -> None:
    """Through the fault proxy in front of PgBouncer, 20 connections are cut right after an order
    batch was executed and committed (``orders.place`` commits in one autocommit call of
    ``commerce_place_orders``; no separate COMMIT; the fault is armed on the keys, which travel in
    the Bind/Execute message): the client never hears the answer.
    ``orders.place`` re-sends the batch with its idempotency keys and returns each order that did
    commit: none lost, none duplicated, and **no error reaches a caller** (the cuts land on the one
    or two batches in flight; their re-sends by key have their own budget)."""
    dsns = fault_tier.dsns()
    assert dsns.pgbouncer is not None
    proxy = fault_tier.proxy("pgbouncer")
    da, uid, pid, reads = await _setup(fault_tier, proxy.url(dsns.pgbouncer), proxy_mode="pgbouncer")
    async with _closing(da):

        async def fault() -> None:
            # On the keys' prefix: keys travel in the Bind/Execute message, so the server runs and
            # commits the batch before the cut (the statement's name only matches its Parse).
            proxy.arm(b"ack-", "cut", count=20)

        async def repair() -> None:
            await proxy.await_fired(20)

        stats, t = await _drill(
            fault_tier, da, uid, pid, reads, name="COMMIT cut", fault=fault, repair=repair, outage=0.0
        )
        check = await _verify(dsns.primary, stats, pid)
    _report("20 COMMITs cut after the server committed", stats, t["fault"], t["back"], t["recovered"], check)
    assert not stats.failures, f"client-visible failures: {stats.failures[:5]}"


async def test_drill_redis_hangs_under_load(fault_tier: LocalTier) -> None:
    """Redis stops answering (the proxy holds every byte) for 1.5 s: orders and reads carry on from
    PostgreSQL once the client's socket timeout and the breaker notice; nothing is lost."""
    dsns = fault_tier.dsns()
    assert dsns.pgbouncer is not None and dsns.standby is not None
    proxy = fault_tier.proxy("redis")
    da, uid, pid, reads = await _setup(
        fault_tier,
        dsns.pgbouncer,
        proxy_mode="pgbouncer",
        readers=[dsns.standby],
        redis_url=fault_tier.proxied_redis_url,
    )
    async with _closing(da):

        async def fault() -> None:
            await asyncio.to_thread(proxy.hang)

        async def repair() -> None:
            await asyncio.to_thread(proxy.heal)

        stats, t = await _drill(
            fault_tier, da, uid, pid, reads, name="redis hang", fault=fault, repair=repair, outage=1.5
        )
        check = await _verify(dsns.primary, stats, pid)
    _report("redis hung for 1.5 s", stats, t["fault"], t["back"], t["recovered"], check)
