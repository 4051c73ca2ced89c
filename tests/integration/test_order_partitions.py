"""Monthly ``orders`` partitions across a month end and a year end, with an injected clock.

The clock is always a fixed point in a year well ahead of today, so what ``migrate()`` created
for the real current months never overlaps, and the test means the same on any run date.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import pytest

from dataaccess.migrations import partition_name
from dataaccess.repositories.orders import order_created_window
from tests.integration.conftest import DatabaseDSNs, MakeDA

pytestmark = pytest.mark.integration

YEAR = datetime.now(UTC).year + 5
LAST_MS_OF_YEAR = datetime(YEAR, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
NEW_YEAR = datetime(YEAR + 1, 1, 1, tzinfo=UTC)


async def _partitions(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'orders'::regclass"
    )
    return {r["relname"] for r in rows}


def _order_id(created_at: datetime, seq: int) -> int:
    """The id ``orders`` would give a row created at ``created_at`` (creation ms << 20 | seq)."""
    ms = int((created_at - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(milliseconds=1))
    return (ms << 20) | seq


async def test_partitions_created_across_year_end_with_injected_clock(
    make_da: MakeDA, fresh_db: DatabaseDSNs
) -> None:
    da = await make_da()
    await da.migrate()
    conn = await asyncpg.connect(fresh_db.primary)
    try:
        before = await _partitions(conn)
        december, january, february = (
            f"orders_y{YEAR}m12",
            f"orders_y{YEAR + 1}m01",
            f"orders_y{YEAR + 1}m02",
        )
        # The last millisecond of the year: this month and the next one (in the next year).
        assert await da.ensure_partitions(months_ahead=1, at=LAST_MS_OF_YEAR) == 2
        assert await _partitions(conn) - before == {december, january}
        # A month later, one back and one ahead: only February is new (idempotent otherwise).
        assert (
            await da.ensure_partitions(
                months_ahead=1, months_back=1, at=datetime(YEAR + 1, 1, 31, 23, tzinfo=UTC)
            )
            == 1
        )
        assert await _partitions(conn) - before == {december, january, february}
        # A clock in another zone counts UTC months: 01:00 on 1 March at +02:00 is still February.
        east = timezone(timedelta(hours=2))
        assert await da.ensure_partitions(months_ahead=0, at=datetime(YEAR + 1, 3, 1, 1, tzinfo=east)) == 0
        # Bad input is refused and creates nothing.
        with pytest.raises(ValueError, match="timezone-aware"):
            await da.ensure_partitions(at=datetime(YEAR + 2, 6, 1))
        with pytest.raises(ValueError, match="months_back"):
            await da.ensure_partitions(months_back=-1, at=datetime(YEAR + 2, 6, 1, tzinfo=UTC))
        assert await _partitions(conn) - before == {december, january, february}

        # Rows on either side of midnight land in their own month's partition ...
        user = await conn.fetchval(
            "INSERT INTO users (email, name) VALUES ('p@example.com', 'p') RETURNING id"
        )
        placed = {}
        for i, at in enumerate((LAST_MS_OF_YEAR, NEW_YEAR)):
            oid = _order_id(at, i)
            await conn.execute(
                "INSERT INTO orders (id, user_id, total_cents, idempotency_key, created_at) "
                "VALUES ($1, $2, 100, $3, $4)",
                oid,
                user,
                f"k{i}",
                at,
            )
            placed[oid] = at
        landed = {
            r["id"]: r["part"]
            for r in await conn.fetch(
                "SELECT id, tableoid::regclass::text AS part FROM orders WHERE user_id = $1", user
            )
        }
        assert sorted(landed.values()) == [december, january]
        # ... and a read by id is pruned to exactly that partition, on both sides of the boundary.
        for oid, at in placed.items():
            lo, hi = order_created_window(oid)
            assert lo == at
            plan = "\n".join(
                r[0]
                for r in await conn.fetch(
                    "EXPLAIN SELECT * FROM orders WHERE id = $1 AND created_at >= $2 AND created_at < $3",
                    oid,
                    lo,
                    hi,
                )
            )
            scanned = {p for p in (december, january, february) if p in plan}
            assert scanned == {landed[oid]}, plan
            order = await da.orders.get(oid)
            assert order is not None and order.created_at == at
    finally:
        await conn.close()


def test_partition_name_pads_month_and_year() -> None:
    assert partition_name(datetime(YEAR, 1, 1).date()) == f"orders_y{YEAR}m01"
