"""The flash-sale traffic mix: virtual users browsing (Zipf), searching, logging in and buying a
few hot SKUs with limited stock, all through ``dataaccess``."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from commerce_db.bench.stats import LatencyRecorder
from commerce_db.bench.zipf import ZipfPicker
from dataaccess import DataAccess, OutOfStock

# What a browsing virtual user does per step (shares of its actions).
MIX: dict[str, float] = {"browse": 0.70, "search": 0.12, "login": 0.12, "profile": 0.06}
BUYER_SHARE = 0.25  # share of the virtual users that are buyers hammering the hot SKUs
REPLAY_SHARE = 0.05  # accepted orders re-sent with the same idempotency key (a client retry)


@dataclass(frozen=True)
class TrafficConfig:
    """Shape of the traffic.

    Args:
        duration: seconds of traffic [15].
        concurrency: virtual users running at once [32].
        zipf_s: key skew for browsing/search [1.1].
        seed: RNG seed [42].
    """

    duration: float = 15.0
    concurrency: int = 32
    zipf_s: float = 1.1
    seed: int = 42


@dataclass
class TrafficOutcome:
    """What the clients saw (the DB check is separate: see runner.verify_orders)."""

    recorder: LatencyRecorder
    accepted: dict[str, int] = field(default_factory=dict)
    """idempotency key -> order id of every acknowledged order."""
    rejected_out_of_stock: int = 0
    replays_ok: int = 0
    replays_mismatch: int = 0
    replays_failed: Counter[str] = field(default_factory=Counter)
    """Replays (same idempotency key) that raised instead of returning the original order."""
    sold_out_at: dict[int, float] = field(default_factory=dict)
    """hot product id -> seconds since traffic start of its first OutOfStock."""
    price_change: dict[str, Any] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)


class FlashSaleTraffic:
    """Runs the mix against da until ``duration`` elapses; ``status()`` feeds the progress line."""

    def __init__(
        self,
        da: DataAccess,
        *,
        product_ids: list[int],
        user_ids: list[int],
        search_terms: list[str],
        hot_product_ids: list[int],
        config: TrafficConfig,
    ) -> None:
        self.da = da
        self.cfg = config
        self.rng = random.Random(config.seed)
        self.products = ZipfPicker(product_ids, s=config.zipf_s, seed=config.seed)
        self.terms = ZipfPicker(search_terms, s=config.zipf_s, seed=config.seed + 1)
        self.users = user_ids
        self.hot = hot_product_ids
        self.out = TrafficOutcome(recorder=LatencyRecorder())
        self._stop_at = 0.0

    def _rec(self) -> LatencyRecorder:
        return self.out.recorder

    def stop(self) -> None:
        """End the traffic at the workers' next step (safe to call from a signal handler)."""
        self._stop_at = 0.0

    async def run(self, on_tick: Callable[[], None] | None = None, tick: float = 0.5) -> TrafficOutcome:
        self.out.recorder = LatencyRecorder()
        self._stop_at = time.perf_counter() + self.cfg.duration
        buyers = max(1, round(self.cfg.concurrency * BUYER_SHARE))
        workers = [asyncio.create_task(self._buyer(i)) for i in range(buyers)]
        workers += [asyncio.create_task(self._user(i)) for i in range(self.cfg.concurrency - buyers)]
        events = asyncio.create_task(self._price_drop(self.cfg.duration / 3))
        try:
            while time.perf_counter() < self._stop_at:
                await asyncio.sleep(min(tick, max(0.0, self._stop_at - time.perf_counter())))
                if on_tick is not None:
                    on_tick()
            await asyncio.gather(*workers, events)
        finally:
            # Stop flag first: a cancellation can be lost inside a library (Python 3.11's wait_for
            # race), and a worker that missed it must still leave its loop after the current step.
            self._stop_at = 0.0
            for t in [*workers, events]:
                t.cancel()
            # Let cancelled users unwind (give back gate units, release connections) before the
            # caller closes the pools and stops the servers.
            await asyncio.gather(*workers, events, return_exceptions=True)
        self.out.recorder.finish()
        return self.out

    async def _user(self, n: int) -> None:
        rng = random.Random(self.cfg.seed * 1000 + n)
        rec = self._rec()
        while time.perf_counter() < self._stop_at:
            uid = self.users[rng.randrange(len(self.users))]
            r = rng.random()
            try:
                if r < MIX["browse"]:
                    pid = self.products.pick()
                    await rec.timed("product.get", self.da.products.get(pid))
                    if self.da.counters is not None:
                        await rec.timed(
                            "counter.view", self.da.counters.record_view(pid, visitor_id=f"u{uid}")
                        )
                elif r < MIX["browse"] + MIX["search"]:
                    await rec.timed("product.search", self.da.products.search(self.terms.pick()))
                elif r < MIX["browse"] + MIX["search"] + MIX["login"]:
                    if self.da.sessions is not None:
                        session = await rec.timed(
                            "session.create", self.da.sessions.create(uid, {"cart": []})
                        )
                        await rec.timed("session.get", self.da.sessions.get(session.id))
                else:
                    await rec.timed("user.get", self.da.users.get(uid))
            except Exception as exc:  # counted per type by rec.timed; the virtual user carries on
                self.out.errors[type(exc).__name__] += 1

    async def _buyer(self, n: int) -> None:
        """A buyer: order attempts on the hot SKUs, one after another (sold out = a fast "no")."""
        rng = random.Random(self.cfg.seed * 7919 + n)
        while time.perf_counter() < self._stop_at:
            try:
                await self._order(self.users[rng.randrange(len(self.users))], rng)
            except Exception as exc:
                self.out.errors[type(exc).__name__] += 1
            await asyncio.sleep(rng.uniform(0.0, 0.02))  # think time

    async def _order(self, uid: int, rng: random.Random) -> None:
        pid = self.hot[rng.randrange(len(self.hot))]
        key = uuid.uuid4().hex
        rec = self._rec()
        t0 = time.perf_counter()
        try:
            order = await self.da.orders.place(uid, [(pid, rng.choice((1, 1, 1, 2)))], idempotency_key=key)
        except OutOfStock:
            rec.record("order.rejected", t0, time.perf_counter() - t0)
            self.out.rejected_out_of_stock += 1
            self.out.sold_out_at.setdefault(pid, t0 - rec.start)
            return
        except Exception as exc:
            rec.error("order.place", exc)
            raise
        rec.record("order.place", t0, time.perf_counter() - t0)
        self.out.accepted[key] = order.id
        if rng.random() < REPLAY_SHARE:  # the client "lost" the response and retries with the same key
            try:
                again = await rec.timed(
                    "order.replay",
                    self.da.orders.place(uid, [(pid, order.lines[0].quantity)], idempotency_key=key),
                )
            except Exception as exc:  # a replay must return the original order, whatever the stock
                self.out.replays_failed[type(exc).__name__] += 1
                return
            if again.id == order.id:
                self.out.replays_ok += 1
            else:
                self.out.replays_mismatch += 1

    async def _price_drop(self, at: float) -> None:
        """A flash-sale price drop mid-run: the next read must show the new price (invalidation)."""
        wake = time.perf_counter() + at
        while (now := time.perf_counter()) < wake:  # in slices: a stopped run does not wait for it
            if now >= self._stop_at:
                return
            await asyncio.sleep(min(0.25, wake - now))
        if time.perf_counter() >= self._stop_at:
            return
        pid = self.hot[0]
        before = await self.da.products.get(pid)
        if before is None:
            return
        new_price = max(1, before.price_cents * 7 // 10)
        await self.da.products.update_price(pid, new_price)
        after = await self.da.products.get(pid)
        self.out.price_change = {
            "product_id": pid,
            "old_cents": before.price_cents,
            "new_cents": new_price,
            "read_after_write_cents": after.price_cents if after else None,
            "at_s": round(at, 2),
            "visible_immediately": bool(after and after.price_cents == new_price),
        }
