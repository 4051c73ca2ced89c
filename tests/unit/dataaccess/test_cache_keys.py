"""Pure parts of the Redis features: key space, TTL jitter, settings validation, client factory."""

from __future__ import annotations

import dataclasses

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import SSLConnection

from dataaccess.cache import CacheAside, CacheStats
from dataaccess.keys import KeySpace
from dataaccess.redis_client import RedisOptions, create_redis, redacted_url


def test_keys_are_namespaced_and_versioned():
    ks = KeySpace()
    assert ks.key("product", 42) == "cdb:v1:product:42"
    assert KeySpace("shop", 3).key("user", "a@b") == "shop:v3:user:a@b"
    assert ks.kind_prefix("session") == "cdb:v1:session:"
    assert ks.pattern() == "cdb:v1:*"


@pytest.mark.parametrize(
    ("args", "match"),
    [(("",), "namespace"), (("a:b",), "':'"), (("cdb", 0), "version"), (("has space",), "whitespace")],
)
def test_bad_key_space(args: tuple[object, ...], match: str):
    with pytest.raises(ValueError, match=match):
        KeySpace(*args)  # type: ignore[arg-type]


@pytest.mark.parametrize("part", ["", "a b", "tab\there", "x" * 513, "new\nline"])
def test_bad_key_parts(part: str):
    with pytest.raises(ValueError, match="key part"):
        KeySpace().key("product", part)


def _client() -> aioredis.Redis:
    return aioredis.Redis()  # never connects in these tests


def test_cache_key_and_ttl_jitter_bounds():
    cache = CacheAside(_client(), namespace="shop", ttl_jitter=0.25)
    assert cache.key("product:7") == "shop:cache:v1:product:7"
    ttls = [cache._ttl_ms(100) for _ in range(2000)]
    assert all(75_000 <= t <= 100_000 for t in ttls)
    assert min(ttls) < 77_000 and max(ttls) > 98_000  # spread over the documented range
    assert CacheAside(_client(), ttl_jitter=0)._ttl_ms(1.5) == 1500


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"ttl_jitter": 1.0}, "ttl_jitter"),
        ({"lease_ttl": 0}, "lease_ttl"),
        ({"lease_wait": -1}, "lease_wait"),
        ({"invalidation_grace": -0.1}, "invalidation_grace"),
        ({"max_pending_invalidations": 0}, "max_pending"),
        ({"namespace": ""}, "namespace"),
    ],
)
def test_cache_rejects_bad_settings(kw: dict[str, object], match: str):
    with pytest.raises(ValueError, match=match):
        CacheAside(_client(), **kw)  # type: ignore[arg-type]


def test_stats_snapshot_is_frozen_and_starts_at_zero():
    cache = CacheAside(_client())
    s = cache.stats
    assert s == CacheStats()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.hits = 1  # type: ignore[misc]
    assert cache.breaker_open is False and cache.breaker_state.value == "closed"


def test_cache_counters_are_declared_once_as_cachestats_fields():
    """Issue 12: the counters were declared twice (CacheStats and a mutable twin). Now CacheStats
    is the only declaration; every counter the cache bumps must be one of its fields (a typo would
    otherwise only fail when that code path runs)."""
    import ast
    import inspect

    import dataaccess.cache as cache_module

    tree = ast.parse(inspect.getsource(cache_module))
    classes = [n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    assert "_Counters" not in classes
    bumped = {
        n.slice.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Subscript)
        and isinstance(n.value, ast.Attribute)
        and n.value.attr == "_c"
        and isinstance(n.slice, ast.Constant)
    }
    fields = {f.name for f in dataclasses.fields(CacheStats)}
    assert bumped and bumped <= fields, bumped - fields
    cache = CacheAside(_client())
    cache._c["hits"] += 2  # what a hit does, twice
    assert cache.stats.hits == 2 and cache.stats == dataclasses.replace(CacheStats(), hits=2)


async def test_factory_builds_bounded_blocking_pool():
    client = create_redis("redis://127.0.0.1:6390/2", options=RedisOptions(max_connections=7, pool_timeout=3))
    try:
        pool = client.connection_pool
        assert isinstance(pool, aioredis.BlockingConnectionPool)
        assert pool.max_connections == 7 and pool.timeout == 3
        kw = pool.connection_kwargs
        assert kw["socket_timeout"] == 1.0 and kw["health_check_interval"] == 15 and kw["db"] == 2
        assert kw["retry"].get_retries() == 1 and kw["decode_responses"] is False
    finally:
        await client.aclose()


async def test_factory_tls_with_auth_token_keeps_token_out_of_repr():
    client = create_redis("rediss://master.cache.example.com:6379/0", auth_token="s3cr3t-token-value")
    try:
        assert issubclass(client.connection_pool.connection_class, SSLConnection)
        assert client.connection_pool.connection_kwargs["password"] == "s3cr3t-token-value"
        assert "s3cr3t" not in repr(client)
    finally:
        await client.aclose()


def test_factory_refuses_auth_token_without_tls_and_does_not_leak_it():
    with pytest.raises(ValueError, match="TLS") as info:
        create_redis("redis://user:hunter2@cache:6379/0")
    assert "hunter2" not in str(info.value)
    with pytest.raises(ValueError, match="TLS"):
        create_redis("redis://cache:6379/0", auth_token="x")
    with pytest.raises(ValueError, match="scheme"):
        create_redis("http://cache:6379")
    with pytest.raises(ValueError, match="max_connections"):
        RedisOptions(max_connections=0)


def test_redacted_url():
    assert redacted_url("rediss://:tok@h:6379/0") == "rediss://:***@h:6379/0"
    assert redacted_url("redis://u:p@h/0") == "redis://u:***@h/0"
    assert redacted_url("redis://h:1/0") == "redis://h:1/0"


def test_cache_area_is_separate_from_durable_keys():
    assert KeySpace("cdb", 1, "cache").pattern() == "cdb:cache:v1:*"
    assert KeySpace("cdb", 1).pattern() == "cdb:v1:*"
    with pytest.raises(ValueError, match="area"):
        KeySpace("cdb", 1, "sessions")
