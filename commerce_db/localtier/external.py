"""ExternalTier: the same endpoint surface as LocalTier over servers someone else runs
(``TEST_DATABASE_URL`` / ``TEST_REDIS_URL`` / optional ``TEST_REPLICA_URL`` / ``TEST_PGBOUNCER_URL``).

It offers no fault operations; tests that need them skip. The database role in
``TEST_DATABASE_URL`` needs CREATEDB for per-test databases.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from commerce_db.localtier.errors import LocalTierError
from commerce_db.localtier.tier import DatabaseDSNs

T = TypeVar("T")
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a private loop in a helper thread (works inside a loop)."""
    box: dict[str, Any] = {}

    def _target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:
            box["error"] = exc

    th = threading.Thread(target=_target, daemon=True)
    th.start()
    th.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def with_database(url: str, db: str) -> str:
    """url with its path (database name) replaced by db."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + db, parts.query, parts.fragment))


class ExternalTier:
    """Endpoints of externally managed servers; no fault operations (``supports_faults`` False)."""

    supports_faults = False

    def __init__(
        self,
        database_url: str,
        redis_url: str,
        *,
        replica_url: str | None = None,
        pgbouncer_url: str | None = None,
    ) -> None:
        self.primary_dsn = database_url
        self.redis_url = redis_url
        self._replica_url = replica_url
        self._pgbouncer_url = pgbouncer_url

    @property
    def has_standby(self) -> bool:
        return self._replica_url is not None

    @property
    def has_pgbouncer(self) -> bool:
        return self._pgbouncer_url is not None

    @property
    def standby_dsn(self) -> str:
        if self._replica_url is None:
            raise LocalTierError("no standby: TEST_REPLICA_URL is not set")
        return self._replica_url

    @property
    def pgbouncer_dsn(self) -> str:
        if self._pgbouncer_url is None:
            raise LocalTierError("no PgBouncer: TEST_PGBOUNCER_URL is not set")
        return self._pgbouncer_url

    def dsns(self, db: str) -> DatabaseDSNs:
        return DatabaseDSNs(
            name=db,
            primary=with_database(self.primary_dsn, db),
            standby=with_database(self._replica_url, db) if self._replica_url else None,
            pgbouncer=with_database(self._pgbouncer_url, db) if self._pgbouncer_url else None,
        )

    def create_database(self, name: str, timeout: float = 30.0) -> DatabaseDSNs:
        if not _DB_NAME.match(name):
            raise ValueError(f"database name {name!r} must match {_DB_NAME.pattern}")

        async def _create() -> None:
            conn = await asyncpg.connect(self.primary_dsn)
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()
            if self._replica_url is not None:
                deadline = time.monotonic() + timeout
                while True:
                    try:
                        c = await asyncpg.connect(with_database(self._replica_url, name))
                        await c.close()
                        return
                    except asyncpg.InvalidCatalogNameError:
                        if time.monotonic() > deadline:
                            raise LocalTierError(f"database {name} never appeared on the replica") from None
                        await asyncio.sleep(0.05)

        run_sync(_create())
        return self.dsns(name)

    def drop_database(self, name: str) -> None:
        if not _DB_NAME.match(name):
            raise ValueError(f"database name {name!r} must match {_DB_NAME.pattern}")

        async def _drop() -> None:
            conn = await asyncpg.connect(self.primary_dsn)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

        run_sync(_drop())

    def stop(self) -> None:
        """Nothing to stop: these servers are not ours."""
