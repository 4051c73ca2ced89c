"""The data layer builds each TLS client context once, not per connection (issue 17).

Why it matters: over TLS the shared-tier contention tests failed under load. The cause was
redis-py building its ``SSLContext`` lazily inside the first ``connect()`` - loading the whole
system trust store (~60 ms idle, 1-2 s under load, blocking the event loop) under the 0.5 s
``socket_connect_timeout`` - so the first Redis call of a process timed out, opened the cache's
breaker and sent a cold-key burst to the database; and asyncpg re-parsing the CA file for every
new pooled connection. These tests pin both: a connection made after the client/pool exists must
not build or load anything, and a private CA is the only trust anchor.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest

from commerce_db.localtier import DatabaseDSNs, LocalTier
from dataaccess import DataAccess, Settings
from dataaccess.redis_client import RedisOptions, create_redis, redis_ssl_context

pytestmark = [pytest.mark.integration]


def _ca(tier: Any) -> str:
    if not isinstance(tier, LocalTier) or tier.tls is None:
        pytest.skip("needs the local tier in its TLS transport")
    return str(tier.tls.ca_cert)


def _forbid_context_building(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, building a context or loading certificates fails loudly."""

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("TLS context built or CA loaded while connecting")

    monkeypatch.setattr(ssl, "create_default_context", refuse)
    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", refuse)
    monkeypatch.setattr(ssl.SSLContext, "load_default_certs", refuse)


def test_a_private_ca_is_the_only_trust_anchor(tier: Any) -> None:
    ctx = redis_ssl_context(_ca(tier))
    assert len(ctx.get_ca_certs()) == 1  # not the ~150 system roots next to it
    assert ctx.verify_mode is ssl.CERT_REQUIRED and ctx.check_hostname


async def test_redis_connections_use_the_context_built_with_the_client(
    tier: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A CA path no earlier test used: redis-py's process-wide context cache cannot mask a lazy build.
    ca = tmp_path / "ca.crt"
    shutil.copy(_ca(tier), ca)
    url = urlsplit(tier.redis_url)._replace(query=f"ssl_ca_certs={ca}").geturl()
    client = create_redis(url, options=RedisOptions(max_connections=8))
    _forbid_context_building(monkeypatch)
    try:
        # Several connections at once, as a cold pool under a burst opens them.
        assert all(await asyncio.gather(*(client.ping() for _ in range(8))))
        pool: Any = client.connection_pool
        assert len(pool._available_connections) + len(pool._in_use_connections) > 1
    finally:
        await client.aclose()


async def test_pooled_postgres_connections_share_one_context(
    tier: Any, fresh_db: DatabaseDSNs, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ca(tier)
    assert parse_qs(urlsplit(fresh_db.primary).query)["sslmode"] == ["verify-full"]
    da = await DataAccess.connect(Settings(writer_dsn=fresh_db.primary, writer_pool_min=1, writer_pool_max=6))
    try:
        _forbid_context_building(monkeypatch)
        all_out = asyncio.Event()
        holding = 0

        async def hold() -> int:
            # Each task keeps its connection until all six are out: the pool must open five more.
            nonlocal holding
            async with da.pools.writer() as conn:
                holding += 1
                if holding == 6:
                    all_out.set()
                await all_out.wait()
                return int(await conn.fetchval("SELECT pg_backend_pid()"))

        pids = await asyncio.gather(*(hold() for _ in range(6)))
        assert len(set(pids)) == 6
        # The check is live: asyncpg left to itself builds a context per connection, and fails here.
        with pytest.raises(AssertionError, match="TLS context built"):
            await asyncpg.connect(fresh_db.primary)
    finally:
        await da.close()
