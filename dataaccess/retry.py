"""Retries with exponential backoff and full jitter for failover / overload errors.

Which failures are retried (see data-access-facts §1):

=========================================  ==========================  =========================
failure                                    kind                        non-idempotent op?
=========================================  ==========================  =========================
connect errors (OSError, refused, timeout,  ``CONNECT``                 yes (nothing was sent)
08001/08006, 57P03 starting up, 57P01/02
while connecting)
``TooManyConnectionsError`` 53300          ``TOO_MANY`` (longer base)  yes (rejected at connect)
``InvalidPasswordError`` 28P01             ``AUTH`` (refresh, once)    yes
``ReadOnlySQLTransactionError`` 25006      ``READ_ONLY`` (expire pool) yes (rejected)
``SerializationError`` / ``Deadlock``      ``TXN_CONFLICT``            yes (server rolled back)
connection lost mid-operation (08003,      ``IN_FLIGHT``               no: raise OutcomeUnknown
57P01/57P02 mid-query, OSError mid-query)
=========================================  ==========================  =========================

Backoff: ``sleep = uniform(0, min(max_delay, base * 2**attempt))`` ("full jitter", AWS
Architecture Blog), so a fleet reconnecting after a failover does not stampede in lockstep.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import asyncpg
import asyncpg.exceptions as pgx

from .errors import DataAccessError, OutcomeUnknown, Unavailable, from_postgres

__all__ = ["ConnectPhaseError", "RetryKind", "RetryPolicy", "backoff_delay", "classify", "run_with_retry"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class RetryKind(enum.Enum):
    CONNECT = "connect"
    TOO_MANY = "too_many_connections"
    AUTH = "invalid_password"
    READ_ONLY = "read_only"
    TXN_CONFLICT = "transaction_conflict"
    IN_FLIGHT = "connection_lost_in_flight"
    PREPARED = "prepared_statement_lost"


class ConnectPhaseError(Exception):
    """Internal wrapper: ``original`` happened while acquiring/opening a connection (nothing sent)."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(f"connect phase: {type(original).__name__}")
        self.original = original


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Backoff parameters. Defaults mirror :class:`~dataaccess.settings.Settings`."""

    attempts: int = 6
    """Total attempts including the first. Default: 6."""
    base_delay: float = 0.05
    """Default: 0.05 s."""
    max_delay: float = 2.0
    """Default: 2.0 s."""
    too_many_connections_delay: float = 0.5
    """Base delay for connection storms. Default: 0.5 s."""


_SHUTDOWN = (pgx.AdminShutdownError, pgx.CrashShutdownError)
_CONNECT_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    TimeoutError,
    pgx.CannotConnectNowError,
    pgx.ClientCannotConnectError,
    pgx.ConnectionFailureError,
    pgx.ConnectionRejectionError,
)


_LOST_IN_FLIGHT = (
    *_SHUTDOWN,
    pgx.ConnectionDoesNotExistError,
    pgx.ConnectionFailureError,
    ConnectionError,
    asyncio.IncompleteReadError,
)


def classify(exc: BaseException) -> RetryKind | None:
    """Return how ``exc`` may be retried, or None when it must not be."""
    if isinstance(exc, ConnectPhaseError):
        inner = exc.original
        if isinstance(inner, pgx.TooManyConnectionsError):
            return RetryKind.TOO_MANY
        if isinstance(inner, pgx.InvalidPasswordError | pgx.InvalidAuthorizationSpecificationError):
            return RetryKind.AUTH
        if isinstance(inner, _CONNECT_ERRORS + _SHUTDOWN + (pgx.ConnectionDoesNotExistError,)):
            return RetryKind.CONNECT
        if isinstance(inner, asyncpg.InterfaceError) and "closed" in str(inner):
            return RetryKind.CONNECT
        if isinstance(inner, pgx.InternalClientError):
            return RetryKind.CONNECT
        if isinstance(inner, pgx.ProtocolViolationError) and "unsupported startup parameter" in str(inner):
            return RetryKind.CONNECT  # the pool was reconfigured for PgBouncer; connect again
        return None
    if isinstance(exc, pgx.TooManyConnectionsError):
        return RetryKind.TOO_MANY
    if isinstance(exc, pgx.InvalidPasswordError):
        return RetryKind.AUTH
    if isinstance(exc, pgx.ReadOnlySQLTransactionError):
        return RetryKind.READ_ONLY
    if isinstance(exc, pgx.SerializationError | pgx.DeadlockDetectedError):
        return RetryKind.TXN_CONFLICT
    if isinstance(exc, pgx.InvalidSQLStatementNameError | pgx.DuplicatePreparedStatementError) or (
        isinstance(exc, pgx.ProtocolViolationError) and "prepared statement" in str(exc)
    ):
        # Named prepared statements do not survive a transaction-pooling proxy (PgBouncer < 1.21):
        # the server rejected the statement before running it, so re-running the unit is safe.
        return RetryKind.PREPARED
    if isinstance(exc, pgx.CannotConnectNowError):
        return RetryKind.CONNECT
    if isinstance(exc, _LOST_IN_FLIGHT):
        return RetryKind.IN_FLIGHT
    if isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc):
        return RetryKind.IN_FLIGHT
    if isinstance(exc, pgx.InternalClientError):
        # Protocol state machine broken by a connection dying mid-operation ("cannot switch to
        # state ..."): the connection is discarded; treat like a lost connection.
        return RetryKind.IN_FLIGHT
    if isinstance(exc, OSError):
        return RetryKind.IN_FLIGHT
    return None


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff for the ``attempt``-th retry (0-based)."""
    r = rng or random
    return r.uniform(0.0, min(cap, base * (2**attempt)))


async def run_with_retry(
    op: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    idempotent: bool,
    context: str,
    on_read_only: Callable[[], Awaitable[None]] | None = None,
    on_auth_failure: Callable[[], Awaitable[None]] | None = None,
    on_connection_lost: Callable[[], Awaitable[None]] | None = None,
    on_retry: Callable[[RetryKind], None] | None = None,
    on_prepared_statement_error: Callable[[], Awaitable[None]] | None = None,
    in_flight_attempts: int | None = None,
) -> T:
    """Run ``op`` (a whole unit of work: acquire, transaction, statements) with retries.

    ``idempotent`` ops are also retried when the connection was lost mid-flight; others raise
    :class:`OutcomeUnknown`. Non-retryable errors are mapped with :func:`from_postgres`.
    Errors that are already :class:`DataAccessError` pass through untouched.

    ``in_flight_attempts`` (idempotent ops only; default None: ``policy.attempts`` bounds every
    failure alike): how many times a connection lost *in flight* (closed or reset after the work
    was sent) may be retried; such losses then do not count against ``policy.attempts``, which
    keeps bounding every other failure (unreachable server, refused connections, timeouts, ...).
    For work that many callers share (a group commit): a fault that cuts N statements in a row
    lands on the few batches in flight instead of on N independent callers, so one batch would
    exhaust a per-call budget.
    """
    auth_refreshed = False
    last: BaseException | None = None
    failures = 0  # counted against policy.attempts
    lost_in_flight = 0  # counted against in_flight_attempts when given
    attempt = -1
    while True:
        attempt += 1
        try:
            return await op()
        except DataAccessError:
            raise
        except (
            TimeoutError,
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            OSError,
            ConnectPhaseError,
            asyncio.IncompleteReadError,
            pgx.InternalClientError,
        ) as exc:
            kind = classify(exc)
            original = exc.original if isinstance(exc, ConnectPhaseError) else exc
            last = original
            if kind is None:
                raise from_postgres(original, context=context) from original
            if kind is RetryKind.IN_FLIGHT and not idempotent:
                raise OutcomeUnknown(
                    f"{context}: connection lost while the write was in flight "
                    f"({type(original).__name__}); it may have committed"
                ) from original
            if on_retry is not None:
                on_retry(kind)
            if kind is RetryKind.AUTH:
                if auth_refreshed or on_auth_failure is None:
                    detail = " after refreshing credentials" if auth_refreshed else ""
                    raise Unavailable(f"{context}: authentication failed{detail}") from original
                auth_refreshed = True
                await on_auth_failure()
                log.warning("%s: invalid password, refreshed credentials, retrying once", context)
                failures += 1
                if failures >= policy.attempts:
                    break
                continue  # immediate retry, once
            if kind is RetryKind.READ_ONLY and on_read_only is not None:
                await on_read_only()
            if kind is RetryKind.PREPARED and on_prepared_statement_error is not None:
                await on_prepared_statement_error()
            if kind in (RetryKind.IN_FLIGHT, RetryKind.CONNECT) and on_connection_lost is not None:
                await on_connection_lost()
            if (
                kind is RetryKind.IN_FLIGHT
                and in_flight_attempts is not None
                and not isinstance(original, TimeoutError)  # no answer in time: slow, not cut
            ):
                lost_in_flight += 1
                if lost_in_flight >= in_flight_attempts:
                    break
            else:
                failures += 1
                if failures >= policy.attempts:
                    break
            base = policy.too_many_connections_delay if kind is RetryKind.TOO_MANY else policy.base_delay
            delay = backoff_delay(attempt, base=base, cap=policy.max_delay)
            log.info(
                "%s: %s (%s), retry %d in %.3fs",
                context,
                kind.value,
                type(original).__name__,
                attempt + 1,
                delay,
            )
            await asyncio.sleep(delay)
    assert last is not None
    if isinstance(last, pgx.SerializationError | pgx.DeadlockDetectedError):
        raise from_postgres(last, context=context) from last
    raise Unavailable(f"{context}: gave up after {attempt + 1} attempts ({type(last).__name__})") from last
