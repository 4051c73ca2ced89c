"""Measurement primitives: interleaved A/B rounds, sequential latency loops, closed-loop throughput."""

from __future__ import annotations

import asyncio
import gc
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from commerce_db.bench.stats import percentile


@dataclass
class LoopResult:
    """Outcome of one measured loop."""

    ops: int
    elapsed: float
    durations: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def throughput(self) -> float:
        return self.ops / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def mean_us(self) -> float:
        return (sum(self.durations) / len(self.durations) * 1e6) if self.durations else 0.0

    @property
    def p50_us(self) -> float:
        return percentile(sorted(self.durations), 50) * 1e6

    @property
    def p99_us(self) -> float:
        return percentile(sorted(self.durations), 99) * 1e6


async def sequential(fn: Callable[[int], Awaitable[Any]], n: int) -> LoopResult:
    """Call fn(i) n times one after another, timing each call (latency, no queueing)."""
    durations = [0.0] * n
    pc = time.perf_counter
    gc_was = gc.isenabled()
    gc.disable()  # a GC pause in one side of an A/B comparison is noise, not overhead
    try:
        t_start = pc()
        for i in range(n):
            t0 = pc()
            await fn(i)
            durations[i] = pc() - t0
        elapsed = pc() - t_start
    finally:
        if gc_was:
            gc.enable()
    return LoopResult(ops=n, elapsed=elapsed, durations=durations)


async def closed_loop(
    fn: Callable[[int, int], Awaitable[Any]],
    *,
    concurrency: int,
    duration: float,
    record_latency: bool = False,
) -> LoopResult:
    """concurrency workers call fn(worker, i) back to back for duration seconds; errors are counted
    per exception type and the worker carries on."""
    stop_at = time.perf_counter() + duration
    result = LoopResult(ops=0, elapsed=0.0)

    async def worker(w: int) -> None:
        i = 0
        pc = time.perf_counter
        while pc() < stop_at:
            t0 = pc()
            try:
                await fn(w, i)
            except Exception as exc:
                result.errors[type(exc).__name__] += 1
            else:
                result.ops += 1
                if record_latency:
                    result.durations.append(pc() - t0)
            i += 1

    t0 = time.perf_counter()
    tasks = [asyncio.create_task(worker(w)) for w in range(concurrency)]
    try:
        await asyncio.wait(tasks)  # on Ctrl-C this raises at once, without waiting for the workers
    finally:
        # Stop flag first: a cancellation can be lost inside a library (Python 3.11's wait_for race),
        # and a worker that missed it must still leave its loop after its current call.
        stop_at = 0.0
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    result.elapsed = time.perf_counter() - t0
    return result


async def interleaved(
    rounds: int, a: Callable[[], Awaitable[LoopResult]], b: Callable[[], Awaitable[LoopResult]]
) -> tuple[list[LoopResult], list[LoopResult]]:
    """Run A and B alternately (ABBA ABBA ...) so drift and noise hit both sides equally."""
    ra: list[LoopResult] = []
    rb: list[LoopResult] = []
    for r in range(rounds):
        if r % 2 == 0:
            ra.append(await a())
            rb.append(await b())
        else:
            rb.append(await b())
            ra.append(await a())
    return ra, rb


async def interleaved_many(
    rounds: int, variants: dict[str, Callable[[], Awaitable[LoopResult]]]
) -> dict[str, list[LoopResult]]:
    """Like :func:`interleaved` for any number of variants: ABC CBA ABC ..."""
    out: dict[str, list[LoopResult]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            out[name].append(await variants[name]())
    return out


def pooled_mean_us(results: list[LoopResult]) -> float:
    total = sum(sum(r.durations) for r in results)
    n = sum(len(r.durations) for r in results)
    return total / n * 1e6 if n else 0.0


def pooled_throughput(results: list[LoopResult]) -> float:
    ops = sum(r.ops for r in results)
    elapsed = sum(r.elapsed for r in results)
    return ops / elapsed if elapsed > 0 else 0.0


def paired_ratio(a: list[LoopResult], b: list[LoopResult], *, metric: str) -> float:
    """Median over rounds of A/B for ``metric`` (``mean_us`` or ``throughput``).

    Rounds were run back to back (ABBA), so each pair saw the same machine load; the median of
    the paired ratios discards rounds where a neighbour process stole the CPU from one side.
    """
    ratios = sorted(
        getattr(x, metric) / getattr(y, metric) for x, y in zip(a, b, strict=True) if getattr(y, metric) > 0
    )
    if not ratios:
        return float("nan")
    mid = len(ratios) // 2
    return ratios[mid] if len(ratios) % 2 else (ratios[mid - 1] + ratios[mid]) / 2
