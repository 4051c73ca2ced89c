"""asyncpg pools for the writer and the replicas, with health-checked, LSN-aware read routing.

Proxy-safety rules applied to every pool (data-access-facts §1):

* ``reset=`` is a no-op: asyncpg's default reset query (``pg_advisory_unlock_all(); CLOSE ALL;
  UNLISTEN *; RESET ALL``) pins RDS Proxy sessions. asyncpg still rolls back an open transaction.
* No ``init``/``setup`` ``SET``, no ``LISTEN``, no session advisory locks (only ``*_xact_lock``).
* ``statement_timeout`` goes in the ``server_settings`` startup packet (direct connections) or is
  left to ``ALTER ROLE`` (PgBouncer rejects unknown startup parameters; RDS Proxy rejects
  ``options`` and pins on ``SET``).
* The schema uses only built-in types (no enums/composites/citext), so asyncpg never runs its
  type introspection, whose ``set_config('jit', ...)`` pins RDS Proxy.
* ``max_inactive_connection_lifetime`` (default 300 s) is far below RDS Proxy's 1800 s idle timeout.

Writer connection lifetime (the fence of a regional failover): asyncpg resolves the DSN's host name
on every new connection (``loop.create_connection`` -> ``getaddrinfo``) and nothing here keeps an
address, so a new connection goes wherever ``writer.<stack>.db.internal`` points *now*. Pooled
connections, though, stay where the name pointed when they were opened. asyncpg's pool has no
maximum connection age, so the writer pool stamps each new connection (pool ``init`` hook, a
:class:`asyncpg.Connection` subclass that can hold the stamp) with when it must be retired:
opened + ``writer_max_connection_lifetime`` x [0.9, 1.0]. :meth:`Pools.writer` closes a connection
past that point instead of handing it out (and takes another one), and instead of returning it to
the pool when the caller gives it back idle. A connection a caller holds is never closed under it,
and one returned inside a transaction goes back to the pool as usual (asyncpg rolls it back) and
is retired at its next acquire. Retiring uses ``terminate()``, as asyncpg's own idle timeout does
for connections nobody holds.

Read routing (:meth:`Pools.reader`): replicas are polled every ``replica_check_interval`` for
``pg_is_in_recovery()``, replay LSN and lag. A read carrying ``min_lsn`` (read-your-writes) goes to
a healthy replica whose replay LSN is known to be ≥ ``min_lsn`` (re-checked live once if the cached
value is behind), otherwise to the writer. Other reads go to the least-loaded healthy replica
(round-robin among equals); with no healthy replica they go to the writer.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import os
import random
import ssl as _ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import asyncpg

from ._aio import cancel_and_wait
from ._tls_names import peer_names_context
from .credentials import CredentialProvider, IamAuthTokenProvider
from .errors import PoolExhausted
from .retry import ConnectPhaseError
from .settings import Settings, mask_url

__all__ = ["WRITER_ONLY_LSN", "WRITER_REQUIRED", "Pools", "ReaderStatus", "lsn_to_int", "pool_kwargs"]

log = logging.getLogger(__name__)

WRITER_REQUIRED = -1
"""``min_lsn`` value meaning "only the writer is known to be fresh enough" (e.g. markers unknown)."""

_DB_ERRORS = (
    TimeoutError,
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
)
"""Everything a connect/acquire/query can raise that means "this endpoint did not serve us"."""

WRITER_ONLY_LSN = 1 << 62
"""Marker LSN used when a commit's LSN could not be read: no replica can prove it is fresh enough."""

Source = Literal["writer", "replica"]


def lsn_to_int(lsn: str | None) -> int | None:
    """``'16/B374D848'`` -> integer byte position (None stays None)."""
    if lsn is None:
        return None
    hi, _, lo = lsn.partition("/")
    return (int(hi, 16) << 32) | int(lo, 16)


async def _noop_reset(_conn: asyncpg.Connection) -> None:
    """Pool reset hook: nothing beyond asyncpg's implicit ROLLBACK (no pinning RESET ALL)."""
    return None


# DSN parameters that change the client's TLS setup beyond sslmode + sslrootcert: a DSN with any
# of them is left to asyncpg to interpret.
_OTHER_DSN_TLS_KEYS = frozenset(
    {"sslcert", "sslkey", "sslcrl", "sslpassword", "ssl_min_protocol_version", "ssl_max_protocol_version"}
)


def _ssl_arg(settings: Settings, dsn: str | None = None, *, peer_names: tuple[str, ...] = ()) -> Any:
    """The ``ssl`` argument for one pool: an ``SSLContext`` built once, a mode string, or None.

    A DSN that verifies against a CA file (``sslmode=verify-ca|verify-full&sslrootcert=<file>``)
    also gets one context per pool. Why: asyncpg otherwise builds a fresh ``SSLContext`` and
    re-parses the CA file for every new connection (OpenSSL 3: ~2 ms idle, ~30 ms under load,
    blocking the event loop), which a pool filling up or a reconnect storm pays per connection.

    ``peer_names`` (the writer's ``writer_tls_names``; Settings allow them with verify-full only):
    a context that accepts a certificate naming any of them instead of the DSN's host.
    """
    if peer_names:
        query = parse_qs(urlsplit(dsn or "").query)
        cafile = (
            settings.ssl_root_cert
            or (query.get("sslrootcert") or [""])[-1]
            or os.environ.get("PGSSLROOTCERT")
        )
        return peer_names_context(None if cafile in (None, "", "system") else cafile, peer_names)
    mode = settings.ssl
    if mode is None and dsn is not None:
        query = parse_qs(urlsplit(dsn).query)
        modes = query.get("sslmode") or []
        if settings.ssl_root_cert:
            # The DSN names the mode (e.g. from_secret's verify-full), settings name the CA bundle.
            mode = modes[0] if modes else None  # type: ignore[assignment]
        elif (
            modes
            and modes[0] in ("verify-ca", "verify-full")
            and (query.get("sslrootcert") or [""])[0] not in ("", "system")
            and not _OTHER_DSN_TLS_KEYS & query.keys()
        ):
            ctx = _ssl.create_default_context(cafile=query["sslrootcert"][0])  # only this CA
            ctx.check_hostname = modes[0] == "verify-full"
            return ctx
    if mode is None:
        return None
    if mode == "disable":
        return False
    if mode in ("prefer", "require") and not settings.ssl_root_cert:
        return mode
    ctx = _ssl.create_default_context(cafile=settings.ssl_root_cert)
    if mode in ("prefer", "require", "verify-ca"):
        ctx.check_hostname = False
        if mode != "verify-ca":
            ctx.verify_mode = _ssl.CERT_NONE
    return ctx


def pool_kwargs(
    settings: Settings,
    dsn: str,
    *,
    role: Literal["writer", "reader"],
    credentials: CredentialProvider | None,
    pgbouncer_detected: bool = False,
) -> dict[str, Any]:
    """The ``asyncpg.create_pool`` keyword arguments for one endpoint (pure; unit-tested).

    ``pgbouncer_detected``: the writer turned out to be a transaction-pooling proxy although
    ``proxy_mode`` did not say so; use PgBouncer-safe values (no statement cache, no startup
    ``statement_timeout``)."""
    writer = role == "writer"
    if writer and pgbouncer_detected:
        via = settings.statement_timeout_via
        settings = settings.replace(
            proxy_mode="pgbouncer",
            statement_cache_size=0,
            statement_timeout_via="role" if via in (None, "startup") else via,
        )
    server_settings = {"application_name": settings.application_name}
    via = settings.effective_statement_timeout_via
    if not writer and settings.statement_timeout_via is None and settings.statement_timeout:
        via = "startup"  # replicas are connected directly, not through the proxy
    if via == "startup" and settings.statement_timeout:
        server_settings["statement_timeout"] = str(int(settings.statement_timeout * 1000))
    kwargs: dict[str, Any] = {
        "dsn": dsn,
        "min_size": settings.writer_pool_min if writer else settings.reader_pool_min,
        "max_size": settings.writer_pool_max if writer else settings.reader_pool_max,
        "max_inactive_connection_lifetime": settings.max_inactive_connection_lifetime,
        "command_timeout": settings.command_timeout,
        "timeout": settings.connect_timeout,
        "statement_cache_size": (
            settings.effective_statement_cache_size
            if writer
            else (settings.statement_cache_size if settings.statement_cache_size is not None else 100)
        ),
        "reset": _noop_reset,
        "server_settings": server_settings,
    }
    ssl = _ssl_arg(settings, dsn, peer_names=settings.writer_tls_names if writer else ())
    if ssl is not None:
        kwargs["ssl"] = ssl
    if isinstance(credentials, IamAuthTokenProvider):
        parts = urlsplit(dsn)
        credentials = credentials.for_endpoint(parts.hostname or credentials.host, parts.port or 5432)
    if credentials is not None:
        kwargs["password"] = credentials.password
        user = credentials.username()
        if user:
            kwargs["user"] = user
    elif settings.password is not None:
        kwargs["password"] = settings.password
    return kwargs


class _DatedConnection(asyncpg.Connection):  # type: ignore[misc]
    """A writer connection that carries when it must be retired (``retire_at``, monotonic seconds
    of the pool's clock; set by the pool's ``init`` hook when the connection is opened)."""

    __slots__ = ("retire_at",)


_LIFETIME_SPREAD = 0.1
"""Each writer connection lives between (1 - this) and 1 times ``writer_max_connection_lifetime``:
connections opened together (pool start, a reconnect storm) are not all replaced at once."""

_POOL_ONLY = (
    "dsn",
    "min_size",
    "max_size",
    "max_inactive_connection_lifetime",
    "reset",
    "init",
    "connection_class",
)
"""``create_pool`` arguments that are not connect arguments (dropped for ``set_connect_args``)."""


@dataclass
class ReaderStatus:
    """Health of one replica endpoint as last observed."""

    dsn: str
    """Masked DSN."""
    healthy: bool = False
    in_recovery: bool | None = None
    replay_lsn: int | None = None
    lag_seconds: float | None = None
    inflight: int = 0
    reads: int = 0
    last_error: str | None = None


class _Reader:
    def __init__(self, dsn: str, pool: asyncpg.Pool | None) -> None:
        self.dsn = dsn
        self.pool = pool
        self.status = ReaderStatus(dsn=mask_url(dsn) or "")


class Pools:
    """Writer pool + one pool per replica. Create with :meth:`Pools.create`.

    :param clock: monotonic seconds dating writer LSN samples for the staleness check and writer
        connections for ``writer_max_connection_lifetime``. Default ``time.monotonic``.
    :param rng: draws each writer connection's lifetime within [0.9, 1.0] x the setting. Default:
        a new ``random.Random()``.
    """

    def __init__(
        self,
        settings: Settings,
        credentials: CredentialProvider | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._rng = rng or random.Random()
        self.credentials = credentials
        self.writer_dsn = settings.writer_dsn
        self._writer: asyncpg.Pool | None = None
        self._readers: list[_Reader] = []
        self._rr = itertools.count()
        self._health_task: asyncio.Task[None] | None = None
        self._closed = False
        self._swap_lock = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()
        self.pgbouncer_detected = settings.proxy_mode == "pgbouncer"
        """True when the writer is (or was found to be) a transaction-pooling proxy."""
        self._writer_lsns: collections.deque[tuple[float, int]] = collections.deque(maxlen=4096)
        self.routed = {"writer": 0, "replica": 0}
        """Counters: reads routed to the writer / to replicas."""
        self.exhausted = 0
        """Acquires that timed out with every connection of the pool busy (back-pressure)."""
        self.retired = 0
        """Writer connections closed because they outlived ``writer_max_connection_lifetime``."""

    # -- lifecycle --------------------------------------------------------------------------------
    @classmethod
    async def create(
        cls,
        settings: Settings,
        credentials: CredentialProvider | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> Pools:
        """Open the writer pool (must succeed) and the replica pools (failures only mark them
        unhealthy), then start the health checker. ``clock``: see :class:`Pools`."""
        if credentials is None and settings.credentials is not None:
            credentials = settings.credentials
        self = cls(settings, credentials, clock=clock)
        try:
            self._writer = await self._open_pool(settings.writer_dsn, "writer")
            self._readers = list(await asyncio.gather(*(self._open_reader(d) for d in settings.reader_dsns)))
            await self.check_replicas()
            self._health_task = asyncio.create_task(self._health_loop(), name="dataaccess-replica-health")
        except BaseException:
            # Failed or cancelled half-way: nothing opened so far may outlive this call.
            await asyncio.shield(self.close())
            raise
        return self

    def _kwargs(self, dsn: str, role: Literal["writer", "reader"]) -> dict[str, Any]:
        kwargs = pool_kwargs(
            self.settings,
            dsn,
            role=role,
            credentials=self._credentials_for(role),
            pgbouncer_detected=self.pgbouncer_detected,
        )
        if role == "writer" and self.settings.writer_max_connection_lifetime > 0:
            kwargs["connection_class"] = _DatedConnection
            kwargs["init"] = self._date_connection
        return kwargs

    def _connect_kwargs(self, dsn: str, role: Literal["writer", "reader"]) -> dict[str, Any]:
        """:meth:`_kwargs` without the pool-only arguments (for ``Pool.set_connect_args``)."""
        kwargs = self._kwargs(dsn, role)
        for pool_only in _POOL_ONLY:
            kwargs.pop(pool_only, None)
        return kwargs

    async def _date_connection(self, conn: asyncpg.Connection) -> None:
        """The writer pool's ``init`` hook (once per new connection; sends nothing): stamp when the
        connection must be retired."""
        lifetime = self.settings.writer_max_connection_lifetime
        conn.retire_at = self._clock() + lifetime * (1.0 - _LIFETIME_SPREAD * self._rng.random())

    def _outlived(self, conn: asyncpg.Connection) -> bool:
        """``conn`` (a pooled writer connection) is past its lifetime."""
        retire_at = getattr(conn, "retire_at", None)  # the pool's proxy forwards to the connection
        return retire_at is not None and self._clock() >= retire_at

    def _retire(self, conn: asyncpg.Connection) -> None:
        """Close an outlived writer connection nobody uses. Closing hands its holder back to the
        pool, which opens a new connection (resolving the writer's name again) when next asked."""
        self.retired += 1
        log.debug("writer connection outlived writer_max_connection_lifetime: closing it")
        conn.terminate()

    async def _acquire_writer(self, pool: asyncpg.Pool) -> asyncpg.Connection:
        """A writer connection within its lifetime (outlived ones are closed on the way)."""
        conn = await pool.acquire(timeout=self.settings.acquire_timeout)
        for _ in range(self.settings.writer_pool_max + 1):  # a new connection is never outlived
            if not self._outlived(conn):
                break
            self._retire(conn)
            await pool.release(conn)  # closing already returned it: a no-op, kept for clarity
            conn = await pool.acquire(timeout=self.settings.acquire_timeout)
        return conn

    async def _release_writer(self, pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
        """Give a writer connection back; close it instead if it is idle and outlived."""
        try:
            retire = not conn.is_closed() and not conn.is_in_transaction() and self._outlived(conn)
        except asyncpg.InterfaceError:
            # Already back in the pool: a lost connection is released by asyncpg as it closes.
            retire = False
        if retire:
            self._retire(conn)
        await pool.release(conn)

    def _credentials_for(self, role: Literal["writer", "reader"]) -> CredentialProvider | None:
        """Replicas use ``settings.reader_credentials`` (the read-only user) when set."""
        if role == "reader" and self.settings.reader_credentials is not None:
            return self.settings.reader_credentials
        return self.credentials

    async def _open_pool(self, dsn: str, role: Literal["writer", "reader"]) -> asyncpg.Pool:
        refreshed = False
        while True:
            try:
                return await asyncpg.create_pool(**self._kwargs(dsn, role))
            except asyncpg.InvalidPasswordError:
                provider = self._credentials_for(role)
                if refreshed or provider is None:
                    raise
                refreshed = True
                await provider.refresh()
            except asyncpg.ProtocolViolationError as exc:
                if role != "writer" or self.pgbouncer_detected or not _is_startup_param_rejection(exc):
                    raise
                self._note_pgbouncer(f"the writer rejected a startup parameter ({exc})")

    def _note_pgbouncer(self, why: str) -> None:
        self.pgbouncer_detected = True
        log.warning(
            "writer looks like PgBouncer in transaction mode (%s): statement cache off, statement_timeout "
            "not sent at startup (set it per role). Set proxy_mode='pgbouncer' to silence this.",
            why,
        )

    async def switch_writer_to_pgbouncer_mode(self, why: str) -> None:
        """Reconfigure the writer pool for a transaction-pooling proxy and drop its connections
        (called when prepared statements turn out not to survive between transactions)."""
        if not self.pgbouncer_detected:
            self._note_pgbouncer(why)
        self.writer_pool.set_connect_args(self.writer_dsn, **self._connect_kwargs(self.writer_dsn, "writer"))
        await self.writer_pool.expire_connections()

    async def _open_reader(self, dsn: str) -> _Reader:
        try:
            pool = await self._open_pool(dsn, "reader")
        except _DB_ERRORS as exc:
            log.warning("replica %s unavailable at startup: %s", mask_url(dsn), type(exc).__name__)
            reader = _Reader(dsn, None)
            reader.status.last_error = type(exc).__name__
            return reader
        return _Reader(dsn, pool)

    async def close(self) -> None:
        """Stop health checks and close every pool (waits for released connections briefly)."""
        self._closed = True
        if self._health_task is not None:
            await cancel_and_wait(self._health_task, what="replica health check")
        pools = [r.pool for r in self._readers if r.pool is not None]
        if self._writer is not None:
            pools.append(self._writer)
        await asyncio.gather(*(_close_pool(p) for p in pools), *self._closing)

    def _close_later(self, pool: asyncpg.Pool) -> None:
        task = asyncio.get_running_loop().create_task(_close_pool(pool))
        self._closing.add(task)  # keep a reference until done (the loop only holds weak ones)
        task.add_done_callback(self._closing.discard)

    @property
    def writer_pool(self) -> asyncpg.Pool:
        assert self._writer is not None, "pools not created"
        return self._writer

    @property
    def readers(self) -> list[ReaderStatus]:
        """Status of each replica endpoint (copies)."""
        return [ReaderStatus(**vars(r.status)) for r in self._readers]

    # -- runtime reconfiguration ----------------------------------------------------------------
    async def set_writer_dsn(self, dsn: str) -> None:
        """Point the writer pool at ``dsn`` (e.g. a promoted standby). New connections go there at
        once; the old pool is closed in the background once its connections are released."""
        self.settings.replace(writer_dsn=dsn)  # validates the DSN
        async with self._swap_lock:
            new = await self._open_pool(dsn, "writer")  # keeps pgbouncer_detected: same kind of endpoint
            old, self._writer, self.writer_dsn = self._writer, new, dsn
        if old is not None:
            self._close_later(old)

    async def set_reader_dsns(self, dsns: list[str] | tuple[str, ...]) -> None:
        """Replace the replica endpoints (validated first)."""
        self.settings.replace(reader_dsns=tuple(dsns))
        async with self._swap_lock:
            new = list(await asyncio.gather(*(self._open_reader(d) for d in dsns)))
            old, self._readers = self._readers, new
        for r in old:
            if r.pool is not None:
                self._close_later(r.pool)
        await self.check_replicas()

    async def expire_writer_connections(self) -> None:
        """Drop pooled writer connections (after ReadOnlySQLTransactionError: they point at a
        demoted primary) so the next acquire reconnects through DNS/the proxy."""
        await self.writer_pool.expire_connections()

    async def refresh_credentials(self) -> None:
        """Force the credential provider to fetch fresh material; update the user if it changed."""
        providers = {id(p): p for p in (self.credentials, self.settings.reader_credentials) if p is not None}
        if not providers:
            return
        for provider in providers.values():
            await provider.refresh()
        if not any(p.username() for p in providers.values()):
            return
        targets = [(self._writer, self.writer_dsn)] + [(r.pool, r.dsn) for r in self._readers]
        for pool, dsn in targets:
            if pool is not None:
                role: Literal["writer", "reader"] = "writer" if pool is self._writer else "reader"
                pool.set_connect_args(dsn, **self._connect_kwargs(dsn, role))

    # -- acquisition ------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def writer(self) -> AsyncIterator[asyncpg.Connection]:
        """A writer connection. Errors while acquiring are wrapped in ``ConnectPhaseError``."""
        pool = self.writer_pool
        try:
            conn = await self._acquire_writer(pool)
        except TimeoutError as exc:
            if _saturated(pool, self.settings.writer_pool_max):
                # Back-pressure, not a dead server: no retry, and no recycling of a pool whose
                # connections are all healthy and busy (that would turn load into a reconnect storm).
                self.exhausted += 1
                raise PoolExhausted(
                    f"writer pool exhausted: all {self.settings.writer_pool_max} connections stayed "
                    f"busy for acquire_timeout={self.settings.acquire_timeout}s "
                    "(raise writer_pool_max or shed load)"
                ) from exc
            raise ConnectPhaseError(exc) from exc
        except asyncpg.ProtocolViolationError as exc:
            if not self.pgbouncer_detected and _is_startup_param_rejection(exc):
                await self.switch_writer_to_pgbouncer_mode(f"the writer rejected a startup parameter ({exc})")
            raise ConnectPhaseError(exc) from exc
        except _DB_ERRORS as exc:
            raise ConnectPhaseError(exc) from exc
        try:
            yield conn
        finally:
            await self._release_writer(pool, conn)

    @contextlib.asynccontextmanager
    async def reader(self, min_lsn: int | None = None) -> AsyncIterator[tuple[asyncpg.Connection, Source]]:
        """A connection fresh enough for ``min_lsn`` (None: any healthy replica; ``WRITER_REQUIRED``:
        the writer). Yields ``(connection, "replica" | "writer")``."""
        if min_lsn is None or WRITER_REQUIRED < min_lsn < WRITER_ONLY_LSN:
            for reader in self._candidates():
                conn = await self._try_reader(reader, min_lsn)
                if conn is None:
                    continue
                reader.status.inflight += 1
                reader.status.reads += 1
                self.routed["replica"] += 1
                try:
                    yield conn, "replica"
                except _REPLICA_DOWN as exc:
                    # Take it out now (not at the next health check) so the retry goes elsewhere.
                    self._mark_unhealthy(reader, exc)
                    raise
                finally:
                    reader.status.inflight -= 1
                    assert reader.pool is not None
                    await reader.pool.release(conn)
                return
        self.routed["writer"] += 1
        async with self.writer() as conn:
            yield conn, "writer"

    def _candidates(self) -> list[_Reader]:
        healthy = [r for r in self._readers if r.status.healthy and r.pool is not None]
        if not healthy:
            return []
        start = next(self._rr) % len(healthy)
        rotated = healthy[start:] + healthy[:start]
        return sorted(rotated, key=lambda r: r.status.inflight)  # stable: round-robin among equals

    async def _try_reader(self, reader: _Reader, min_lsn: int | None) -> asyncpg.Connection | None:
        assert reader.pool is not None
        known = reader.status.replay_lsn
        if min_lsn is not None and known is not None and known >= min_lsn:
            min_lsn = None  # already known to be caught up
        try:
            conn = await reader.pool.acquire(timeout=self.settings.acquire_timeout)
        except TimeoutError as exc:
            if _saturated(reader.pool, self.settings.reader_pool_max):
                self.exhausted += 1
                return None  # busy, not broken: this read goes elsewhere, the replica stays in
            self._mark_unhealthy(reader, exc)
            return None
        except _DB_ERRORS as exc:
            self._mark_unhealthy(reader, exc)
            return None
        if min_lsn is None:
            return conn
        # Cached LSN is behind: ask this replica now. A separate statement from the read itself, so
        # the read's snapshot is taken after replay reached the LSN.
        try:
            row = await conn.fetchrow(_LSN_SQL, timeout=self.settings.command_timeout)
        except _DB_ERRORS as exc:
            await reader.pool.release(conn)
            self._mark_unhealthy(reader, exc)
            return None
        lsn = lsn_to_int(row["lsn"])
        if lsn is not None:
            reader.status.replay_lsn = max(lsn, reader.status.replay_lsn or 0)
        if lsn is not None and lsn >= min_lsn:
            return conn
        await reader.pool.release(conn)
        return None

    def _mark_unhealthy(self, reader: _Reader, exc: BaseException) -> None:
        if reader.status.healthy:
            log.warning("replica %s marked unhealthy: %s", reader.status.dsn, type(exc).__name__)
        reader.status.healthy = False
        reader.status.last_error = type(exc).__name__

    # -- health -----------------------------------------------------------------------------------
    def note_writer_lsn(self, lsn: int) -> None:
        """Record a writer WAL position (after every commit, and sampled by every health check)
        for the staleness check."""
        now = self._clock()
        if self._writer_lsns and now - self._writer_lsns[-1][0] < 0.1:
            # One sample per 100 ms keeps max_replica_lag's worth of history small. The newest LSN
            # joins the open bucket (dropping it would hide the last write from the staleness
            # check); dating it from the bucket's start errs on the safe side by < 100 ms.
            start, newest = self._writer_lsns[-1]
            self._writer_lsns[-1] = (start, max(newest, lsn))
            return
        self._writer_lsns.append((now, lsn))

    def overdue_lsn(self) -> int | None:
        """Highest commit LSN recorded more than ``max_replica_lag`` seconds ago: a replica that has
        not replayed it is lagging too much. None when no such commit is known."""
        cutoff = self._clock() - self.settings.max_replica_lag
        best = None
        while len(self._writer_lsns) > 1 and self._writer_lsns[1][0] <= cutoff:
            self._writer_lsns.popleft()  # keep only the newest sample older than the cutoff
        if self._writer_lsns and self._writer_lsns[0][0] <= cutoff:
            best = self._writer_lsns[0][1]
        return best

    async def check_replicas(self) -> None:
        """Poll every replica once (recovery state, replay LSN, lag) and update health.

        Also samples the writer's current WAL position first, so a replica that stopped
        replaying (a detached or stalled WAL receiver reports no pending WAL and "lag 0") is taken
        out by every process, including one that never writes: a replica whose replay position is
        behind a writer position sampled more than ``max_replica_lag`` ago is unhealthy."""
        if self._readers:
            await self._sample_writer_lsn()
        await asyncio.gather(*(self._check(r) for r in self._readers))

    async def _sample_writer_lsn(self) -> None:
        if not self.settings.lsn_routing or self._writer is None:
            return
        if _saturated(self._writer, self.settings.writer_pool_max):
            # Every writer connection is busy (a hot row under load): waiting up to acquire_timeout
            # here would hold up every replica check behind it, and keep a lagging replica in
            # rotation that long. Skip the sample: those busy connections note their commits' LSNs.
            return
        pool = self._writer
        try:
            conn = await self._acquire_writer(pool)
            try:
                # The write position, not the insert position: a standby can replay only WAL that
                # was written, so a caught-up standby is exactly at it.
                raw = await conn.fetchval(
                    "SELECT pg_current_wal_lsn()::text", timeout=self.settings.command_timeout
                )
            finally:
                await self._release_writer(pool, conn)
        except _DB_ERRORS as exc:
            log.debug("writer WAL position not sampled (%s)", type(exc).__name__)
            return
        lsn = lsn_to_int(raw)
        if lsn is not None:
            self.note_writer_lsn(lsn)

    async def _check(self, reader: _Reader) -> None:
        if reader.pool is None:
            try:
                reader.pool = await self._open_pool(reader.dsn, "reader")
            except _DB_ERRORS as exc:
                self._mark_unhealthy(reader, exc)
                return
        try:
            async with reader.pool.acquire(timeout=self.settings.acquire_timeout) as conn:
                sql = _HEALTH_SQL if self.settings.lsn_routing else _HEALTH_SQL_NO_LSN
                row = await conn.fetchrow(sql, timeout=self.settings.command_timeout)
        except _DB_ERRORS as exc:
            self._mark_unhealthy(reader, exc)
            return
        st = reader.status
        st.in_recovery = row["in_recovery"]
        lsn = lsn_to_int(row["lsn"])
        if lsn is not None:
            st.replay_lsn = max(lsn, st.replay_lsn or 0) if st.in_recovery else lsn
        st.lag_seconds = float(row["lag"] or 0.0)
        healthy = st.lag_seconds <= self.settings.max_replica_lag
        overdue = self.overdue_lsn()
        if healthy and st.in_recovery and overdue is not None and (st.replay_lsn or 0) < overdue:
            # Behind a writer position seen more than max_replica_lag ago (our own commits and the
            # health loop's samples): stale even if its own lag figure looks fine (e.g. the WAL
            # receiver is disconnected or stalled, so nothing is "pending").
            st.lag_seconds = max(st.lag_seconds, self.settings.max_replica_lag)
            healthy = False
        if not healthy and st.healthy:
            log.warning("replica %s lagging %.1fs: no reads until it catches up", st.dsn, st.lag_seconds)
        st.healthy = healthy
        st.last_error = None

    async def _health_loop(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.settings.replica_check_interval)
            try:
                await self.check_replicas()
            except Exception:  # never let the checker die
                log.exception("replica health check failed")

    def stats(self) -> dict[str, Any]:
        """Pool sizes and routing counters (for metrics)."""
        w = self.writer_pool
        return {
            "writer": {"size": w.get_size(), "idle": w.get_idle_size(), "dsn": mask_url(self.writer_dsn)},
            "readers": [vars(r) for r in self.readers],
            "routed": dict(self.routed),
            "exhausted": self.exhausted,
            "writer_retired": self.retired,
        }


def _saturated(pool: asyncpg.Pool, max_size: int) -> bool:
    """Every connection the pool may hold exists and is checked out."""
    return bool(pool.get_size() >= max_size and pool.get_idle_size() == 0)


async def _close_pool(pool: asyncpg.Pool) -> None:
    try:
        async with asyncio.timeout(5.0):  # not wait_for: 3.11's can drop the caller's cancellation
            await pool.close()
    except (TimeoutError, OSError, asyncpg.InterfaceError, asyncpg.PostgresError):
        pool.terminate()


def _is_startup_param_rejection(exc: BaseException) -> bool:
    return "unsupported startup parameter" in str(exc)


_REPLICA_DOWN = (
    OSError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.InternalClientError,
)

_LSN_SQL = """
SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text AS lsn
"""

# Lag is 0 when everything received has been replayed (an idle primary produces no commits, so a
# timestamp difference alone would grow forever); otherwise time since the last replayed commit.
_HEALTH_SQL_NO_LSN = "SELECT pg_is_in_recovery() AS in_recovery, NULL::text AS lsn, 0::float8 AS lag"

_HEALTH_SQL = """
SELECT pg_is_in_recovery() AS in_recovery,
       CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text AS lsn,
       CASE WHEN NOT pg_is_in_recovery()
                 OR pg_last_wal_receive_lsn() IS NULL
                 OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
            ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)
       END::float8 AS lag
"""
