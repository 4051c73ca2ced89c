"""``commerce-db failover reconcile`` against real PostgreSQL: an "old writer" and a "new writer"
that share history up to a failover (the new one is a byte copy of the old one, as a promoted
replica is), then diverge — orders only the old one got (the lost writes), orders only the new
one got (life after the promotion). The report must list exactly the lost orders; ``--apply``
re-places the ones that fit, once; an order the new writer's stock no longer covers stays a
conflict; bad input exits 2 naming what was wrong and changes nothing, without printing a password.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from commerce_db.cli import main
from commerce_db.localtier import LocalTier
from commerce_db.localtier.procs import wait_until
from commerce_db.reconcile import ReconcileError, reconcile
from commerce_db.reconcile.apply import apply_missing
from dataaccess import DataAccess, Settings

pytestmark = pytest.mark.integration


@dataclass
class Pair:
    """Two databases that diverged at a failover, and what was placed where."""

    old: str
    new: str
    products: dict[str, int]
    users: list[int]
    lost: dict[str, str]
    """Idempotency keys of orders only the old writer has -> what they are."""
    retried_key: str
    promoted_at: datetime
    password: str
    new_name: str


async def _da(dsn: str) -> DataAccess:
    return await DataAccess.connect(Settings(writer_dsn=dsn, retry_attempts=2))


async def _seed_shared(dsn: str) -> tuple[dict[str, int], list[int]]:
    async with await _da(dsn) as da:
        await da.migrate()
        users = [(await da.users.create(email=f"u{i}@example.com", name=f"U{i}")).id for i in range(2)]
        products = {
            sku: (await da.products.create(sku=sku, name=f"Product {sku}", price_cents=price, stock=stock)).id
            for sku, price, stock in (("A", 100, 10), ("B", 250, 10), ("C", 500, 3))
        }
        await da.orders.place(users[0], [(products["A"], 1)], idempotency_key="shared-1")
        await da.orders.place(users[1], [(products["B"], 2)], idempotency_key="shared-2")
    return products, users


async def _diverge(old: str, new: str, products: dict[str, int], users: list[int]) -> dict[str, str]:
    a, b, c = products["A"], products["B"], products["C"]
    async with await _da(old) as da:  # committed on the old writer, never replicated
        await da.orders.place(users[0], [(a, 2)], idempotency_key="lost-fits-1")
        await da.orders.place(users[1], [(a, 1), (b, 1)], idempotency_key="lost-fits-2")
        await da.orders.place(users[0], [(c, 3)], idempotency_key="lost-no-stock")
        cancelled = await da.orders.place(users[1], [(b, 1)], idempotency_key="lost-cancelled")
        await da.orders.cancel(cancelled.id)
        await da.orders.place(users[0], [(b, 1)], idempotency_key="retried")
        await da.orders.place(users[1], [(b, 3)], idempotency_key="lost-dup-old")
    async with await _da(new) as da:  # after the promotion
        await da.orders.place(users[1], [(c, 2)], idempotency_key="new-after-promotion")
        await da.orders.place(users[0], [(b, 1)], idempotency_key="retried")  # the client's retry
        # The customer placed the lost order again, under a new key: a likely duplicate.
        await da.orders.place(users[1], [(b, 3)], idempotency_key="lost-dup-new")
    return {
        "lost-fits-1": "to_apply",
        "lost-fits-2": "to_apply",
        "lost-no-stock": "conflict",
        "lost-cancelled": "cancelled_on_old",
        "lost-dup-old": "conflict",
    }


def _clone(tier: LocalTier, source: str, target: str) -> None:
    """The new writer starts as a byte copy of the old one (as a promoted replica does)."""

    def attempt() -> bool:
        try:
            tier.primary.psql(f'CREATE DATABASE "{target}" TEMPLATE "{source}" OWNER app')
        except Exception as exc:  # the seeding sessions may take a moment to go away
            if "being accessed by other users" in str(exc):
                return False
            raise
        return True

    wait_until(f"clone of {source}", attempt, timeout=30.0)


@pytest.fixture
def pair(tier: Any) -> Iterator[Pair]:
    if not isinstance(tier, LocalTier):
        pytest.skip("needs the local tier (the new writer is cloned with CREATE DATABASE ... TEMPLATE)")
    old_name, new_name = f"t_{uuid.uuid4().hex[:16]}", f"t_{uuid.uuid4().hex[:16]}"
    old = tier.create_database(old_name).primary
    try:
        products, users = asyncio.run(_seed_shared(old))
        _clone(tier, old_name, new_name)
        new = tier.primary.dsn(new_name)
        promoted_at = asyncio.run(_scalar(new, "SELECT now()"))
        lost = asyncio.run(_diverge(old, new, products, users))
        password = tier.primary.creds.password_of("app")
        yield Pair(old, new, products, users, lost, "retried", promoted_at, password, new_name)
    finally:
        for name in (old_name, new_name):
            tier.drop_database(name)


async def _scalar(dsn: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


def _state(dsn: str) -> tuple[int, list[tuple[str, int]]]:
    """(number of orders, stock per SKU) of a database: what "changes nothing" compares."""

    async def read() -> tuple[int, list[tuple[str, int]]]:
        conn = await asyncpg.connect(dsn)
        try:
            n = await conn.fetchval("SELECT count(*) FROM orders")
            stock = [
                (r["sku"], r["stock"])
                for r in await conn.fetch("SELECT sku, stock FROM products ORDER BY sku")
            ]
            return n, stock
        finally:
            await conn.close()

    return asyncio.run(read())


def _run(old: str, new: str, *, new_settings: dict[str, Any] | None = None, **kw: Any) -> Any:
    new_s = Settings(writer_dsn=new, **(new_settings or {}))
    return asyncio.run(reconcile(Settings(writer_dsn=old), new_s, **kw))


def test_report_lists_exactly_the_lost_orders_and_apply_replaces_them_once(pair: Pair) -> None:
    before = _state(pair.new)
    report = _run(pair.old, pair.new)  # divergence found: the newest order on both

    assert {m.order.idempotency_key: m.outcome for m in report.missing} == pair.lost
    assert report.orders_on_both == 2
    assert [r.idempotency_key for r in report.replaced] == [pair.retried_key]
    assert [(c.kind, c.idempotency_key) for c in report.conflicts] == [
        ("out_of_stock", "lost-no-stock"),
        ("possible_duplicate", "lost-dup-old"),
    ]
    assert "needs 3, 1 left" in report.conflicts[0].detail
    stock = {s.product_id: (s.units_needed, s.stock_new, s.short_by) for s in report.stock}
    # C: 3 left after the cloned history, 2 sold on the new writer after the promotion.
    assert stock[pair.products["C"]] == (3, 1, 2)
    assert stock[pair.products["A"]] == (3, 9, 0)
    assert _state(pair.new) == before, "a dry run must not write"

    applied = _run(pair.old, pair.new, since=pair.promoted_at, apply=True)
    outcomes = {m.order.idempotency_key: m.outcome for m in applied.missing}
    assert outcomes == {**pair.lost, "lost-fits-1": "applied", "lost-fits-2": "applied"}
    assert applied.error is None
    n_before, stock_before = before
    n_after, stock_after = _state(pair.new)
    assert n_after == n_before + 2
    # A: 2 + 1 units re-placed, B: 1; C untouched (the conflict is never forced).
    assert dict(stock_after) == {sku: units - {"A": 3, "B": 1}.get(sku, 0) for sku, units in stock_before}
    new_ids = {m.new_order_id for m in applied.missing if m.outcome == "applied"}
    lines = asyncio.run(
        _scalar(
            pair.new,
            "SELECT array_agg(product_id::text || 'x' || quantity ORDER BY order_id, line_no) "
            "FROM order_lines WHERE order_id = ANY($1::bigint[])",
            list(new_ids),
        )
    )
    assert sorted(lines) == sorted(
        [f"{pair.products['A']}x2", f"{pair.products['A']}x1", f"{pair.products['B']}x1"]
    )

    again = _run(pair.old, pair.new, apply=True)
    assert again.count("to_apply") == again.count("applied") == 0
    assert {r.idempotency_key for r in again.replaced} == {pair.retried_key, "lost-fits-1", "lost-fits-2"}
    assert _state(pair.new) == (n_after, stock_after), "a second run must be a no-op"


def test_bad_inputs_change_nothing(tier: Any, pair: Pair) -> None:
    before = _state(pair.new)
    with pytest.raises(ReconcileError, match="same database"):
        _run(pair.new, pair.new, apply=True)
    future = asyncio.run(_scalar(pair.new, "SELECT now() + interval '1 day'"))
    with pytest.raises(ReconcileError, match="in the future"):
        _run(pair.old, pair.new, since=future, apply=True)
    with pytest.raises(ReconcileError, match="lookback"):
        _run(pair.old, pair.new, lookback=timedelta(minutes=-1), apply=True)
    if tier.has_standby:  # the new writer's hot standby given as the new writer
        sb = tier.standby
        wait_until(
            "the clone on the standby",
            lambda: sb.psql(f"SELECT 1 FROM pg_database WHERE datname = '{pair.new_name}'") == "1",
            timeout=30.0,
        )
        with pytest.raises(ReconcileError, match=r"new writer .* is a read-only standby"):
            _run(pair.old, sb.dsn(pair.new_name), apply=True)
        # The new writer's own replica given as the old data would report nothing missing.
        with pytest.raises(ReconcileError, match=r"old database .* is a read-only standby"):
            _run(sb.dsn(pair.new_name), pair.new, apply=True)
    port = _closed_port()
    with pytest.raises(ReconcileError, match=f"Redis redis://127.0.0.1:{port}/0: PING failed"):
        _run(pair.old, pair.new, new_settings={"redis_url": f"redis://127.0.0.1:{port}/0"}, apply=True)
    stop = asyncio.Event()
    stop.set()  # as a SIGINT before the first order does
    interrupted = _run(pair.old, pair.new, apply=True, stop=stop)
    assert interrupted.error.startswith("interrupted") and interrupted.count("applied") == 0
    assert interrupted.count("not_attempted") == 2
    empty_name = f"t_{uuid.uuid4().hex[:16]}"
    empty = tier.create_database(empty_name)
    try:
        with pytest.raises(ReconcileError, match=r"old database .*table 'users' does not exist"):
            _run(empty.primary, pair.new, apply=True)
        with pytest.raises(ReconcileError, match=r"new writer .*table 'users' does not exist"):
            _run(pair.old, empty.primary, apply=True)
    finally:
        tier.drop_database(empty_name)
    assert _state(pair.new) == before


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], old: str, new: str, *argv: str):
    monkeypatch.setenv("COMMERCE_DB_OLD_WRITER_DSN", old)
    monkeypatch.setenv("COMMERCE_DB_WRITER_DSN", new)
    monkeypatch.setenv("COMMERCE_DB_OLD_RETRY_ATTEMPTS", "1")
    code: Any
    try:
        code = main(["failover", "reconcile", *argv])
    except SystemExit as exc:  # argparse's own refusal of a malformed option
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_reports_applies_and_never_prints_a_password(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(monkeypatch, capsys, pair.old, pair.new)
    assert code == 3, err  # a conflict is left for a human
    assert "lost-fits-1" in out and "would re-place" in out and "out_of_stock" in out
    assert "Dry run: nothing changed" in out
    code, out, err = _cli(monkeypatch, capsys, pair.old, pair.new, "--apply", "--json")
    assert code == 3, err
    data = json.loads(out)
    assert data["summary"]["applied"] == 2 and data["summary"]["conflict"] == 2
    for text in (out, err):
        assert pair.password not in text


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("--since", "yesterday"), "--since 'yesterday' is not an ISO 8601 time"),
        (("--since", "2026-12-06T07:00:00"), "has no timezone"),
        (("--lookback", "-5"), "argument --lookback: '-5' must be between 0 and 1440 minutes"),
        (("--lookback", "nan"), "argument --lookback: 'nan' must be between 0 and 1440 minutes"),
        (("--max-orders", "0"), "argument --max-orders: '0' must be >= 1"),
        (("--since", "0001-01-01T00:05:00+00:00"), "minus the look-back is before year 1"),
    ],
)
def test_cli_bad_arguments_exit_2_naming_them(
    pair: Pair,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    expected: str,
) -> None:
    before = _state(pair.new)
    code, _out, err = _cli(monkeypatch, capsys, pair.old, pair.new, "--apply", *argv)
    assert code == 2 and expected in err
    assert _state(pair.new) == before


def test_cli_unreachable_old_database_is_named_without_its_password(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _state(pair.new)
    port = _closed_port()
    secret = "s3cret-Reconcile-pw"
    old = f"postgresql://app:{secret}@127.0.0.1:{port}/gone"
    code, out, err = _cli(monkeypatch, capsys, old, pair.new, "--apply")
    assert code == 2
    assert f"old database 127.0.0.1:{port}/gone: cannot connect" in err
    assert secret not in out + err
    assert _state(pair.new) == before
    # A missing variable is named too.
    monkeypatch.delenv("COMMERCE_DB_OLD_WRITER_DSN")
    assert main(["failover", "reconcile"]) == 2
    assert "COMMERCE_DB_OLD_WRITER_DSN" in capsys.readouterr().err


def test_apply_that_loses_the_new_writer_stops_and_leaves_the_rest_not_attempted(
    tier: Any, pair: Pair
) -> None:
    """The new writer goes away mid-run: the order being placed and every later one are reported
    ``not_attempted`` (a re-run finishes the job: the keys make it safe), nothing is called applied."""
    db = pair.new_name

    async def go() -> Any:
        report = await reconcile(Settings(writer_dsn=pair.old), Settings(writer_dsn=pair.new))
        da = await DataAccess.connect(Settings(writer_dsn=pair.new, retry_attempts=1))
        try:
            tier.primary.psql(
                f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS false; '
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'"
            )
            return await apply_missing(da, report.missing)
        finally:
            await da.close()
            tier.primary.psql(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS true')

    before = _state(pair.new)
    result = asyncio.run(go())
    assert result.error is not None and "re-placing order" in result.error
    outcomes = {m.order.idempotency_key: m.outcome for m in result.missing}
    assert outcomes == {**pair.lost, "lost-fits-1": "not_attempted", "lost-fits-2": "not_attempted"}
    assert _state(pair.new) == before
    finished = _run(pair.old, pair.new, apply=True)  # the re-run completes it
    assert finished.count("applied") == 2 and finished.error is None


def test_a_window_with_too_many_changed_users_is_refused(pair: Pair) -> None:
    """--max-orders bounds every scan, not only the orders: two users changed, limit one."""
    from commerce_db.reconcile import source

    async def go() -> None:
        conn = await asyncpg.connect(pair.old)
        try:
            start = pair.promoted_at - timedelta(hours=1)
            assert len(await source.users_changed_since(conn, start, limit=2)) == 2
            with pytest.raises(ReconcileError, match="more than 1 users created or changed"):
                await source.users_changed_since(conn, start, limit=1)
        finally:
            await conn.close()

    asyncio.run(go())


def test_sigint_during_apply_stops_after_the_order_in_flight_and_prints_the_report(pair: Pair) -> None:
    """The real CLI in a subprocess: SIGINT once the first order is on the new writer. It must stop
    cleanly (exit 1), print the report, and every order it calls applied — and only those — is on
    the new writer (no KeyboardInterrupt traceback that loses what was placed)."""
    n = 1500
    a = pair.products["A"]

    async def more_lost_orders() -> None:
        for dsn in (pair.old, pair.new):
            async with await _da(dsn) as da:
                await da.products.restock(a, 10 * n)
        async with await _da(pair.old) as da:
            await asyncio.gather(
                *(da.orders.place(pair.users[0], [(a, 1)], idempotency_key=f"bulk-{i}") for i in range(n))
            )

    asyncio.run(more_lost_orders())
    bulk_on_new = "SELECT count(*) FROM order_idempotency WHERE idempotency_key LIKE 'bulk-%'"
    env = {
        **os.environ,
        "COMMERCE_DB_OLD_WRITER_DSN": pair.old,
        "COMMERCE_DB_WRITER_DSN": pair.new,
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "commerce_db.cli", "failover", "reconcile", "--apply", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            "the first re-placed order",
            lambda: proc.poll() is not None or asyncio.run(_scalar(pair.new, bulk_on_new)) > 0,
            timeout=120.0,
            interval=0.05,
        )
        assert proc.poll() is None, "the run finished before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    assert "Traceback" not in err and "stopping after the order in flight" in err
    report = json.loads(out)
    assert report["error"].startswith("interrupted")
    applied = {m["order"]["idempotency_key"] for m in report["missing"] if m["outcome"] == "applied"}
    stopped = [m for m in report["missing"] if m["outcome"] == "not_attempted"]
    assert applied and stopped
    assert len({k for k in applied if k.startswith("bulk-")}) + len(stopped) == n
    assert asyncio.run(_scalar(pair.new, bulk_on_new)) == len({k for k in applied if k.startswith("bulk-")})


def test_divergence_point_needs_the_same_order_not_just_the_same_id(pair: Pair) -> None:
    """After the divergence each side numbers its orders on its own: an id the new writer gave to
    some other order must not pass for "the newest order on both" (that would move the window past
    the lost orders). Simulated by giving the newest lost order's id to another order there."""

    async def collide() -> None:
        old = await asyncpg.connect(pair.old)
        new = await asyncpg.connect(pair.new)
        try:
            row = await old.fetchrow("SELECT id, created_at FROM orders ORDER BY id DESC LIMIT 1")
            await new.execute(
                "INSERT INTO orders (id, created_at, user_id, total_cents, idempotency_key) "
                "VALUES ($1, $2, $3, 100, 'someone-else-on-the-new-writer')",
                row["id"],
                row["created_at"],
                pair.users[0],
            )
        finally:
            await old.close()
            await new.close()

    asyncio.run(collide())
    report = _run(pair.old, pair.new, lookback=timedelta(0))
    assert "order" in report.divergence_source
    assert {m.order.idempotency_key: m.outcome for m in report.missing} == pair.lost
