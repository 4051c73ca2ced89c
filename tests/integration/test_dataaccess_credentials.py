"""Secrets Manager credentials (moto) against a real PostgreSQL role whose password is rotated."""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator
from typing import Any

import asyncpg
import boto3
import pytest
from moto import mock_aws

from commerce_db.localtier import DatabaseDSNs
from dataaccess import DataAccess, SecretsManagerCredentials, Settings, Unavailable

pytestmark = pytest.mark.integration


def _tls(tier: Any) -> dict[str, Any]:
    """from_secret verifies TLS by default: give it the tier's CA (or say the tier is plaintext)."""
    tls = getattr(tier, "tls", None)
    return {"ssl_root_cert": str(tls.ca_cert)} if tls is not None else {"ssl": "disable"}


@pytest.fixture
def secretsmanager() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


async def test_rotated_password_is_refreshed_once_and_connections_recover(
    tier: Any, fresh_db: DatabaseDSNs, redis_clean: str, secretsmanager: Any
) -> None:
    if not hasattr(tier, "primary_admin_dsn"):
        pytest.skip("needs the local tier's admin access to create a role")
    role = "rot_" + secrets.token_hex(4)
    pw1, pw2, pw3 = (secrets.token_urlsafe(16) for _ in range(3))
    admin = await asyncpg.connect(tier.primary_admin_dsn)
    setup = await DataAccess.connect(Settings(writer_dsn=fresh_db.primary))
    da: DataAccess | None = None
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{pw1}'")
        await admin.execute(f"GRANT app TO {role}")
        await setup.migrate()
        host_port = fresh_db.primary.split("@", 1)[1].split("/", 1)[0]
        host, port = host_port.rsplit(":", 1)
        payload = {
            "host": host,
            "port": int(port),
            "username": role,
            "password": pw1,
            "dbname": fresh_db.name,
            "redis_url": redis_clean,
        }
        secretsmanager.create_secret(Name="commerce/db", SecretString=json.dumps(payload))

        settings = Settings.from_secret(
            "commerce/db", region="us-east-1", client=secretsmanager, **_tls(tier)
        )
        assert pw1 not in repr(settings) and settings.redis_url == redis_clean
        provider = settings.credentials
        assert isinstance(provider, SecretsManagerCredentials) and provider.fetch_count == 1
        da = await DataAccess.connect(settings)
        u = await da.users.create(email="rot@example.com", name="Rot")

        # Single-user rotation: the DB changes first, then the secret. Existing sessions survive;
        # new connections fail with InvalidPasswordError until the cached secret is refreshed.
        await admin.execute(f"ALTER ROLE {role} PASSWORD '{pw2}'")
        secretsmanager.put_secret_value(
            SecretId="commerce/db", SecretString=json.dumps({**payload, "password": pw2})
        )
        await da.pools.writer_pool.expire_connections()
        assert await da.users.get(u.id) == u
        v = await da.users.create(email="rot2@example.com", name="Rot2")
        assert provider.fetch_count == 2
        assert da.stats()["retries"].get("invalid_password") == 1

        # Password changed but the secret not (yet): refreshed once, then a clear Unavailable.
        await admin.execute(f"ALTER ROLE {role} PASSWORD '{pw3}'")
        await da.pools.writer_pool.expire_connections()
        with pytest.raises(Unavailable, match="authentication") as info:
            await da.users.create(email="rot3@example.com", name="Rot3")
        assert pw3 not in str(info.value) and pw2 not in str(info.value)
        assert provider.fetch_count == 3
        assert (await setup.users.get(v.id)) == v
    finally:
        if da is not None:
            await da.close()
        await setup.close()
        with contextlib.suppress(Exception):
            await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()


async def test_alternating_users_rotation_switches_the_user(
    tier: Any, fresh_db: DatabaseDSNs, secretsmanager: Any
) -> None:
    """Alternating-users rotation: the secret moves from user A to user B and A's password is
    changed. The failed connect refreshes the secret and the pools reconnect as B."""
    if not hasattr(tier, "primary_admin_dsn"):
        pytest.skip("needs the local tier's admin access to create roles")
    a, b = "alt_a_" + secrets.token_hex(3), "alt_b_" + secrets.token_hex(3)
    pa, pb = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    admin = await asyncpg.connect(tier.primary_admin_dsn)
    setup = await DataAccess.connect(Settings(writer_dsn=fresh_db.primary))
    da: DataAccess | None = None
    try:
        for role, pw in ((a, pa), (b, pb)):
            await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{pw}'")
            await admin.execute(f"GRANT app TO {role}")
        await setup.migrate()
        host, port = fresh_db.primary.split("@", 1)[1].split("/", 1)[0].rsplit(":", 1)
        base = {"host": host, "port": int(port), "dbname": fresh_db.name}
        secretsmanager.create_secret(
            Name="alt", SecretString=json.dumps({**base, "username": a, "password": pa})
        )
        da = await DataAccess.connect(
            Settings.from_secret("alt", region="us-east-1", client=secretsmanager, **_tls(tier))
        )
        await da.users.create(email="alt-a@example.com", name="A")
        secretsmanager.put_secret_value(
            SecretId="alt", SecretString=json.dumps({**base, "username": b, "password": pb})
        )
        await admin.execute(f"ALTER ROLE {a} PASSWORD '{secrets.token_urlsafe(12)}'")
        await da.pools.writer_pool.expire_connections()
        await da.users.create(email="alt-b@example.com", name="B")
        async with da.pools.writer() as conn:
            assert await conn.fetchval("SELECT current_user") == b
    finally:
        if da is not None:
            await da.close()
        await setup.close()
        for role in (a, b):
            with contextlib.suppress(Exception):
                await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()
