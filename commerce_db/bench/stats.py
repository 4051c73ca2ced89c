"""Latency recording, percentiles and per-second time series for the demo and the benchmarks."""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Sequence
from dataclasses import asdict, dataclass
from typing import TypeVar

T = TypeVar("T")


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an ascending sequence; 0.0 when empty."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


@dataclass(frozen=True)
class OpSummary:
    """Latency summary of one operation; times in milliseconds, throughput in ops/s."""

    op: str
    count: int
    errors: int
    throughput: float
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


class LatencyRecorder:
    """Successful-operation latencies (with their start time) and error counts per operation name.

    ``start`` is the reference for time series; throughput is count / (last end - start).
    """

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self._samples: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.errors: dict[str, Counter[str]] = defaultdict(Counter)
        self._end: float | None = None

    def record(self, op: str, started: float, duration: float) -> None:
        self._samples[op].append((started - self.start, duration))

    def error(self, op: str, exc: BaseException | str) -> None:
        self.errors[op][exc if isinstance(exc, str) else type(exc).__name__] += 1

    async def timed(self, op: str, aw: Awaitable[T]) -> T:
        """Await aw and record its latency under op (errors are counted, then re-raised)."""
        t0 = time.perf_counter()
        try:
            result = await aw
        except BaseException as exc:
            self.error(op, exc)
            raise
        self.record(op, t0, time.perf_counter() - t0)
        return result

    def finish(self) -> None:
        """Freeze the elapsed time used for throughput."""
        self._end = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return (self._end or time.perf_counter()) - self.start

    @property
    def ops(self) -> list[str]:
        return sorted(set(self._samples) | set(self.errors))

    def count(self, op: str | None = None) -> int:
        if op is None:
            return sum(len(v) for v in self._samples.values())
        return len(self._samples.get(op, ()))

    def error_count(self, op: str | None = None) -> int:
        if op is None:
            return sum(sum(c.values()) for c in self.errors.values())
        return sum(self.errors.get(op, Counter()).values())

    def summary(self, op: str) -> OpSummary:
        durations = sorted(d for _, d in self._samples.get(op, ()))
        n = len(durations)
        elapsed = max(self.elapsed, 1e-9)
        return OpSummary(
            op=op,
            count=n,
            errors=self.error_count(op),
            throughput=n / elapsed,
            mean_ms=(sum(durations) / n * 1000.0) if n else 0.0,
            p50_ms=percentile(durations, 50) * 1000.0,
            p95_ms=percentile(durations, 95) * 1000.0,
            p99_ms=percentile(durations, 99) * 1000.0,
            max_ms=(durations[-1] * 1000.0) if n else 0.0,
        )

    def summaries(self) -> list[OpSummary]:
        return [self.summary(op) for op in self.ops]

    def timeseries(
        self, op: str | Sequence[str], bucket: float = 1.0, *, until: float | None = None
    ) -> list[dict[str, float]]:
        """Per-bucket ``t`` (s since start), ``count``, ``p50_ms``, ``p99_ms`` for ``op`` (one name,
        or several pooled into one series).

        ``until`` [None: keep all] drops the buckets that end after ``until`` seconds, e.g. the end
        of the traffic: a bucket the run stopped inside holds only the operations started before
        the stop, so its percentiles dip or jump for no reason.
        """
        names = (op,) if isinstance(op, str) else tuple(op)
        buckets: dict[int, list[float]] = defaultdict(list)
        for name in names:
            for t, d in self._samples.get(name, ()):
                buckets[int(t // bucket)].append(d)
        last_whole = int(until // bucket + 1e-9) - 1 if until is not None else None
        out = []
        for b in sorted(buckets):
            if last_whole is not None and b > last_whole:
                continue
            ds = sorted(buckets[b])
            out.append(
                {
                    "t": b * bucket,
                    "count": float(len(ds)),
                    "p50_ms": percentile(ds, 50) * 1000.0,
                    "p99_ms": percentile(ds, 99) * 1000.0,
                }
            )
        return out


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def median(values: Sequence[float]) -> float:
    return percentile(sorted(values), 50)
