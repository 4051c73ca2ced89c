"""The local tier's TLS transport (issue 17): verify-full DSNs and a rediss:// URL against a
throwaway CA, plaintext refused by every server, and the data layer working over it."""

from __future__ import annotations

import ssl
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, ConnectionError, ResponseError

from commerce_db.localtier import DatabaseDSNs, LocalTier
from commerce_db.localtier.procs import RunAs
from commerce_db.localtier.tls import make_throwaway_ca
from dataaccess import DataAccess, Settings

pytestmark = [pytest.mark.integration]


def _tls_tier(tier: Any) -> LocalTier:
    assert isinstance(tier, LocalTier) and tier.tls is not None
    return tier


@pytest.fixture
def tls_db(tls_tier: LocalTier) -> Any:
    name = f"t_{uuid.uuid4().hex[:16]}"
    dsns = tls_tier.create_database(name)
    try:
        yield dsns
    finally:
        tls_tier.drop_database(name)


def _plain(dsn: str) -> str:
    parts = urlsplit(dsn)
    return parts._replace(query="").geturl()


def test_dsns_ask_for_verify_full_with_the_tiers_ca_and_redis_is_rediss(tls_tier: LocalTier) -> None:
    local = _tls_tier(tls_tier)
    assert local.tls is not None
    dsns = local.dsns()
    for dsn in (dsns.primary, dsns.standby, dsns.pgbouncer):
        assert dsn is not None
        query = parse_qs(urlsplit(dsn).query)
        assert query == {"sslmode": ["verify-full"], "sslrootcert": [str(local.tls.ca_cert)]}
    redis_url = urlsplit(local.redis_url)
    assert redis_url.scheme == "rediss" and redis_url.password
    assert parse_qs(redis_url.query) == {"ssl_ca_certs": [str(local.tls.ca_cert)]}
    assert "***" in repr(dsns)  # passwords masked


@pytest.mark.parametrize("endpoint", ["primary", "standby", "pgbouncer"])
async def test_plaintext_postgres_connections_are_refused(tls_tier: LocalTier, endpoint: str) -> None:
    local = _tls_tier(tls_tier)
    dsn = getattr(local.dsns(), endpoint)
    with pytest.raises((asyncpg.InvalidAuthorizationSpecificationError, asyncpg.PostgresError, OSError)):
        conn = await asyncpg.connect(_plain(dsn), ssl=False, statement_cache_size=0)
        await conn.close()
    conn = await asyncpg.connect(dsn, statement_cache_size=0)  # the DSN as given: TLS, verified
    try:
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()


async def test_a_server_certificate_from_another_ca_is_rejected(tls_tier: LocalTier, tmp_path: Path) -> None:
    local = _tls_tier(tls_tier)
    other = make_throwaway_ca(tmp_path / "other", RunAs())
    parts = urlsplit(local.dsns().pgbouncer or "")
    wrong = parts._replace(query=f"sslmode=verify-full&sslrootcert={other.ca_cert}").geturl()
    with pytest.raises((ssl.SSLError, OSError, asyncpg.PostgresError)):
        conn = await asyncpg.connect(wrong, statement_cache_size=0)
        await conn.close()


async def test_plaintext_and_unauthenticated_redis_are_refused(tls_tier: LocalTier) -> None:
    local = _tls_tier(tls_tier)
    port = urlsplit(local.redis_url).port
    plain = aioredis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
    with pytest.raises((ConnectionError, OSError, ResponseError)):
        await plain.ping()
    await plain.aclose()
    assert local.tls is not None
    no_password = aioredis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(local.tls.ca_cert))
    with pytest.raises((AuthenticationError, ResponseError)):
        await no_password.ping()
    await no_password.aclose()
    good = aioredis.Redis.from_url(local.redis_url)
    assert await good.ping()
    await good.aclose()


async def test_data_layer_over_tls_through_pgbouncer_standby_and_rediss(
    tls_tier: LocalTier, tls_db: DatabaseDSNs
) -> None:
    _tls_tier(tls_tier)
    assert tls_db.pgbouncer is not None and tls_db.standby is not None
    settings = Settings(
        writer_dsn=tls_db.pgbouncer,
        reader_dsns=(tls_db.standby,),
        redis_url=tls_tier.redis_url,
        proxy_mode="pgbouncer",
    )
    async with DataAccess.connect(settings) as da:
        await da.migrate()
        p = await da.products.create(sku="TLS-1", name="Encrypted", price_cents=10, stock=3)
        assert await da.products.get(p.id) == p
        assert (await da.products.search("Encrypted"))[0].id == p.id
        async with da.pools.writer() as conn:
            assert await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")


def test_tls_is_the_default_and_plaintext_is_named(tier: Any) -> None:
    with pytest.raises(ValueError, match="transport"):
        LocalTier(transport="insecure")
    assert LocalTier().transport == "tls"  # not started: the default alone
    if not isinstance(tier, LocalTier):
        pytest.skip("needs the local tier")
    assert tier.transport == "tls" and tier.tls is not None  # the shared test tier too


async def test_plaintext_mode_serves_plaintext(tmp_path: Path) -> None:
    """Plaintext is needed here because this test is about the plaintext mode itself: it must
    still start and be reachable without TLS, for the rare client that cannot speak it."""
    with LocalTier(transport="plaintext", standby=False, pgbouncer=False, redis_replica=False) as plain:
        assert plain.tls is None
        assert "sslmode" not in plain.dsns().primary
        assert plain.redis_url.startswith("redis://")
        conn = await asyncpg.connect(plain.primary_dsn, ssl=False)
        try:
            assert await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") is False
        finally:
            await conn.close()
        client = aioredis.Redis.from_url(plain.redis_url)
        try:
            assert await client.ping()
        finally:
            await client.aclose()


async def test_settings_from_stack_outputs_and_secrets_manager_wire_the_local_tier(
    tls_tier: LocalTier, tls_db: DatabaseDSNs
) -> None:
    """The wiring users copy: the stack's outputs (endpoints, secret ARNs) + Secrets Manager
    (moto) -> Settings -> DataAccess, against the local tier over verified TLS. The passwords come
    only from the secrets."""
    import json

    import boto3
    from moto import mock_aws

    local = _tls_tier(tls_tier)
    assert local.tls is not None and tls_db.pgbouncer is not None and tls_db.standby is not None
    pgb, standby, redis_url = (
        urlsplit(tls_db.pgbouncer),
        urlsplit(tls_db.standby),
        urlsplit(tls_tier.redis_url),
    )
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name="us-east-1")
        db_secret = sm.create_secret(
            Name="db-master",
            SecretString=json.dumps(
                {
                    "engine": "postgres",
                    "host": "127.0.0.1",
                    "port": local.primary.port,
                    "username": pgb.username,
                    "password": pgb.password,
                    "dbname": tls_db.name,
                }
            ),
        )["ARN"]
        redis_secret = sm.create_secret(
            Name="redis-auth",
            SecretString=json.dumps({"auth_token": redis_url.password, "port": redis_url.port, "tls": True}),
        )["ARN"]
        outputs = {
            "writerEndpoint": f"127.0.0.1:{pgb.port}",
            "readerEndpoints": [f"127.0.0.1:{standby.port}"],
            "dbSecretArn": db_secret,
            "redisPrimaryEndpoint": "127.0.0.1",
            "redisAuthSecretArn": redis_secret,
        }
        settings = Settings.from_stack_outputs(
            outputs,
            region="us-east-1",
            client=sm,
            ssl_root_cert=str(local.tls.ca_cert),
            redis_ca_certs=str(local.tls.ca_cert),
            proxy_mode="pgbouncer",
        )
        assert "sslmode=verify-full" in settings.writer_dsn and pgb.password not in settings.writer_dsn
        assert settings.redis_url is not None and settings.redis_url.startswith("rediss://")
        assert pgb.password not in repr(settings) and (redis_url.password or "") not in repr(settings)
        async with DataAccess.connect(settings) as da:
            await da.migrate()
            u = await da.users.create(email="stack@example.com", name="Stack")
            assert await da.users.get(u.id) == u
            assert da.cache is not None and da.sessions is not None
            s = await da.sessions.create(u.id, {"via": "outputs"})
            assert (await da.sessions.get(s.id)) is not None
    with pytest.raises(Exception, match=r"outputs\.writerEndpoint"):
        Settings.from_stack_outputs({}, region="us-east-1")


def test_other_local_users_cannot_use_the_trusted_unix_socket(tls_tier: LocalTier) -> None:
    """The socket has trust auth for the tier's own superuser access; another OS user (here
    ``nobody``) must not reach it (it got a passwordless superuser before the socket was 0700)."""
    import os
    import pwd
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("needs root to run a client as another OS user")
    nobody = pwd.getpwnam("nobody")
    node = tls_tier.primary
    out = subprocess.run(
        [node.bins.pg("psql"), "-h", str(node.home), "-p", str(node.port), "-U", "postgres", "-d", "postgres",
         "-Atc", "SELECT current_user"],
        capture_output=True, text=True, timeout=60, user=nobody.pw_uid, group=nobody.pw_gid,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert out.returncode != 0 and "postgres" not in out.stdout
    assert "Permission denied" in out.stderr or "permission denied" in out.stderr.lower()
