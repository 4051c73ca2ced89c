"""Fixtures that start real servers for the integration tests (see DESIGN.md "How test servers start").

Order of preference for the shared, session-scoped ``tier``:
  1. ``TEST_DATABASE_URL`` + ``TEST_REDIS_URL`` (optional ``TEST_REPLICA_URL``, ``TEST_PGBOUNCER_URL``):
     use those servers; tests needing a standby / PgBouncer / fault operations skip with a reason.
  2. a Docker engine answering and ``testcontainers`` importable: postgres + redis containers
     (no standby / PgBouncer, so those tests skip).
  3. otherwise :class:`commerce_db.localtier.LocalTier` from local binaries (everything available),
     in its default TLS transport: every test talks TLS with ``sslmode=verify-full`` against the
     tier's throwaway CA and ``rediss://`` with a password, as a service does in production.

Destructive tests (kill, promote) use ``fault_tier``: a separate LocalTier per test, so the shared
one stays healthy.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from commerce_db.localtier import DatabaseDSNs, ExternalTier, LocalTier, LocalTierError, MissingBinaryError
from dataaccess import DataAccess, Settings

_HERE = Path(__file__).parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "fault_tier_options(**kwargs): LocalTier keyword arguments for the fault_tier fixture "
        "(e.g. synchronous_standby=True for Multi-AZ-like failover drills)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/integration gets the ``integration`` marker."""
    for item in items:
        if _HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


def _docker_tier() -> tuple[ExternalTier, list[Any]] | None:
    """Postgres + Redis containers when a Docker engine answers and testcontainers is installed."""
    try:
        import docker  # type: ignore[import-not-found]
        from testcontainers.postgres import PostgresContainer  # type: ignore[import-not-found]
        from testcontainers.redis import RedisContainer  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        docker.from_env().ping()
    except Exception:
        return None
    pg = PostgresContainer("postgres:15", driver=None).start()
    rd = RedisContainer("redis:7").start()
    redis_url = f"redis://{rd.get_container_host_ip()}:{rd.get_exposed_port(6379)}/0"
    return ExternalTier(pg.get_connection_url(), redis_url), [pg, rd]


@pytest.fixture(scope="session")
def tier() -> Iterator[LocalTier | ExternalTier]:
    """The shared servers for the whole test session (see module docstring for the selection)."""
    db_url, redis_url = os.environ.get("TEST_DATABASE_URL"), os.environ.get("TEST_REDIS_URL")
    if db_url and redis_url:
        yield ExternalTier(
            db_url,
            redis_url,
            replica_url=os.environ.get("TEST_REPLICA_URL"),
            pgbouncer_url=os.environ.get("TEST_PGBOUNCER_URL"),
        )
        return
    if db_url or redis_url:
        pytest.fail("set both TEST_DATABASE_URL and TEST_REDIS_URL (or neither, to start local servers)")
    docker_tier = _docker_tier()
    if docker_tier is not None:
        ext, containers = docker_tier
        try:
            yield ext
        finally:
            for c in containers:
                with contextlib.suppress(Exception):
                    c.stop()
        return
    try:
        local = LocalTier().start()
    except MissingBinaryError as exc:
        pytest.skip(f"no servers for integration tests: {exc}")
    try:
        yield local
    finally:
        local.stop()


def require(tier: LocalTier | ExternalTier, *, standby: bool = False, pgbouncer: bool = False) -> None:
    """Skip the calling test when the shared tier lacks a standby or PgBouncer."""
    if standby and not tier.has_standby:
        pytest.skip("needs a streaming standby (set TEST_REPLICA_URL or use local servers)")
    if pgbouncer and not tier.has_pgbouncer:
        pytest.skip("needs PgBouncer (set TEST_PGBOUNCER_URL or use local servers)")


@pytest.fixture(scope="session")
def tls_tier(tier: LocalTier | ExternalTier) -> Iterator[LocalTier]:
    """A local tier in its TLS transport (throwaway CA, hostssl-only PostgreSQL, PgBouncer TLS,
    Redis tls-port + password): the shared ``tier`` itself (TLS is the local tier's default), or
    one of its own when the shared servers are external. Skips without local binaries."""
    if isinstance(tier, LocalTier) and tier.tls is not None:
        yield tier
        return
    try:
        local = LocalTier(transport="tls").start()
    except MissingBinaryError as exc:
        pytest.skip(f"TLS tests need local server binaries: {exc}")
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
def fresh_db(tier: LocalTier | ExternalTier) -> Iterator[DatabaseDSNs]:
    """A new empty database (owner: the app role) for one test; DSNs for primary/standby/pgbouncer.

    Dropped at teardown. The standby has replayed its creation before the test starts.
    """
    name = f"t_{uuid.uuid4().hex[:16]}"
    dsns = tier.create_database(name)
    try:
        yield dsns
    finally:
        with contextlib.suppress(Exception):
            tier.drop_database(name)


@pytest.fixture
def redis_clean(tier: LocalTier | ExternalTier) -> Iterator[str]:
    """The shared Redis URL, flushed before and after the test."""
    client = redis.Redis.from_url(tier.redis_url)
    try:
        client.flushall()
        yield tier.redis_url
        with contextlib.suppress(redis.RedisError):
            client.flushall()
    finally:
        client.close()


@pytest.fixture
def fault_tier(request: pytest.FixtureRequest) -> Iterator[LocalTier]:
    """A private LocalTier (TLS, like the shared one) for one destructive test (kill -9, promote,
    restarts); ~0.5 s to start after the first. Skips when the local binaries are missing. Options via
    ``@pytest.mark.fault_tier_options(synchronous_standby=True, ...)``."""
    marker = request.node.get_closest_marker("fault_tier_options")
    options: dict[str, Any] = dict(marker.kwargs) if marker else {}
    try:
        local = LocalTier(**options).start()
    except MissingBinaryError as exc:
        pytest.skip(f"fault tests need local server binaries: {exc}")
    except LocalTierError:
        raise
    try:
        yield local
    finally:
        local.stop()


# --- fixtures for reading through the hot standby with real, controllable lag -----------------
# (test_dataaccess_routing.py, test_dataaccess_freshness.py; a module may override make_da)

MakeDA = Callable[..., Awaitable[DataAccess]]


@pytest.fixture
def da_defaults(tier: Any, fresh_db: DatabaseDSNs, redis_clean: str) -> dict[str, Any]:
    """Settings ``make_da`` starts from: write to the primary, read from the standby. A test
    module overrides this fixture to test another setup (no replica, the stock gate, ...)."""
    require(tier, standby=True)
    return {
        "writer_dsn": fresh_db.primary,
        "reader_dsns": (fresh_db.standby,),
        "redis_url": redis_clean,
        "replica_check_interval": 0.2,
        # A paused standby stays "healthy": routing and read-your-writes are what is tested.
        "max_replica_lag": 60.0,
        "read_your_writes_ttl": 120.0,
    }


@pytest.fixture
async def make_da(da_defaults: dict[str, Any]) -> AsyncIterator[MakeDA]:
    """``await make_da(**settings_overrides)``: a DataAccess built from ``da_defaults`` plus the
    overrides; every instance made is closed at teardown."""
    made: list[DataAccess] = []

    async def make(**overrides: Any) -> DataAccess:
        da = await DataAccess.connect(Settings(**{**da_defaults, **overrides}))
        made.append(da)
        return da

    yield make
    for da in made:
        await da.close()


@pytest.fixture
def paused(tier: Any) -> Any:
    """Call ``paused()`` to pause the standby's replay; always resumed at teardown."""
    state = {"paused": False}

    def pause() -> None:
        tier.pause_replay()
        state["paused"] = True

    yield pause
    if state["paused"]:
        tier.resume_replay()
        tier.wait_for_standby()
