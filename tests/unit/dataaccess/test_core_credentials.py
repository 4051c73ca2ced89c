"""Credential providers with moto: cached secrets refreshed on demand, cached IAM tokens."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dataaccess import IamAuthTokenProvider, SecretsManagerCredentials, Unavailable
from dataaccess.pools import pool_kwargs
from dataaccess.settings import Settings


@pytest.fixture
def sm() -> Any:
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        client.create_secret(Name="db", SecretString=json.dumps({"username": "app", "password": "one"}))
        yield client


async def test_secret_is_cached_and_refreshed_on_demand(sm: Any) -> None:
    creds = SecretsManagerCredentials("db", client=sm)
    assert await creds.password() == "one"
    assert await creds.password() == "one"
    assert creds.fetch_count == 1 and creds.username() == "app"
    sm.put_secret_value(SecretId="db", SecretString=json.dumps({"username": "app", "password": "two"}))
    assert await creds.password() == "one"  # still cached: rotation is noticed via refresh()
    await creds.refresh()
    assert await creds.password() == "two" and creds.fetch_count == 2
    assert "one" not in repr(creds) and "two" not in repr(creds)


async def test_secret_cache_expires_after_refresh_interval(sm: Any) -> None:
    now = [0.0]
    creds = SecretsManagerCredentials("db", client=sm, refresh_interval=60, clock=lambda: now[0])
    await creds.password()
    now[0] += 59.9
    await creds.password()
    assert creds.fetch_count == 1
    now[0] += 0.1
    await creds.password()
    assert creds.fetch_count == 2


async def test_missing_secret_is_unavailable_without_details(sm: Any) -> None:
    creds = SecretsManagerCredentials("nope", client=sm)
    with pytest.raises(Unavailable, match="nope"):
        await creds.password()


async def test_iam_tokens_are_cached_below_15_minutes_and_refreshable() -> None:
    with mock_aws():
        rds = boto3.client("rds", region_name="us-east-1")
        provider = IamAuthTokenProvider(
            host="db.example.com", port=5432, user="app", region="us-east-1", client=rds
        )
        t1 = await provider.password()
        assert t1.startswith("db.example.com:5432/?Action=connect") and "DBUser=app" in t1
        assert await provider.password() == t1 and provider.generated_count == 1
        await provider.refresh()
        await provider.password()
        assert provider.generated_count == 2
        replica = provider.for_endpoint("replica.example.com", 5432)
        assert (await replica.password()).startswith("replica.example.com:5432/")
        assert provider.for_endpoint("db.example.com", 5432) is provider
    with pytest.raises(ValueError, match="900"):
        IamAuthTokenProvider(host="h", port=1, user="u", token_ttl=900)


def test_pool_kwargs_plug_the_provider_and_keep_proxy_safety() -> None:
    provider = IamAuthTokenProvider(host="db.example.com", port=5432, user="app", region="us-east-1")
    s = Settings(
        writer_dsn="postgresql://app@db.example.com:5432/shop",
        iam_auth=True,
        ssl="require",
        proxy_mode="rds_proxy",
        allow_insecure_transport=True,  # "require" does not verify the server: an explicit choice
    )
    kw = pool_kwargs(s, s.writer_dsn, role="writer", credentials=provider)
    assert callable(kw["password"]) and kw["user"] == "app" and kw["ssl"] == "require"
    assert "statement_timeout" not in kw["server_settings"]  # RDS Proxy: per role, never SET/options
    assert kw["max_inactive_connection_lifetime"] < 1800
    reader = pool_kwargs(
        s, "postgresql://app@replica.example.com:5432/shop", role="reader", credentials=provider
    )
    assert reader["password"].__self__.host == "replica.example.com"  # token signed for the replica
