"""Versions of everything a measurement depended on (client libraries and servers)."""

from __future__ import annotations

import contextlib
import platform
import subprocess
from pathlib import Path

import asyncpg
import redis
import redis.asyncio as aredis


async def collect_versions(
    *,
    postgres_dsn: str | None = None,
    redis_url: str | None = None,
    pgbouncer_binary: str | Path | None = None,
) -> dict[str, str]:
    """python / asyncpg / redis-py (+hiredis) versions, plus PostgreSQL, Redis and PgBouncer server
    versions when their endpoints/binary are given ("unknown" when a lookup fails)."""
    out: dict[str, str] = {
        "python": platform.python_version(),
        "asyncpg": asyncpg.__version__,
        "redis-py": redis.__version__,
        "platform": platform.platform(),
    }
    try:
        import hiredis  # type: ignore[import-not-found]

        out["hiredis"] = getattr(hiredis, "__version__", "installed")
    except ImportError:
        out["hiredis"] = "not installed"
    if postgres_dsn:
        out["postgresql"] = "unknown"
        with contextlib.suppress(Exception):
            conn = await asyncpg.connect(postgres_dsn)
            try:
                out["postgresql"] = str(await conn.fetchval("SHOW server_version"))
            finally:
                await conn.close()
    if redis_url:
        out["redis"] = "unknown"
        with contextlib.suppress(Exception):
            client = aredis.Redis.from_url(redis_url)
            try:
                out["redis"] = str((await client.info("server"))["redis_version"])
            finally:
                await client.aclose()
    if pgbouncer_binary:
        out["pgbouncer"] = "unknown"
        with contextlib.suppress(Exception):
            res = subprocess.run(
                [str(pgbouncer_binary), "--version"], capture_output=True, text=True, timeout=10, check=False
            )
            out["pgbouncer"] = res.stdout.splitlines()[0].split()[-1]
    return out
