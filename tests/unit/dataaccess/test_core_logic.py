"""Pure logic of the core data layer: retries, error mapping, validation, routing helpers."""

from __future__ import annotations

import random
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import asyncpg.exceptions as pgx
import pytest

from dataaccess import (
    Conflict,
    DataAccessError,
    InvalidInput,
    NotFound,
    OutcomeUnknown,
    OutOfStock,
    Unavailable,
    UnknownReference,
    ValidationError,
    from_postgres,
)
from dataaccess.migrations import load_migrations
from dataaccess.pools import _noop_reset, lsn_to_int, pool_kwargs
from dataaccess.repositories.orders import order_created_window
from dataaccess.retry import (
    ConnectPhaseError,
    RetryKind,
    RetryPolicy,
    backoff_delay,
    classify,
    run_with_retry,
)
from dataaccess.settings import Settings
from dataaccess.validation import check_email, check_lines, check_text

FAST = RetryPolicy(attempts=4, base_delay=0.0001, max_delay=0.001, too_many_connections_delay=0.0001)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (ConnectPhaseError(ConnectionRefusedError()), RetryKind.CONNECT),
        (ConnectPhaseError(TimeoutError()), RetryKind.CONNECT),
        (ConnectPhaseError(pgx.CannotConnectNowError("starting up")), RetryKind.CONNECT),
        (ConnectPhaseError(pgx.AdminShutdownError("bye")), RetryKind.CONNECT),
        (ConnectPhaseError(pgx.TooManyConnectionsError("full")), RetryKind.TOO_MANY),
        (ConnectPhaseError(pgx.InvalidPasswordError("pw")), RetryKind.AUTH),
        (pgx.ReadOnlySQLTransactionError("ro"), RetryKind.READ_ONLY),
        (pgx.SerializationError("40001"), RetryKind.TXN_CONFLICT),
        (pgx.DeadlockDetectedError("40P01"), RetryKind.TXN_CONFLICT),
        (pgx.ConnectionDoesNotExistError("gone"), RetryKind.IN_FLIGHT),
        (pgx.AdminShutdownError("57P01"), RetryKind.IN_FLIGHT),
        (pgx.CrashShutdownError("57P02"), RetryKind.IN_FLIGHT),
        (pgx.CannotConnectNowError("57P03"), RetryKind.CONNECT),
        (pgx.UniqueViolationError("dup"), None),
        (pgx.CheckViolationError("check"), None),
        (ValueError("x"), None),
    ],
)
def test_classify(exc: BaseException, kind: RetryKind | None) -> None:
    assert classify(exc) is kind


def test_full_jitter_backoff_is_bounded() -> None:
    rng = random.Random(1)
    for attempt in range(12):
        d = backoff_delay(attempt, base=0.05, cap=2.0, rng=rng)
        assert 0.0 <= d <= min(2.0, 0.05 * 2**attempt)


def failing(*errors: BaseException, result: str = "ok") -> tuple[list[int], Callable[[], Awaitable[str]]]:
    calls = [0]

    async def op() -> str:
        calls[0] += 1
        if calls[0] <= len(errors):
            raise errors[calls[0] - 1]
        return result

    return calls, op


async def test_transaction_conflicts_rerun_the_whole_unit() -> None:
    calls, op = failing(pgx.SerializationError("x"), pgx.DeadlockDetectedError("y"))
    assert await run_with_retry(op, policy=FAST, idempotent=False, context="t") == "ok"
    assert calls[0] == 3


async def test_in_flight_loss_is_retried_only_when_idempotent() -> None:
    calls, op = failing(pgx.ConnectionDoesNotExistError("gone"))
    assert await run_with_retry(op, policy=FAST, idempotent=True, context="t") == "ok"
    calls, op = failing(pgx.ConnectionDoesNotExistError("gone"))
    lost: list[bool] = []

    async def on_lost() -> None:
        lost.append(True)

    with pytest.raises(OutcomeUnknown, match="may have committed"):
        await run_with_retry(op, policy=FAST, idempotent=False, context="t", on_connection_lost=on_lost)
    assert calls[0] == 1


async def test_connect_phase_errors_are_retried_even_for_non_idempotent_writes() -> None:
    calls, op = failing(
        ConnectPhaseError(ConnectionRefusedError()), ConnectPhaseError(pgx.TooManyConnectionsError(""))
    )
    assert await run_with_retry(op, policy=FAST, idempotent=False, context="t") == "ok"
    assert calls[0] == 3


async def test_read_only_expires_connections_then_retries() -> None:
    expired: list[bool] = []

    async def expire() -> None:
        expired.append(True)

    _, op = failing(pgx.ReadOnlySQLTransactionError("ro"))
    assert await run_with_retry(op, policy=FAST, idempotent=False, context="t", on_read_only=expire) == "ok"
    assert expired == [True]


async def test_invalid_password_refreshes_once() -> None:
    refreshed: list[bool] = []

    async def refresh() -> None:
        refreshed.append(True)

    calls, op = failing(ConnectPhaseError(pgx.InvalidPasswordError("pw")))
    assert (
        await run_with_retry(op, policy=FAST, idempotent=False, context="t", on_auth_failure=refresh) == "ok"
    )
    calls, op = failing(*(ConnectPhaseError(pgx.InvalidPasswordError("pw")) for _ in range(3)))
    with pytest.raises(Unavailable, match="authentication"):
        await run_with_retry(op, policy=FAST, idempotent=False, context="t", on_auth_failure=refresh)
    assert calls[0] == 2 and len(refreshed) == 2


async def test_gives_up_with_unavailable_and_maps_non_retryable() -> None:
    calls, op = failing(*(ConnectPhaseError(OSError("down")) for _ in range(10)))
    with pytest.raises(Unavailable, match="gave up after 4"):
        await run_with_retry(op, policy=FAST, idempotent=True, context="t")
    assert calls[0] == 4
    calls, op = failing(pgx.UniqueViolationError("dup"))
    with pytest.raises(Conflict):
        await run_with_retry(op, policy=FAST, idempotent=True, context="t")
    assert calls[0] == 1
    calls, op = failing(NotFound("product", 1))
    with pytest.raises(NotFound):
        await run_with_retry(op, policy=FAST, idempotent=True, context="t")


async def test_in_flight_losses_have_their_own_budget_when_given() -> None:
    """The group commit's budget (issue 10): connections lost in flight are counted against
    ``in_flight_attempts``; timeouts and connect failures keep ``policy.attempts`` (4 here)."""
    lost = [pgx.ConnectionDoesNotExistError("cut") for _ in range(9)]
    calls, op = failing(*lost)
    with pytest.raises(Unavailable, match="gave up after 4"):
        await run_with_retry(op, policy=FAST, idempotent=True, context="t")  # one budget for all
    calls, op = failing(*lost)
    assert await run_with_retry(op, policy=FAST, idempotent=True, context="t", in_flight_attempts=10) == "ok"
    assert calls[0] == 10
    calls, op = failing(*lost)
    with pytest.raises(Unavailable, match="gave up after 9"):
        await run_with_retry(op, policy=FAST, idempotent=True, context="t", in_flight_attempts=9)
    calls, op = failing(*(TimeoutError() for _ in range(9)))  # no answer in time: not a cut
    with pytest.raises(Unavailable, match="gave up after 4"):
        await run_with_retry(op, policy=FAST, idempotent=True, context="t", in_flight_attempts=20)
    calls, op = failing(pgx.ConnectionDoesNotExistError("cut"))  # never for non-idempotent work
    with pytest.raises(OutcomeUnknown):
        await run_with_retry(op, policy=FAST, idempotent=False, context="t", in_flight_attempts=20)


def test_from_postgres_mapping() -> None:
    assert isinstance(from_postgres(pgx.UniqueViolationError("x")), Conflict)
    assert isinstance(from_postgres(pgx.ForeignKeyViolationError("x")), Conflict)
    assert isinstance(from_postgres(pgx.CheckViolationError("x")), InvalidInput)
    assert isinstance(from_postgres(pgx.StringDataRightTruncationError("x")), InvalidInput)
    assert isinstance(from_postgres(pgx.QueryCanceledError("x")), Unavailable)
    assert isinstance(from_postgres(pgx.AdminShutdownError("x")), Unavailable)
    assert isinstance(from_postgres(pgx.TooManyConnectionsError("x")), Unavailable)
    assert isinstance(from_postgres(pgx.ReadOnlySQLTransactionError("x")), Unavailable)
    assert isinstance(from_postgres(TimeoutError()), Unavailable)
    assert isinstance(from_postgres(OSError()), Unavailable)
    assert type(from_postgres(pgx.SyntaxOrAccessError("x"))) is DataAccessError


def test_error_hierarchy() -> None:
    assert ValidationError is InvalidInput
    ref = UnknownReference("lines", "product", [7, 9])
    assert isinstance(ref, NotFound) and isinstance(ref, InvalidInput) and isinstance(ref, ValueError)
    assert ref.field == "lines" and "7, 9" in str(ref)
    oos = OutOfStock({9: (3, 1), 2: (5, 0)})
    assert oos.product_ids == (2, 9) and "product 9: requested 3, available 1" in str(oos)


def test_validation() -> None:
    assert check_lines("lines", [(1, 2), [3, 4]], max_lines=5, max_qty=10) == [(1, 2), (3, 4)]
    cases: list[tuple[Any, str]] = [
        ([], "at least one"),
        ("ab", "list"),
        ([(1,)], "pair"),
        ([(1, 0)], "quantity"),
        ([(1, 11)], "quantity"),
        ([(True, 1)], "product_id"),
        ([(1, 1), (1, 2)], "more than once"),
        ([(i, 1) for i in range(1, 8)], "at most 5"),
    ]
    for bad, needle in cases:
        with pytest.raises(InvalidInput, match=needle):
            check_lines("lines", bad, max_lines=5, max_qty=10)
    assert check_email("e", " a@b.co ") == "a@b.co"
    for bad in ["a", "a@b", "a b@c.d", "@b.co", 5]:
        with pytest.raises(InvalidInput):
            check_email("e", bad)
    with pytest.raises(InvalidInput, match="NUL"):
        check_text("t", "a\x00b", max_len=5)


def test_order_id_encodes_its_creation_millisecond() -> None:
    ts = datetime(2026, 11, 23, 18, 0, 0, 123456, tzinfo=UTC)
    ms = int(ts.timestamp() * 1000)
    lo, hi = order_created_window((ms << 20) | 12345)
    assert lo <= ts < hi and (hi - lo).total_seconds() == 0.001


def test_lsn_parsing() -> None:
    assert lsn_to_int("0/0") == 0
    assert lsn_to_int("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert lsn_to_int("1/0") > lsn_to_int("0/FFFFFFFF")  # type: ignore[operator]
    assert lsn_to_int(None) is None


async def test_pool_reset_is_a_no_op_and_no_session_state() -> None:
    s = Settings(writer_dsn="postgresql://u@localhost/db", statement_timeout=3)
    kw = pool_kwargs(s, s.writer_dsn, role="writer", credentials=None)
    assert kw["reset"] is _noop_reset and await _noop_reset(None) is None
    assert kw["server_settings"] == {"application_name": "commerce-db", "statement_timeout": "3000"}
    assert "init" not in kw and "setup" not in kw
    pgb = Settings(writer_dsn="postgresql://u@localhost/db", proxy_mode="pgbouncer")
    kw = pool_kwargs(pgb, pgb.writer_dsn, role="writer", credentials=None)
    assert kw["statement_cache_size"] == 0 and "statement_timeout" not in kw["server_settings"]
    # Replicas are connected directly even when the writer is behind PgBouncer.
    kw = pool_kwargs(pgb, "postgresql://u@replica/db", role="reader", credentials=None)
    assert kw["statement_cache_size"] == 100 and kw["server_settings"]["statement_timeout"] == "4000"


def test_migrations_are_versioned_and_use_only_builtin_types() -> None:
    migs = load_migrations()
    assert [m.version for m in migs] == list(range(1, len(migs) + 1))
    sql = re.sub(r"--[^\n]*", "", "\n".join(m.sql.lower() for m in migs))  # code, not comments
    for forbidden in ("create type", "citext", "pg_advisory_lock(", " enum"):
        assert forbidden not in sql
    assert "partition by range (created_at)" in sql and "pg_advisory_xact_lock" in sql


def test_asyncpg_exception_names_exist() -> None:
    # Guards the classification table against renamed asyncpg classes.
    assert issubclass(pgx.InvalidPasswordError, asyncpg.PostgresError)


def test_overdue_lsn_flags_replicas_behind_old_commits() -> None:
    from dataaccess.pools import Pools

    now = [100.0]
    pools = Pools(
        Settings(writer_dsn="postgresql://u@localhost/db", max_replica_lag=0.05, read_your_writes_ttl=5),
        None,
        clock=lambda: now[0],
    )
    assert pools.overdue_lsn() is None
    pools.note_writer_lsn(100)
    assert pools.overdue_lsn() is None  # too recent to judge
    now[0] += 0.05
    pools.note_writer_lsn(200)  # within 100 ms of the last sample: joins its bucket, never dropped
    assert pools.overdue_lsn() == 200  # the bucket is dated from its start (errs on the safe side)
    now[0] += 0.06
    pools.note_writer_lsn(300)
    assert pools.overdue_lsn() == 200  # newest commit of a bucket older than max_replica_lag
    now[0] += 0.049
    assert pools.overdue_lsn() == 200  # 300 is not overdue yet
    now[0] += 0.001
    assert pools.overdue_lsn() == 300


def test_broken_protocol_state_counts_as_lost_connection() -> None:
    err = pgx.InternalClientError("cannot switch to state 12; another operation (2) is in progress")
    assert classify(err) is RetryKind.IN_FLIGHT
    assert classify(ConnectPhaseError(err)) is RetryKind.CONNECT


def test_transaction_pooler_symptoms_are_recognised() -> None:
    assert (
        classify(pgx.InvalidSQLStatementNameError("__asyncpg_stmt_1__ does not exist")) is RetryKind.PREPARED
    )
    assert classify(pgx.DuplicatePreparedStatementError("exists")) is RetryKind.PREPARED
    bind = pgx.ProtocolViolationError("bind message supplies 1 parameters, but prepared statement requires 2")
    assert classify(bind) is RetryKind.PREPARED
    startup = pgx.ProtocolViolationError("unsupported startup parameter: statement_timeout")
    assert classify(ConnectPhaseError(startup)) is RetryKind.CONNECT
    s = Settings(writer_dsn="postgresql://u@localhost/db")
    kw = pool_kwargs(s, s.writer_dsn, role="writer", credentials=None, pgbouncer_detected=True)
    assert kw["statement_cache_size"] == 0 and "statement_timeout" not in kw["server_settings"]
    kw = pool_kwargs(s, "postgresql://u@r/db", role="reader", credentials=None, pgbouncer_detected=True)
    assert kw["statement_cache_size"] == 100  # replicas are direct connections


async def test_local_markers_are_swept() -> None:
    from dataaccess.consistency import WriteMarkers

    now = [0.0]
    m = WriteMarkers(None, namespace="t", ttl=1.0, clock=lambda: now[0])
    for i in range(25_000):
        await m.mark([f"order:{i}"], i)
        now[0] += 0.5  # each marker outlives the next one only
    assert len(m._local) < 20_000  # expired ones were dropped along the way
    assert m.local_lsn("order:1") is None
    m2 = WriteMarkers(None, namespace="t", ttl=60)
    await m2.mark(["product:1"], 10)
    await m2.mark(["product:1"], 5)  # never lowers
    assert m2.local_lsn("product:1") == 10 and await m2.required_lsn("product:1") == 10
