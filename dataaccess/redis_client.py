"""Factory for the redis-py asyncio client used by every Redis feature.

Why a factory: redis-py's plain ``ConnectionPool`` raises "Too many connections" instead of
waiting and defaults to 2**31 connections; its default retry policy (8.x: 10 retries up to 1 s
each) turns a dead Redis into multi-second stalls. This builds a ``BlockingConnectionPool`` with a
bound and a wait timeout, short socket timeouts, a health check for idle connections and a small
retry budget, and enforces TLS when an ElastiCache auth token is used.

It also plugs a lost-cancellation hole: redis-py sends every command under Python 3.11's
``asyncio.wait_for``, which returns normally (dropping the cancellation) when the caller is
cancelled just as the send completes. A task looping over Redis calls then never stops. The
connection classes here re-raise that dropped cancellation (see :class:`_CancelSafeMixin`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl as _ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.connection import Connection, SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["RedisOptions", "create_redis", "drop_stale_connections", "redacted_url", "redis_ssl_context"]


@dataclass(frozen=True, kw_only=True, slots=True)
class RedisOptions:
    """Connection settings for :func:`create_redis` (all have production-minded defaults)."""

    max_connections: int = 50
    """Upper bound of pooled connections per process. Default: 50."""
    pool_timeout: float = 2.0
    """Seconds to wait for a free pooled connection before ``ConnectionError``. Default: 2.0."""
    socket_timeout: float = 1.0
    """Seconds per command read/write. Must exceed any ``BLOCK`` used (queues). Default: 1.0."""
    socket_connect_timeout: float = 1.0
    """Seconds to establish TCP (+TLS). Default: 1.0."""
    health_check_interval: int = 15
    """Seconds of idleness after which a connection is PINGed before reuse. Default: 15."""
    retries: int = 1
    """Retries on ConnectionError/TimeoutError (jittered exponential backoff 10 ms..200 ms). Default: 1."""
    client_name: str | None = "commerce-db"
    """CLIENT SETNAME value, visible in CLIENT LIST. Default: ``"commerce-db"``."""
    ssl_ca_certs: str | None = None
    """CA bundle for ``rediss://``; only this CA is trusted (None = the URL's ``ssl_ca_certs``
    query parameter, else the system trust store, which ElastiCache certs chain to).
    Default: None."""
    ssl_context: _ssl.SSLContext | None = None
    """A ready ``SSLContext`` for ``rediss://`` (overrides ``ssl_ca_certs``); build it off the
    event loop with :func:`redis_ssl_context` when the trust store is large. Default: None (built
    once by :func:`create_redis`)."""
    require_tls_with_auth: bool = True
    """Refuse an auth token over plain ``redis://`` (ElastiCache requires in-transit encryption
    for AUTH; sending the token in clear text would leak it). Default: True."""

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {self.max_connections}")
        for name in ("pool_timeout", "socket_timeout", "socket_connect_timeout"):
            value = getattr(self, name)
            if value <= 0:
                raise ValueError(f"{name} must be > 0 seconds, got {value}")
        if self.health_check_interval < 0:
            raise ValueError(f"health_check_interval must be >= 0, got {self.health_check_interval}")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")


class _CancelSafeMixin:
    """Re-raise a cancellation that ``asyncio.wait_for`` (Python < 3.12) swallowed during a send.

    3.11's ``wait_for`` returns the inner result instead of raising ``CancelledError`` when the
    cancel arrives after the inner send finished but before the caller resumed. The cancel request
    is still counted by ``Task.cancelling()``, so a count that grew during a send that returned
    normally means a cancellation was dropped. The connection is dropped too (the reply to the
    command just sent would otherwise be read by the next user), as redis-py does on any
    ``BaseException`` during a send.
    """

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        task = asyncio.current_task()
        before = task.cancelling() if task is not None else 0
        await super().send_packed_command(command, check_health)  # type: ignore[misc]
        if task is not None and task.cancelling() > before:
            await self.disconnect(nowait=True)  # type: ignore[attr-defined]
            raise asyncio.CancelledError


class _DirectSendMixin:
    """Write a command straight to the socket when it can take it at once.

    Why: with ``socket_timeout`` set, redis-py sends every command under ``asyncio.wait_for``,
    which in Python 3.11 wraps the send in a new task and costs two extra event-loop turns per
    command (about a fifth of a cached read). When the connection is open and its write buffer is
    empty, ``writelines`` hands the bytes to the kernel without waiting, so there is nothing to
    time out: write directly. Otherwise (buffer backed up, not connected, closing) use redis-py's
    timed send unchanged. Socket errors surface on the reply read, which redis-py handles as usual.
    """

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if getattr(self, "_writer", None) is None or not self.is_connected:  # type: ignore[attr-defined]
            await super().send_packed_command(command, check_health)  # type: ignore[misc]
            return
        if check_health:
            await self.check_health()  # type: ignore[attr-defined]  # may PING and reconnect
        writer = getattr(self, "_writer", None)
        if (
            writer is None
            or not self.is_connected  # type: ignore[attr-defined]
            or writer.transport.is_closing()
            or writer.transport.get_write_buffer_size() > 0
        ):
            await super().send_packed_command(command, False)  # type: ignore[misc]
            return
        if isinstance(command, str):
            command = command.encode()
        writer.writelines([command] if isinstance(command, bytes) else command)


class _CancelSafeConnection(_CancelSafeMixin, _DirectSendMixin, Connection):
    """``Connection`` that never loses its caller's cancellation."""


class _CancelSafeSSLConnection(_CancelSafeMixin, _DirectSendMixin, SSLConnection):
    """``SSLConnection`` that never loses its caller's cancellation and uses the client's one
    prebuilt ``ssl.SSLContext`` (see :func:`redis_ssl_context` for why)."""

    def __init__(self, *, prebuilt_ssl_context: _ssl.SSLContext | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if prebuilt_ssl_context is not None:
            # RedisSSLContext.get() returns .context when set: no lazy build inside connect().
            self.ssl_context.context = prebuilt_ssl_context


_CANCEL_SAFE: dict[type, type] = {Connection: _CancelSafeConnection, SSLConnection: _CancelSafeSSLConnection}


class _BoundedPool(aioredis.BlockingConnectionPool):
    """``BlockingConnectionPool`` that hands out a free connection without its wait machinery.

    Why: redis-py's blocking ``get_connection`` enters an ``asyncio.Condition``, arms a timeout and
    records metrics on every command, even when a connection is free; profiles showed it costing
    about a fifth of a cached read. When a connection is free and nobody waits, take it directly
    (no await happens between the check and the take, so this is atomic under asyncio); otherwise
    (pool exhausted, waiters queued, maintenance mode) use the blocking path unchanged, so waiting,
    its timeout and fairness to queued waiters are as before.
    """

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        if (
            self._in_maintenance
            or not self._available_connections
            or self._condition.locked()
            or getattr(self._condition, "_waiters", None)
        ):
            return await super().get_connection(*args, **kwargs)
        connection = self._available_connections.pop()
        self._in_use_connections.add(connection)
        try:
            await self.ensure_connection(connection)
        except BaseException:
            await self.release(connection)
            raise
        return connection


def redis_ssl_context(ca_certs: str | None = None) -> _ssl.SSLContext:
    """The client ``SSLContext`` for ``rediss://``: certificate and hostname verified.

    :param ca_certs: CA bundle file that signed the server certificate (a private CA, the local
        tier's throwaway CA). Only this CA is trusted, as libpq's ``sslrootcert`` does. None
        (default): the system trust store, which ElastiCache's certificates chain to.

    Why build it here, once per client: redis-py builds its context lazily inside the first
    ``connect()``, under ``socket_connect_timeout``, and always loads the whole system trust store
    first (``ssl.create_default_context()``, even when a CA file is given). That is a synchronous,
    event-loop-blocking parse of ~150 certificates: ~60 ms on an idle 2-core machine, 1-2 s under
    load, so the first Redis connection of a process timed out (0.5 s default) and opened the
    cache's circuit breaker, sending a cold-start burst to the database.
    """
    ctx = _ssl.create_default_context(cafile=ca_certs)  # cafile given: the system store is not loaded
    ctx.check_hostname = True
    ctx.verify_mode = _ssl.CERT_REQUIRED
    return ctx


def redacted_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe for logs and error messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:" if parts.username else ":"
    return parts._replace(netloc=f"{user}***@{netloc}").geturl()


def create_redis(
    url: str,
    *,
    auth_token: str | None = None,
    username: str | None = None,
    options: RedisOptions | None = None,
) -> aioredis.Redis:
    """Create an asyncio Redis client over a bounded ``BlockingConnectionPool``.

    :param url: ``redis://host:port/db`` or ``rediss://host:port/db`` (TLS, ElastiCache with
        in-transit encryption). A password in the URL is accepted but ``auth_token`` is preferred.
    :param auth_token: ElastiCache AUTH token / Redis password, kept out of the URL so it never
        ends up in logs. Requires ``rediss://`` unless ``options.require_tls_with_auth`` is False.
    :param username: ACL user (ElastiCache RBAC). Default: None (the ``default`` user).
    :param options: pool, timeout and retry settings. Default: ``RedisOptions()``.
    :returns: a client that owns its pool (``await client.aclose()`` closes both). Responses are
        bytes (``decode_responses=False``), which the cache requires.
    :raises ValueError: unsupported scheme, or an auth token without TLS.
    """
    opts = options or RedisOptions()
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(
            f"redis url scheme must be 'redis' or 'rediss', got {parts.scheme!r} in {redacted_url(url)}"
        )
    has_secret = auth_token is not None or parts.password is not None
    if has_secret and parts.scheme != "rediss" and opts.require_tls_with_auth:
        raise ValueError(
            f"an auth token needs TLS: use a rediss:// url instead of {redacted_url(url)} "
            "(or set RedisOptions(require_tls_with_auth=False) for a local test server)"
        )
    kwargs: dict[str, object] = {
        "max_connections": opts.max_connections,
        "timeout": opts.pool_timeout,
        "socket_timeout": opts.socket_timeout,
        "socket_connect_timeout": opts.socket_connect_timeout,
        "health_check_interval": opts.health_check_interval,
        "retry": Retry(
            ExponentialWithJitterBackoff(base=0.01, cap=0.2),
            opts.retries,
            supported_errors=(RedisConnectionError, RedisTimeoutError, OSError),  # type: ignore[arg-type]
        ),
        "decode_responses": False,
        "client_name": opts.client_name,
    }
    if auth_token is not None:
        kwargs["password"] = auth_token
    if username is not None:
        kwargs["username"] = username
    if parts.scheme == "rediss":
        kwargs["ssl_cert_reqs"] = _ssl.CERT_REQUIRED
        kwargs["ssl_check_hostname"] = True
        from_url_query = parse_qs(parts.query).get("ssl_ca_certs") or []
        ca_certs = opts.ssl_ca_certs or (from_url_query[0] if from_url_query else None)
        if ca_certs is not None:
            kwargs["ssl_ca_certs"] = ca_certs
        kwargs["prebuilt_ssl_context"] = opts.ssl_context or redis_ssl_context(ca_certs)
    pool = _BoundedPool.from_url(url, **kwargs)
    # from_url lets the URL scheme pick the class (rediss -> SSLConnection); swap in the
    # cancellation-safe subclass of whichever it picked. Connections are created lazily.
    pool.connection_class = _CANCEL_SAFE.get(pool.connection_class, pool.connection_class)
    return aioredis.Redis.from_pool(pool)


async def drop_stale_connections(redis: aioredis.Redis, exc: BaseException) -> bool:
    """After a ``READONLY`` reply, disconnect the pool's idle connections. Returns True if it did.

    Why: after an ElastiCache failover the primary endpoint's DNS name points at the new primary,
    but pooled connections stay open to the demoted node, which answers every write with
    READONLY forever (redis-py #1764). Dropping them makes the next command reconnect and
    re-resolve the endpoint. Connections in use are left alone; they get the same treatment
    when their own command fails.
    """
    if not isinstance(exc, ReadOnlyError):
        return False
    with contextlib.suppress(Exception):
        await redis.connection_pool.disconnect(inuse_connections=False)
    return True
