"""``DataAccess``: the one object applications hold.

async with await DataAccess.connect(Settings.from_env()) as da:
    await da.migrate()
    user = await da.users.create(email="a@example.com", name="Ada")
    order = await da.orders.place(user.id, [(product_id, 2)], idempotency_key=str(uuid4()))
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Coroutine, Generator
from datetime import datetime
from types import TracebackType
from typing import Any

import redis.asyncio as aioredis

from ._breaker import CircuitBreaker
from .cache import CacheAside
from .consistency import WriteMarkers
from .credentials import CredentialProvider, IamAuthTokenProvider
from .errors import DataAccessError, PoolExhausted, Unavailable
from .inventory import RedisStockGate
from .migrations import migrate as _migrate
from .migrations import read_schema_lsn
from .near_cache import NearCache
from .pools import _DB_ERRORS, Pools, lsn_to_int
from .redis_client import RedisOptions, create_redis
from .repositories import Orders, Products, Users
from .retry import ConnectPhaseError, run_with_retry
from .runtime import Runtime, retry_policy
from .settings import Settings, endpoint

__all__ = ["DataAccess"]

log = logging.getLogger(__name__)


class DataAccess:
    """Pools, cache, repositories and Redis features behind one object. Build with :meth:`connect`.

    Attributes: ``users``, ``products``, ``orders`` (repositories), ``cache`` (the
    :class:`~dataaccess.cache.CacheAside`, or None without ``redis_url``), ``redis`` (the client),
    ``sessions``, ``counters``, ``queues``, ``events`` (Redis features; None without Redis),
    ``pools`` and ``settings``.
    """

    def __init__(
        self,
        settings: Settings,
        pools: Pools,
        redis: aioredis.Redis | None,
        cache: CacheAside | None,
        markers: WriteMarkers,
        gate: RedisStockGate | None,
    ) -> None:
        self.settings = settings
        self.pools = pools
        self.redis = redis
        self.cache = cache
        self.markers = markers
        self.stock_gate = gate
        self._rt = Runtime(settings, pools, cache, markers)
        self.users = Users(self._rt)
        self.products = Products(self._rt, gate)
        self.orders = Orders(self._rt, gate)
        self.sessions: Any = None
        self.counters: Any = None
        self.queues: Any = None
        self.events: Any = None
        self._closed = False
        self._owns_redis = True
        if redis is not None:
            self._wire_redis_features(redis)

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def connect(
        cls,
        settings: Settings,
        *,
        credentials: CredentialProvider | None = None,
        redis: aioredis.Redis | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> _Connecting:
        """Open the pools (retrying connect errors with backoff) and the Redis client.

        Use ``da = await DataAccess.connect(s)`` (then ``await da.close()``) or
        ``async with DataAccess.connect(s) as da:`` (closed on exit).

        :param credentials: password provider; default ``settings.credentials``, or an
            :class:`IamAuthTokenProvider` when ``settings.iam_auth``.
        :param redis: an existing client to use instead of one built from ``settings.redis_url``
            (must have ``decode_responses=False``).
        :param clock: monotonic seconds the pools date writer connections (and LSN samples)
            with; tests pass their own to move past ``writer_max_connection_lifetime`` without
            waiting. Default ``time.monotonic``.
        :raises Unavailable: the writer cannot be reached after ``retry_attempts``.
        """
        if not isinstance(settings, Settings):
            raise TypeError("settings must be a dataaccess.Settings")
        return _Connecting(cls._open(settings, credentials=credentials, redis=redis, clock=clock))

    @classmethod
    async def _open(
        cls,
        settings: Settings,
        *,
        credentials: CredentialProvider | None,
        redis: aioredis.Redis | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> DataAccess:
        creds = credentials or settings.credentials
        if creds is None and settings.iam_auth:
            creds = _iam_provider(settings)

        async def open_pools() -> Pools:
            return await Pools.create(settings, creds, clock=clock)

        # Name the server (never the password): "gave up after 6 attempts" alone says nothing.
        context = f"DataAccess.connect to the writer at {endpoint(settings.writer_dsn)}"
        pools = await run_with_retry(
            open_pools, policy=retry_policy(settings), idempotent=True, context=context
        )
        client: aioredis.Redis | None = None
        da: DataAccess | None = None
        try:
            client = redis
            if client is None and settings.redis_url:
                client = create_redis(
                    settings.redis_url,
                    auth_token=settings.redis_auth_token,
                    options=RedisOptions(
                        max_connections=settings.redis_max_connections,
                        socket_timeout=settings.redis_socket_timeout,
                        socket_connect_timeout=settings.redis_socket_timeout,
                        # Local test servers use passwords over plain TCP; anything else needs rediss://.
                        require_tls_with_auth=not _is_loopback(settings.redis_url),
                    ),
                )
            cache = markers_breaker = gate = None
            if client is not None:
                markers_breaker = CircuitBreaker()
                cache = CacheAside(
                    client,
                    breaker=markers_breaker,  # one view of Redis health for cache, markers and gate
                    namespace=settings.cache_namespace,
                    invalidation_grace=settings.cache_invalidation_grace,
                )
                if settings.inventory_redis_gate:
                    gate = RedisStockGate(
                        client,
                        namespace=settings.cache_namespace,
                        breaker=markers_breaker,
                        ttl=settings.stock_gate_ttl,
                        stock_source=functools.partial(_committed_stock, pools),
                    )
            markers = WriteMarkers(
                client,
                namespace=settings.cache_namespace,
                ttl=settings.read_your_writes_ttl,
                breaker=markers_breaker,
            )
            if cache is not None:
                # Invalidations go out only after the markers: see WriteMarkers / docs/dataaccess.md.
                cache.set_flush_prerequisite(functools.partial(markers.flush, check_breaker=False))
            if cache is not None and settings.near_cache_ttl > 0:
                # Hot products, search results and the catalogue generation: entries that change only
                # when Redis changes them, so Redis's invalidation messages keep the copies coherent.
                cache.near = NearCache(
                    client,  # type: ignore[arg-type]
                    prefixes=[
                        cache.keys.prefix + "product:",
                        cache.keys.prefix + "search:",
                        markers.generation_prefix,
                    ],
                    ttl=settings.near_cache_ttl,
                    max_entries=settings.near_cache_max_entries,
                )
                cache.near.start()
            da = cls(settings, pools, client, cache, markers, gate)
            da._owns_redis = redis is None
            await da._load_schema_floor()
            return da
        except BaseException:
            # Failed or cancelled half-way (bad Redis URL, cancelled schema read): close what was
            # opened, so no pool, health check or Redis connection outlives the failed connect.
            await asyncio.shield(_close_partial(da, pools, client if redis is None else None))
            raise

    async def _load_schema_floor(self) -> None:
        """Read the last schema change's LSN (``schema_lsn``, written by ``migrate()`` in any
        process) so no read goes to a replica that has not replayed it — also without Redis.
        Also drops a Redis floor the writer has never reached (left over from another cluster).
        Failures only log: the replica fallback for missing objects still applies."""
        if not self.settings.lsn_routing:
            return
        seen = await self.markers.shared_floor()
        try:
            async with self.pools.writer() as conn:
                recorded = await read_schema_lsn(conn)
                current = lsn_to_int(await conn.fetchval("SELECT pg_current_wal_insert_lsn()::text"))
        except (ConnectPhaseError, PoolExhausted, *_DB_ERRORS) as exc:
            log.warning("schema LSN unreadable at connect (%s)", type(exc).__name__)
            return
        if current is None:
            return
        if recorded is not None and recorded <= current:
            self.markers.raise_floor(recorded)
        elif recorded is not None:
            log.warning(
                "schema_lsn %d is ahead of the writer (%d): ignored (restored database?)", recorded, current
            )
        await self.markers.drop_bogus_floor(current, seen)

    def _wire_redis_features(self, client: aioredis.Redis) -> None:
        """Attach DATA-REDIS's features when their modules are present (optional at import time)."""
        ns = self.settings.cache_namespace
        try:
            from .sessions import SessionStore

            self.sessions = SessionStore(client, namespace=ns)
        except ImportError:
            pass
        try:
            from .counters import Counters

            self.counters = Counters(client, namespace=ns)
        except ImportError:
            pass
        try:
            from .queue import Queues

            self.queues = Queues(client, namespace=ns)
        except ImportError:
            pass
        try:
            from .pubsub import Events

            self.events = Events(client, namespace=ns)
        except ImportError:
            pass

    async def __aenter__(self) -> DataAccess:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close pools, the cache's background task and the Redis client (idempotent)."""
        if self._closed:
            return
        self._closed = True
        await self.orders.drain()  # batches in flight are acknowledged before pools close
        await self._rt.drain()
        for feature in (self.events, self.queues, self.counters, self.sessions):
            closer = getattr(feature, "aclose", None) or getattr(feature, "close", None)
            if closer is not None:
                try:
                    await closer()
                except Exception:  # closing must not fail half-way
                    log.exception("closing %s failed", type(feature).__name__)
        if self.cache is not None:
            if self.cache.near is not None:
                await self.cache.near.aclose()
            await self.cache.aclose()
        if self.stock_gate is not None:
            await self.stock_gate.aclose()
        await self.markers.aclose()
        await self.pools.close()
        if self.redis is not None and self._owns_redis:
            try:
                await self.redis.aclose()
            except Exception:
                log.debug("redis close failed", exc_info=True)

    # -- schema -----------------------------------------------------------------------------------
    async def migrate(self) -> list[int]:
        """Apply pending migrations and create upcoming ``orders`` partitions (idempotent,
        concurrency-safe). Returns the versions applied by this call.

        Afterwards no read — in this process or any other sharing the Redis or connecting later —
        uses a replica that has not replayed this call's commit (the schema floor, see
        docs/dataaccess.md), so the first read after ``migrate()`` cannot hit a missing table."""

        async def op() -> tuple[list[int], int]:
            async with self.pools.writer() as conn:
                applied = await _migrate(conn, partitions_ahead=self.settings.order_partitions_ahead)
                return applied, await self._rt.commit_lsn(conn)

        applied, lsn = await run_with_retry(
            op,
            policy=self._rt.policy,
            idempotent=True,
            context="migrate",
            on_read_only=self.pools.expire_writer_connections,
            on_connection_lost=self.pools.expire_writer_connections,
        )
        await self._rt.schema_changed(lsn, objects_created=bool(applied))
        return applied

    async def ensure_partitions(
        self, *, months_ahead: int | None = None, months_back: int = 0, at: datetime | None = None
    ) -> int:
        """Create missing monthly ``orders`` partitions; run periodically (e.g. daily).

        :param months_ahead: months created after the current one.
            Default: ``settings.order_partitions_ahead``.
        :param months_back: months created before the current one. Default: 0.
        :param at: the clock to count months from (timezone-aware). Default: now (UTC)."""
        return await self.orders.ensure_partitions(months_ahead=months_ahead, months_back=months_back, at=at)

    async def apply_role_statement_timeout(self) -> None:
        """``ALTER ROLE CURRENT_USER SET statement_timeout`` to ``settings.statement_timeout``: the
        way to get a server-side timeout behind RDS Proxy / PgBouncer without pinning (applies to
        new sessions)."""
        ms = int((self.settings.statement_timeout or 0) * 1000)

        async def op() -> None:
            async with self.pools.writer() as conn:
                await conn.execute(f"ALTER ROLE CURRENT_USER SET statement_timeout = {ms}")

        await run_with_retry(
            op, policy=self._rt.policy, idempotent=True, context="apply_role_statement_timeout"
        )

    # -- failover ---------------------------------------------------------------------------------
    async def set_writer_dsn(self, dsn: str) -> None:
        """Point writes at ``dsn`` (e.g. a promoted standby). Existing connections to the old
        writer are closed once released."""
        try:
            await self.pools.set_writer_dsn(dsn)
        except DataAccessError:
            raise
        except Exception as exc:
            raise Unavailable(f"cannot connect to the new writer ({type(exc).__name__})") from exc

    async def set_reader_dsns(self, dsns: list[str] | tuple[str, ...]) -> None:
        """Replace the replica endpoints."""
        await self.pools.set_reader_dsns(dsns)

    # -- observability ----------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Pool, routing, cache and marker counters."""
        out: dict[str, Any] = {
            "pools": self.pools.stats(),
            "retries": dict(self._rt.retries),
            "markers_redis_failures": self.markers.redis_failures,
            "schema_fallbacks": self._rt.schema_fallbacks,
        }
        if self.cache is not None:
            out["cache"] = self.cache.stats
            out["cache_breaker"] = self.cache.breaker_state.value
            if self.cache.near is not None:
                out["near_cache"] = self.cache.near.stats
        if self.stock_gate is not None:
            out["stock_gate"] = {
                "rejected": self.stock_gate.rejected,
                "passthrough": self.stock_gate.passthrough,
            }
        return out


async def _close_partial(da: DataAccess | None, pools: Pools, client: aioredis.Redis | None) -> None:
    if da is not None:
        await da.close()
        return
    await pools.close()
    if client is not None:
        try:
            await client.aclose()
        except Exception:
            log.debug("redis close failed", exc_info=True)


async def _committed_stock(pools: Pools, product_ids: list[int]) -> dict[int, int]:
    """Committed stock read on the writer (what re-seeds an expired stock-gate counter)."""
    async with pools.writer() as conn:
        rows = await conn.fetch("SELECT id, stock FROM products WHERE id = ANY($1::bigint[])", product_ids)
    return {r["id"]: r["stock"] for r in rows}


def _is_loopback(url: str) -> bool:
    from urllib.parse import urlsplit

    return (urlsplit(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


class _Connecting:
    """What :meth:`DataAccess.connect` returns: awaitable, or an async context manager."""

    def __init__(self, coro: Coroutine[Any, Any, DataAccess]) -> None:
        self._coro = coro
        self._da: DataAccess | None = None

    def __await__(self) -> Generator[Any, None, DataAccess]:
        return self._coro.__await__()

    async def __aenter__(self) -> DataAccess:
        self._da = await self._coro
        return self._da

    async def __aexit__(self, *exc: object) -> None:
        if self._da is not None:
            await self._da.close()


def _iam_provider(settings: Settings) -> IamAuthTokenProvider:
    from urllib.parse import urlsplit

    parts = urlsplit(settings.writer_dsn)
    if not parts.hostname or not parts.username:
        raise DataAccessError("iam_auth needs host and user in writer_dsn")
    return IamAuthTokenProvider(
        host=parts.hostname, port=parts.port or 5432, user=parts.username, region=settings.aws_region
    )
