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

import asyncio
import contextlib
import json
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
import redis.asyncio as aioredis

from commerce_db.localtier import DatabaseDSNs, ExternalTier, LocalTier, LocalTierError, MissingBinaryError
from dataaccess import DataAccess, Settings
from dataaccess.redis_client import create_redis

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


# --- the service's wiring: stack outputs + Secrets Manager (moto) -> Settings ------------------

StackSettings = Callable[..., Settings]


@pytest.fixture
async def stack_settings(
    tier: LocalTier | ExternalTier, fresh_db: DatabaseDSNs, redis_clean: str
) -> AsyncIterator[StackSettings]:
    """``stack_settings(**overrides)``: the data layer's Settings built the way a service builds
    them, by ``Settings.from_stack_outputs`` from the stack's outputs and Secrets Manager (moto):
    writes through PgBouncer as ``app_writer`` (no DDL), replica reads as ``app_reader``
    (read-only), Redis over ``rediss://`` with the AUTH token from its secret, TLS verified
    against the tier's CA. The schema owner has migrated ``fresh_db`` first, as a deploy step does.
    """
    if not isinstance(tier, LocalTier) or tier.tls is None:
        pytest.skip("needs the local tier (TLS, per-application roles)")
    import boto3
    from moto import mock_aws

    assert tier.tls is not None
    async with DataAccess.connect(Settings(writer_dsn=fresh_db.primary)) as owner:
        await owner.migrate()  # DDL: the owner only
    await asyncio.to_thread(tier.wait_for_standby)
    writer = urlsplit(tier.dsns(fresh_db.name, role="writer").pgbouncer or "")
    reader = urlsplit(tier.dsns(fresh_db.name, role="reader").standby or "")
    redis_parts = urlsplit(redis_clean)
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name="us-east-1")

        def secret(name: str, payload: dict[str, Any]) -> str:
            return str(sm.create_secret(Name=name, SecretString=json.dumps(payload))["ARN"])

        def user_secret(parts: Any) -> dict[str, Any]:
            return {
                "engine": "postgres",
                "host": "127.0.0.1",
                "port": parts.port,
                "username": parts.username,
                "password": parts.password,
                "dbname": fresh_db.name,
            }

        outputs = {
            "writerEndpoint": f"127.0.0.1:{writer.port}",
            "readerEndpoints": [f"127.0.0.1:{reader.port}"],
            # As the stack exports them: the master (here the owner) and the service's users.
            "dbSecretArn": secret("owner", user_secret(urlsplit(fresh_db.pgbouncer or ""))),
            "writerSecretArn": secret("app-writer", user_secret(writer)),
            "readerSecretArn": secret("app-reader", user_secret(reader)),
            "redisPrimaryEndpoint": f"127.0.0.1:{redis_parts.port}",
            "redisAuthSecretArn": secret(
                "redis-auth", {"auth_token": redis_parts.password, "port": redis_parts.port, "tls": True}
            ),
        }

        def make(**overrides: Any) -> Settings:
            return Settings.from_stack_outputs(
                outputs,
                region="us-east-1",
                client=sm,
                ssl_root_cert=str(tier.tls.ca_cert) if tier.tls else None,
                redis_ca_certs=str(tier.tls.ca_cert) if tier.tls else None,
                **{"proxy_mode": "pgbouncer", **overrides},
            )

        yield make


@pytest.fixture
async def client(tier: Any) -> AsyncIterator[aioredis.Redis]:
    """A Redis client on the shared tier (modules needing other options define their own)."""
    c = create_redis(tier.redis_url)
    yield c
    await c.aclose()


@pytest.fixture
def ns() -> str:
    """A key namespace of its own for each test."""
    return "t" + secrets.token_hex(4)
