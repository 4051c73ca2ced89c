"""Server CPU spent during a measured phase: PostgreSQL (every process of each cluster) and Redis.

Why per server: on a shared 2-core machine, wall-clock throughput moves with the neighbours'
load, while the CPU seconds a server process burns for 1,000 operations do not (much). That is
the figure a reader can scale to an instance size.

PostgreSQL: the postmaster's own and reaped children's CPU (``utime+stime+cutime+cstime`` from
``/proc/<pid>/stat``) plus the live backends' (children of the postmaster). Backends that exit
are reaped by the postmaster, so their CPU stays counted. Redis: ``INFO cpu`` (main process,
user + system). Linux only; elsewhere the figures are absent (``None``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aredis

__all__ = ["CpuSample", "ServerCpu"]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[int, float] | None:
    """(ppid, cpu seconds incl. reaped children) of pid, None if unreadable."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return ppid, (utime + stime + cutime + cstime) / _TICKS


def postgres_cpu_seconds(datadir: Path) -> float | None:
    """CPU seconds used so far by the cluster whose data directory is ``datadir``."""
    try:
        postmaster = int((datadir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    own = _stat(postmaster)
    if own is None:
        return None
    total = own[1]
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        st = _stat(int(entry.name))
        if st is not None and st[0] == postmaster:
            total += st[1]
    return total


async def redis_cpu_seconds(client: aredis.Redis) -> float | None:
    try:
        info = await client.info("cpu")
    except Exception:
        return None
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


@dataclass(frozen=True)
class CpuSample:
    postgres: dict[str, float | None]
    redis: float | None


class ServerCpu:
    """Take :meth:`sample` before and after a phase; :meth:`per_1000` turns the difference into
    CPU milliseconds per 1,000 operations."""

    def __init__(self, datadirs: dict[str, Path], redis_url: str | None) -> None:
        self.datadirs = datadirs
        self._redis = aredis.Redis.from_url(redis_url) if redis_url else None

    async def sample(self) -> CpuSample:
        pg = {name: postgres_cpu_seconds(d) for name, d in self.datadirs.items()}
        rd = await redis_cpu_seconds(self._redis) if self._redis is not None else None
        return CpuSample(pg, rd)

    @staticmethod
    def per_1000(a: CpuSample, b: CpuSample, ops: int) -> dict[str, float | None]:
        """CPU ms per 1,000 ops between samples a and b: one key per PostgreSQL cluster
        (``postgres_<name>``), ``postgres`` (their sum) and ``redis``."""
        out: dict[str, float | None] = {}
        n = max(ops, 1)
        pg_total = 0.0
        for name in a.postgres:
            x, y = a.postgres[name], b.postgres.get(name)
            val = None if x is None or y is None else (y - x) * 1e6 / n
            out[f"postgres_{name}"] = None if val is None else round(val, 2)
            pg_total += val or 0.0
        out["postgres"] = round(pg_total, 2)
        out["redis"] = None if a.redis is None or b.redis is None else round((b.redis - a.redis) * 1e6 / n, 2)
        return out

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
