"""The plumbing repositories share: retried writer transactions that record read-your-writes
markers and invalidate cache keys after commit, and marker-aware routed reads.

A replica read failing because an object does not exist there yet (``42P01`` undefined table,
``42703`` column, ``42883`` function, ``42704`` object, ``3F000`` schema: DDL not replayed) is
re-run on the writer at once, and the schema floor is raised to the writer's current LSN so no
replica serves reads until it has replayed that far. Such errors never reach callers unless the
writer raises them too."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

import asyncpg

from .cache import CacheAside
from .consistency import WriteMarkers, strictest
from .errors import PoolExhausted
from .migrations import record_schema_lsn
from .pools import _DB_ERRORS, WRITER_ONLY_LSN, WRITER_REQUIRED, Pools, Source, lsn_to_int
from .retry import ConnectPhaseError, RetryKind, RetryPolicy, run_with_retry
from .settings import Settings

__all__ = ["PostCommit", "Runtime", "retry_policy"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_OBJECT_MISSING = frozenset({"42P01", "42703", "42883", "42704", "3F000"})
"""SQLSTATEs of "object does not exist": on a replica, usually DDL it has not replayed yet."""


def retry_policy(settings: Settings) -> RetryPolicy:
    """The :class:`RetryPolicy` described by ``settings``."""
    return RetryPolicy(
        attempts=settings.retry_attempts,
        base_delay=settings.retry_base_delay,
        max_delay=settings.retry_max_delay,
        too_many_connections_delay=settings.too_many_connections_delay,
    )


@dataclass(frozen=True, slots=True)
class PostCommit:
    """What a committed write changed (see :meth:`Runtime.after_write`)."""

    entities: tuple[str, ...]
    cache_keys: tuple[str, ...] = ()
    generations: tuple[str, ...] = ()


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
        self.schema_fallbacks = 0
        """Replica reads re-run on the writer because an object was missing on the replica."""

    async def _prepared_lost(self) -> None:
        await self.pools.switch_writer_to_pgbouncer_mode("prepared statements vanished between transactions")

    def _count_retry(self, kind: RetryKind) -> None:
        self.retries[kind.value] += 1

    async def _expire_all(self) -> None:
        await self.pools.expire_writer_connections()

    async def _retry(
        self,
        op: Callable[[], Awaitable[T]],
        *,
        context: str,
        idempotent: bool,
        in_flight_attempts: int | None = None,
    ) -> T:
        """The one retry loop of every read and write: :func:`run_with_retry` with this runtime's
        policy and its reactions (expire writer connections after a read-only error or a lost
        connection, refresh credentials, switch to PgBouncer mode, count retries by kind)."""
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
            in_flight_attempts=in_flight_attempts,
        )

    async def write(
        self,
        fn: Callable[[asyncpg.Connection], Awaitable[T]],
        *,
        context: str,
        idempotent: bool,
        after_commit: Callable[[T], PostCommit | None] | None = None,
    ) -> tuple[T, int]:
        """Run ``fn`` in one writer transaction (retried per :mod:`dataaccess.retry`; the whole
        transaction is re-run). Returns ``(result, commit_lsn)``.

        ``after_commit(result)`` names what the commit changed; its :meth:`after_write` runs
        before this returns, and also when the caller is cancelled (or anything raises) after
        the commit, e.g. while the commit LSN is read or the connection released: then in the
        background with a writer-only marker; likewise when COMMIT itself is interrupted, since
        the server may have committed. Default: None (the caller runs ``after_write``).
        """
        committed: list[T] = []
        maybe_committed: list[T] = []

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
                try:
                    await tx.commit()
                except BaseException:
                    # Interrupted during COMMIT (cancelled, connection lost): the server may have
                    # committed. Invalidating a row that did not change is harmless; keeping a
                    # stale one cached is not.
                    maybe_committed.append(result)
                    raise
                committed.append(result)
                # Committed: from here on nothing may raise into the retry loop.
                lsn = await self.commit_lsn(conn)
            return result, lsn

        try:
            result, lsn = await self._retry(op, context=context, idempotent=idempotent)
        except BaseException:
            done = committed or maybe_committed
            work = after_commit(done[-1]) if done and after_commit is not None else None
            if work is not None:  # (maybe) committed, then cancelled: the cache must not keep the old row
                self._spawn_after_write(WRITER_ONLY_LSN, work)
            raise
        work = after_commit(result) if after_commit is not None else None
        if work is not None:
            await asyncio.shield(self._spawn_after_write(lsn, work))
        return result, lsn

    async def write_statement(
        self,
        fn: Callable[[asyncpg.Connection], Awaitable[T]],
        *,
        context: str,
        after_commit: Callable[[T], PostCommit | None],
        if_unknown: PostCommit | None = None,
        in_flight_attempts: int | None = None,
    ) -> T:
        """Run ``fn`` — exactly one statement, which is its own transaction (no BEGIN/COMMIT round
        trips, so row locks it takes are held for no client round trip) — on the writer, retried
        like an idempotent :meth:`write`; ``fn`` must therefore be safe to re-run.

        ``after_commit(result)``'s work (markers, invalidations) is done before this returns,
        shielded from the caller's cancellation. When the statement fails or is interrupted after
        it was sent, it may have committed: ``if_unknown`` (default None: nothing) is applied with
        a writer-only marker so no cache keeps a row it may have changed.

        ``in_flight_attempts`` (default None: ``retry_attempts`` bounds every failure): how many
        times the statement may be re-sent after its connection was lost in flight (see
        :func:`~dataaccess.retry.run_with_retry`).
        """
        sent: list[bool] = []

        async def op() -> tuple[T, PostCommit | None, int]:
            async with self.pools.writer() as conn:
                sent.append(True)
                result = await fn(conn)
                work = after_commit(result)
                # The commit LSN only matters when something must be marked.
                lsn = await self.commit_lsn(conn) if work is not None else WRITER_ONLY_LSN
            return result, work, lsn

        try:
            result, work, lsn = await self._retry(
                op, context=context, idempotent=True, in_flight_attempts=in_flight_attempts
            )
        except BaseException:
            if sent and if_unknown is not None:
                self._spawn_after_write(WRITER_ONLY_LSN, if_unknown)
            raise
        if work is not None:
            await asyncio.shield(self._spawn_after_write(lsn, work))
        return result

    async def commit_lsn(self, conn: asyncpg.Connection) -> int:
        """The writer's WAL insert position right after a commit on ``conn`` (never raises):
        ``WRITER_ONLY_LSN`` when unknown or ``lsn_routing`` is off."""
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

    async def after_write(
        self,
        lsn: int,
        *,
        entities: Iterable[str],
        cache_keys: Iterable[str] = (),
        generations: Iterable[str] = (),
    ) -> None:
        """Record markers (and bump the cache ``generations`` of whole-table query results), then
        invalidate cache keys (order matters: a cache miss after the invalidation must already
        see the marker). Never raises. Shielded: a caller cancelled after the commit must not
        leave a stale cache entry behind."""
        work = PostCommit(tuple(entities), tuple(cache_keys), tuple(generations))
        await asyncio.shield(self._spawn_after_write(lsn, work))

    def _spawn_after_write(self, lsn: int, work: PostCommit) -> asyncio.Future[None]:
        task = asyncio.ensure_future(
            self._after_write(lsn, list(work.entities), list(work.cache_keys), list(work.generations))
        )
        self._post_commit.add(task)  # strong reference until done; drain() waits for it
        task.add_done_callback(self._post_commit.discard)
        return task

    async def _after_write(self, lsn: int, entities: list[str], keys: list[str], gens: list[str]) -> None:
        await self.markers.mark(entities, lsn, generations=gens)
        near = self.cache.near if self.cache is not None else None
        if near is not None and gens:
            # The generations were bumped (or are owed to Redis): this process's copies are old.
            near.invalidate([self.markers.generation_key(g) for g in gens])
        if self.cache is not None and keys:
            await self.cache.invalidate(*keys)

    async def schema_changed(self, lsn: int, *, objects_created: bool = True) -> None:
        """After DDL committed at ``lsn`` (``migrate()``, new partitions): no read, in any process,
        may use a replica that has not replayed it. Records the schema floor in-process, in Redis
        and in the ``schema_lsn`` table (read by processes when they connect). Never raises.

        With the LSN unknown (``lsn_routing=False``) the change is a writer-only marker for
        ``read_your_writes_ttl``, set only when ``objects_created`` (a no-op ``migrate()`` at
        every process start must not push all reads to the writer); the replica fallback for
        missing objects covers the rest."""
        if not 0 < lsn < WRITER_ONLY_LSN:
            if objects_created:
                await asyncio.shield(self.markers.mark_schema(WRITER_ONLY_LSN))
            return
        await asyncio.shield(self.markers.mark_schema(lsn))
        try:
            async with self.pools.writer() as conn:
                await record_schema_lsn(conn, lsn)
        except (ConnectPhaseError, PoolExhausted, *_DB_ERRORS) as exc:
            # Redis and the replica fallback still cover it; the next migrate() records it again.
            log.warning("schema LSN not recorded in the database (%s)", type(exc).__name__)

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
        min_lsn: int | None = None,
    ) -> T:
        """Run ``fn`` on a connection fresh enough for every entity in ``entities`` (retried);
        ``writer=True`` forces the writer; ``min_lsn`` adds a requirement the caller already
        fetched (e.g. :meth:`WriteMarkers.table_state`). Reads naming no entity still honour the
        in-process schema floor."""

        async def op() -> T:
            if writer:
                need: int | None = WRITER_REQUIRED
            elif entities:
                need = strictest(await self.markers.max_required_lsn(entities), min_lsn)
            else:
                need = strictest(self.markers.local_requirement(), min_lsn)
            async with self.pools.reader(need) as (conn, source):
                try:
                    return await fn(conn, source)
                except asyncpg.PostgresError as exc:
                    if source != "replica" or exc.sqlstate not in _OBJECT_MISSING:
                        raise
                    missing = exc
            # Outside the replica's connection (released): re-run on the writer.
            return await self._read_on_writer_after_missing_object(fn, context, missing)

        return await self._retry(op, context=context, idempotent=True)

    async def _read_on_writer_after_missing_object(
        self,
        fn: Callable[[asyncpg.Connection, Source], Awaitable[T]],
        context: str,
        exc: asyncpg.PostgresError,
    ) -> T:
        log.warning(
            "%s: replica lacks an object (%s, SQLSTATE %s), probably DDL not replayed yet: "
            "reading from the writer; replicas must now replay past its current LSN",
            context,
            type(exc).__name__,
            exc.sqlstate,
        )
        self.schema_fallbacks += 1
        async with self.pools.reader(WRITER_REQUIRED) as (conn, source):
            if self.settings.lsn_routing:
                with contextlib.suppress(*_DB_ERRORS):
                    lsn = lsn_to_int(await conn.fetchval("SELECT pg_current_wal_insert_lsn()::text"))
                    if lsn is not None:
                        self.markers.raise_floor(lsn)
            else:
                await self.markers.mark_schema(WRITER_ONLY_LSN)
            return await fn(conn, source)
