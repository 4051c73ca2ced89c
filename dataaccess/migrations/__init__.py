"""Versioned SQL migrations (``NNNN_name.sql`` in this package) and partition maintenance.

:func:`migrate` is idempotent and safe to run concurrently from many processes: everything happens
in one transaction that first takes ``pg_advisory_xact_lock`` (transaction-level, so it neither
leaks nor pins RDS Proxy), then applies the migrations missing from ``schema_migrations`` in
order, recording each with a checksum. An applied migration whose file changed is an error.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import resources

import asyncpg

from ..errors import DataAccessError

__all__ = [
    "MIGRATION_LOCK_ID",
    "Migration",
    "ensure_partitions",
    "load_migrations",
    "migrate",
    "partition_months",
    "partition_name",
    "read_schema_lsn",
    "record_schema_lsn",
]

MIGRATION_LOCK_ID = 0x636F6D6D65726365  # "commerce"
"""Advisory lock key serialising migrations."""

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    """All migrations shipped in this package, ordered by version (versions must be unique)."""
    found: list[Migration] = []
    for entry in resources.files(__package__).iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if len(set(versions)) != len(versions):
        raise DataAccessError(f"duplicate migration versions: {versions}")
    return found


async def migrate(conn: asyncpg.Connection, *, partitions_ahead: int = 3) -> list[int]:
    """Apply pending migrations and create upcoming ``orders`` partitions. Returns the versions
    applied by this call (empty when the schema was already current)."""
    applied_now: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_ID)
        # DDL on big tables can outlast the application's statement_timeout. Transaction-scoped,
        # so nothing leaks into the pool (behind RDS Proxy this one rare session gets pinned).
        await conn.execute("SELECT set_config('statement_timeout', '0', true)")
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    integer PRIMARY KEY,
                   name       text NOT NULL,
                   checksum   text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
        done = {r["version"]: r["checksum"] for r in rows}
        for mig in load_migrations():
            if mig.version in done:
                if done[mig.version] != mig.checksum:
                    raise DataAccessError(
                        f"migration {mig.version:04d}_{mig.name} was changed after being applied; "
                        "add a new migration instead of editing an applied one"
                    )
                continue
            await conn.execute(mig.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                mig.version,
                mig.name,
                mig.checksum,
            )
            applied_now.append(mig.version)
        await ensure_partitions(conn, months_ahead=partitions_ahead)
    return applied_now


def partition_months(at: datetime, *, months_ahead: int = 3, months_back: int = 0) -> list[date]:
    """First days of the UTC months from ``months_back`` months before ``at`` through
    ``months_ahead`` months after it, oldest first. ``at`` must be timezone-aware: a month is a
    UTC month, and a naive time would silently mean the server's zone."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"at must be timezone-aware (partitions are UTC months), got {at!r}")
    if months_ahead < 0 or months_back < 0:
        raise ValueError(
            f"months_ahead and months_back must be >= 0, got months_ahead={months_ahead}, "
            f"months_back={months_back}"
        )
    utc = at.astimezone(UTC)
    index = utc.year * 12 + (utc.month - 1)
    return [date(i // 12, i % 12 + 1, 1) for i in range(index - months_back, index + months_ahead + 1)]


def partition_name(month: date) -> str:
    """Name of the ``orders`` partition holding ``month`` (``orders_y2026m12``)."""
    return f"orders_y{month.year:04d}m{month.month:02d}"


async def ensure_partitions(
    conn: asyncpg.Connection,
    *,
    months_ahead: int = 3,
    months_back: int = 0,
    at: datetime | None = None,
) -> int:
    """Create missing monthly ``orders`` partitions from ``months_back`` months before ``at``
    through ``months_ahead`` months after it (UTC months). Returns how many were created.

    :param at: the clock reading to count from. Default: now (UTC). Tests and back-fills pass it.

    Run it regularly (the facade does on ``migrate()`` and when an insert finds no partition).
    Concurrent callers serialise on a transaction-level advisory lock, so each partition is
    created once."""
    months = partition_months(at or datetime.now(UTC), months_ahead=months_ahead, months_back=months_back)
    created = 0
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('commerce_db.orders_partitions'))")
        for month in months:
            name = partition_name(month)
            if await conn.fetchval("SELECT to_regclass($1)", name) is not None:
                continue
            lo = datetime(month.year, month.month, 1, tzinfo=UTC)
            hi = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)
            # DDL takes no bind parameters; the bounds are rendered by our own code, not input.
            await conn.execute(
                f"CREATE TABLE {name} PARTITION OF orders "
                f"FOR VALUES FROM ('{lo.isoformat()}') TO ('{hi.isoformat()}')"
            )
            created += 1
    return created


async def record_schema_lsn(conn: asyncpg.Connection, lsn: int) -> None:
    """Store ``lsn`` (a DDL commit's WAL position) in ``schema_lsn`` unless a higher one is there.
    No-op before migration 0002 created the table."""
    try:
        await conn.execute(
            """INSERT INTO schema_lsn (id, lsn) VALUES (true, $1)
               ON CONFLICT (id) DO UPDATE SET lsn = EXCLUDED.lsn, updated_at = now()
               WHERE schema_lsn.lsn < EXCLUDED.lsn""",
            lsn,
        )
    except asyncpg.UndefinedTableError:
        return


async def read_schema_lsn(conn: asyncpg.Connection) -> int | None:
    """The recorded schema LSN (None when nothing was migrated yet)."""
    try:
        value = await conn.fetchval("SELECT lsn FROM schema_lsn")
    except asyncpg.UndefinedTableError:
        return None
    return int(value) if value is not None else None
