"""The plumbing repositories share: retried writer transactions that record read-your-writes
markers and invalidate cache keys after commit, and marker-aware routed reads."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

import asyncpg

from .cache import CacheAside
from .consistency import WriteMarkers
from .pools import _DB_ERRORS, WRITER_ONLY_LSN, WRITER_REQUIRED, Pools, Source, lsn_to_int
from .retry import ConnectPhaseError, RetryKind, RetryPolicy, run_with_retry
from .settings import Settings

__all__ = ["Runtime", "retry_policy"]

log = logging.getLogger(__name__)
T = TypeVar("T")


def retry_policy(settings: Settings) -> RetryPolicy:
    """The :class:`RetryPolicy` described by ``settings``."""
    return RetryPolicy(
        attempts=settings.retry_attempts,
        base_delay=settings.retry_base_delay,
        max_delay=settings.retry_max_delay,
        too_many_connections_delay=settings.too_many_connections_delay,
    )


class Runtime:
    """Owns nothing; bundles what repositories need. Built by :class:`DataAccess`."""

    def __init__(
        self, settings: Settings, pools: Pools, cache: CacheAside | None, markers: WriteMarkers
    ) -> None:
        self.settings = settings
        self.pools = pools
        self.cache = cache
        self.markers = markers
        self.policy = retry_policy(settings)
        self._post_commit: set[asyncio.Future[None]] = set()
        self.retries: Counter[str] = Counter()
        """Retryable failures seen, by kind (``connect``, ``connection_lost_in_flight``, ...)."""

    async def _prepared_lost(self) -> None:
        await self.pools.switch_writer_to_pgbouncer_mode("prepared statements vanished between transactions")

    def _count_retry(self, kind: RetryKind) -> None:
        self.retries[kind.value] += 1

    async def _expire_all(self) -> None:
        await self.pools.expire_writer_connections()

    async def write(
        self,
        fn: Callable[[asyncpg.Connection], Awaitable[T]],
        *,
        context: str,
        idempotent: bool,
    ) -> tuple[T, int]:
        """Run ``fn`` in one writer transaction (retried per :mod:`dataaccess.retry`; the whole
        transaction is re-run). Returns ``(result, commit_lsn)``."""

        async def op() -> tuple[T, int]:
            async with self.pools.writer() as conn:
                tx = conn.transaction()
                try:
                    await tx.start()
                except _DB_ERRORS as exc:
                    # BEGIN failed (typically a pooled connection that died with a restarted
                    # primary): none of fn's statements was sent, so even non-idempotent work
                    # may be retried on a fresh connection.
                    raise ConnectPhaseError(exc) from exc
                try:
                    result = await fn(conn)
                except BaseException:
                    with contextlib.suppress(Exception):  # dead connection: the server aborts anyway
                        await tx.rollback()
                    raise
                await tx.commit()
                # Committed: from here on nothing may raise into the retry loop.
                lsn = await self._commit_lsn(conn)
            return result, lsn

        return await run_with_retry(
            op,
            policy=self.policy,
            idempotent=idempotent,
            context=context,
            on_read_only=self.pools.expire_writer_connections,
            on_auth_failure=self.pools.refresh_credentials,
            on_connection_lost=self._expire_all,
            on_retry=self._count_retry,
            on_prepared_statement_error=self._prepared_lost,
        )

    async def _commit_lsn(self, conn: asyncpg.Connection) -> int:
        if not self.settings.lsn_routing:
            return WRITER_ONLY_LSN  # no LSNs to compare: written entities read from the writer
        try:
            raw = await conn.fetchval("SELECT pg_current_wal_insert_lsn()::text")
            lsn = lsn_to_int(raw)
            if lsn is None:
                return WRITER_ONLY_LSN
            self.pools.note_writer_lsn(lsn)
            return lsn
        except (TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            # e.g. Aurora without WAL functions, or the connection dropped after COMMIT.
            log.info("commit LSN unavailable (%s): marking entities writer-only", type(exc).__name__)
            return WRITER_ONLY_LSN

    async def after_write(self, lsn: int, *, entities: Iterable[str], cache_keys: Iterable[str] = ()) -> None:
        """Record markers, then invalidate cache keys (order matters: a cache miss after the
        invalidation must already see the marker). Never raises. Shielded: a caller cancelled
        after the commit must not leave a stale cache entry behind."""
        task = asyncio.ensure_future(self._after_write(lsn, list(entities), list(cache_keys)))
        self._post_commit.add(task)
        task.add_done_callback(self._post_commit.discard)
        await asyncio.shield(task)

    async def _after_write(self, lsn: int, entities: list[str], keys: list[str]) -> None:
        await self.markers.mark(entities, lsn)
        if self.cache is not None and keys:
            await self.cache.invalidate(*keys)

    async def drain(self) -> None:
        """Wait for post-commit work still running for cancelled callers (used by close())."""
        # asyncio.wait, not gather: a cancelled close() must not cancel this work with it.
        if self._post_commit:
            await asyncio.wait(self._post_commit)

    async def read(
        self,
        entities: list[str],
        fn: Callable[[asyncpg.Connection, Source], Awaitable[T]],
        *,
        context: str,
        writer: bool = False,
    ) -> T:
        """Run ``fn`` on a connection fresh enough for every entity in ``entities`` (retried);
        ``writer=True`` forces the writer."""

        async def op() -> T:
            if writer:
                min_lsn: int | None = WRITER_REQUIRED
            else:
                min_lsn = await self.markers.max_required_lsn(entities) if entities else None
            async with self.pools.reader(min_lsn) as (conn, source):
                return await fn(conn, source)

        return await run_with_retry(
            op,
            policy=self.policy,
            idempotent=True,
            context=context,
            on_read_only=self.pools.expire_writer_connections,
            on_auth_failure=self.pools.refresh_credentials,
            on_connection_lost=self._expire_all,
            on_retry=self._count_retry,
            on_prepared_statement_error=self._prepared_lost,
        )
