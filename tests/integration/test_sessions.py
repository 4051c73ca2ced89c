"""SessionStore against a real Redis: opaque ids, sliding + absolute expiry, per-user logout."""

from __future__ import annotations

import asyncio
import json
import secrets
import time

import pytest
import redis.asyncio as aioredis

from dataaccess.errors import Unavailable
from dataaccess.redis_client import RedisOptions, create_redis
from dataaccess.sessions import SessionStore, _json_part

pytestmark = pytest.mark.integration


@pytest.fixture
def store(client: aioredis.Redis, ns: str) -> SessionStore:
    return SessionStore(client, namespace=ns, ttl=100, absolute_ttl=1000)


async def _keys(client: aioredis.Redis, ns: str) -> list[str]:
    return sorted([k.decode() async for k in client.scan_iter(match=f"{ns}:*")])


async def test_create_stores_only_a_hash_of_the_id(store: SessionStore, client: aioredis.Redis, ns: str):
    s = await store.create(42, {"cart": [1, 2]})
    assert len(s.id) == 43 and s.user_id == 42 and s.data == {"cart": [1, 2]}
    keys = await _keys(client, ns)
    assert len(keys) == 2 and f"{ns}:v1:user_sessions:42" in keys
    (session_key,) = [k for k in keys if ":session:" in k]
    assert s.id not in session_key and s.id.encode() not in await client.get(session_key)
    assert 99_000 < await client.pttl(session_key) <= 100_000
    assert s.id not in repr(s)
    other = await store.create(42)
    assert other.id != s.id


async def test_get_slides_expiry_of_session_and_index(store: SessionStore, client: aioredis.Redis, ns: str):
    s = await store.create("u1", {"a": 1})
    (session_key,) = [k for k in await _keys(client, ns) if ":session:" in k]
    index_key = f"{ns}:v1:user_sessions:u1"
    await client.pexpire(session_key, 5_000)  # as if 95 s had passed without activity
    await client.pexpire(index_key, 5_000)
    got = await store.get(s.id)
    assert got is not None and got.data == {"a": 1} and got.user_id == "u1"
    assert await client.pttl(session_key) > 99_000
    assert await client.pttl(index_key) > 99_000


async def test_idle_session_expires(client: aioredis.Redis, ns: str):
    store = SessionStore(client, namespace=ns, ttl=0.05, absolute_ttl=None)
    s = await store.create(1)
    for _ in range(200):  # Redis expires the key by itself
        if not await _keys(client, ns + ":v1:session"):
            break
        await asyncio.sleep(0.01)
    assert await store.get(s.id) is None


async def test_absolute_lifetime_caps_sliding(store: SessionStore, client: aioredis.Redis, ns: str):
    s = await store.create(7)
    (session_key,) = [k for k in await _keys(client, ns) if ":session:" in k]
    value = json.loads(_json_part(await client.get(session_key)))
    value["c"] = time.time() - 1000 + 10  # 10 s of absolute lifetime left
    await client.set(session_key, json.dumps(value), keepttl=True)
    assert await store.get(s.id) is not None
    assert 0 < await client.pttl(session_key) <= 10_000  # not slid to the full 100 s
    value["c"] = time.time() - 1001  # past the absolute lifetime
    await client.set(session_key, json.dumps(value), keepttl=True)
    assert await store.get(s.id) is None
    assert await client.exists(session_key) == 0


async def test_update_replaces_data_and_never_resurrects(store: SessionStore):
    s = await store.create(3, {"step": 1})
    assert await store.update(s.id, {"step": 2}) is True
    got = await store.get(s.id)
    assert got is not None and got.data == {"step": 2} and got.user_id == 3
    assert got.created_at == s.created_at
    assert await store.destroy(s.id) is True
    assert await store.update(s.id, {"step": 3}) is False
    assert await store.get(s.id) is None


async def test_destroy_and_destroy_all_for_user(store: SessionStore, client: aioredis.Redis, ns: str):
    mine = [await store.create(1, {"n": i}) for i in range(3)]
    theirs = await store.create(2)
    assert await store.destroy(mine[0].id) is True
    assert await store.destroy(mine[0].id) is False
    assert await store.count_for_user(1) == 2
    assert await store.destroy_all_for_user(1) == 2
    assert all([await store.get(s.id) is None for s in mine])
    assert await client.exists(f"{ns}:v1:user_sessions:1") == 0
    assert await store.get(theirs.id) is not None
    assert await store.destroy_all_for_user(1) == 0


async def test_count_prunes_expired_index_entries(store: SessionStore, client: aioredis.Redis, ns: str):
    a = await store.create(5)
    await store.create(5)
    index_key = f"{ns}:v1:user_sessions:5"
    assert await client.scard(index_key) == 2
    await client.delete(f"{ns}:v1:session:" + SessionStore._hash(a.id))  # as if it expired
    assert await store.count_for_user(5) == 1
    assert await client.scard(index_key) == 1


async def test_bad_input_is_rejected_and_writes_nothing(store: SessionStore, client: aioredis.Redis, ns: str):
    with pytest.raises(ValueError, match="at most"):
        await store.create(1, {"blob": "x" * 20_000})
    with pytest.raises(ValueError, match="JSON"):
        await store.create(1, {"when": object()})
    with pytest.raises(ValueError, match="user_id"):
        await store.create("a b")
    with pytest.raises(TypeError, match="user_id"):
        await store.create(1.5)  # type: ignore[arg-type]
    assert await _keys(client, ns) == []
    assert await store.get("not-a-session-id") is None
    assert await store.get("A" * 43) is None
    assert await store.destroy("../../etc") is False


async def test_redis_down_raises_unavailable_without_the_id():
    dead = create_redis("redis://127.0.0.1:1/0", options=RedisOptions(retries=0))
    store = SessionStore(dead)
    sid = secrets.token_urlsafe(32)
    try:
        with pytest.raises(Unavailable) as info:
            await store.get(sid)
        assert sid not in str(info.value)
        with pytest.raises(Unavailable):
            await store.create(1)
    finally:
        await dead.aclose()


def test_bad_settings_rejected(client: aioredis.Redis):
    with pytest.raises(ValueError, match="ttl"):
        SessionStore(client, ttl=0)
    with pytest.raises(ValueError, match="absolute_ttl"):
        SessionStore(client, ttl=100, absolute_ttl=10)


async def test_lone_surrogate_in_data_keeps_the_user_index_sliding(
    store: SessionStore, client: aioredis.Redis, ns: str
):
    """Issue 10, defect 6: data with a lone surrogate (browsers' JSON can carry one) broke the
    touch script's JSON decoding, so the per-user index expired while the session kept sliding
    and "log out everywhere" missed a live session."""
    s = await store.create(9, {"name": "\ud83d broken emoji"})
    index_key = f"{ns}:v1:user_sessions:9"
    await client.pexpire(index_key, 50)  # about to expire
    got = await store.get(s.id)  # slides the session and must slide the index too
    assert got is not None and got.data == {"name": "\ud83d broken emoji"}
    assert await client.pttl(index_key) > 50_000
    assert await store.update(s.id, {"name": "\udfff again"})
    await client.delete(index_key)  # even a lost index is rebuilt by the next touch
    assert (await store.get(s.id)) is not None
    assert await store.destroy_all_for_user(9) == 1
    assert await store.get(s.id) is None


async def test_sessions_written_in_the_old_format_still_work(
    store: SessionStore, client: aioredis.Redis, ns: str
):
    s = await store.create(11, {"a": 1})
    (session_key,) = [k for k in await _keys(client, ns) if ":session:" in k]
    legacy = json.dumps({"u": 11, "k": "11", "c": time.time(), "d": {"a": 1}}, separators=(",", ":"))
    await client.set(session_key, legacy, px=100_000)
    got = await store.get(s.id)
    assert got is not None and got.data == {"a": 1} and got.user_id == 11
    assert await store.destroy(s.id)
    assert await client.scard(f"{ns}:v1:user_sessions:11") == 0


async def test_user_id_that_is_not_valid_utf8_is_refused_by_name(store: SessionStore):
    with pytest.raises(ValueError, match="user_id"):
        await store.create("u\udc80", {})
