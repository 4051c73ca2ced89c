"""Events (pub/sub) against a real Redis: delivery, invalidation broadcast, reconnection."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from dataaccess.errors import Unavailable
from dataaccess.pubsub import Events
from dataaccess.redis_client import RedisOptions, create_redis
from tests.integration.redis_faults import KillableRedis, killable_redis

__all__ = ["killable_redis"]  # fixture re-exported for pytest

pytestmark = pytest.mark.integration


async def until(cond: Callable[[], bool], what: str, attempts: int = 1000) -> None:
    for _ in range(attempts):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


class Inbox:
    def __init__(self) -> None:
        self.items: list[Any] = []

    async def event(self, channel: str, payload: Any) -> None:
        self.items.append((channel, payload))

    async def invalidation(self, keys: list[str] | None) -> None:
        self.items.append(keys)


@pytest.fixture
async def pair(tier: Any) -> AsyncIterator[tuple[Events, Events, aioredis.Redis]]:
    """(publisher, subscriber, raw client) on separate connection pools, one random namespace."""
    ns = "t" + secrets.token_hex(4)
    pub_client, sub_client = create_redis(tier.redis_url), create_redis(tier.redis_url)
    pub, sub = Events(pub_client, namespace=ns), Events(sub_client, namespace=ns, poll_timeout=0.05)
    yield pub, sub, pub_client
    await sub.aclose()
    await pub_client.aclose()
    await sub_client.aclose()


async def test_publish_delivers_json_to_subscribers(pair: tuple[Events, Events, aioredis.Redis]):
    pub, sub, _ = pair
    inbox = Inbox()
    sub.subscribe("orders", inbox.event)
    await sub.start()
    await sub.wait_ready()
    assert await pub.publish("orders", {"order_id": 7, "status": "paid"}) == 1
    assert await pub.publish("other", {"x": 1}) == 0  # nobody listens there
    await until(lambda: len(inbox.items) == 1, "delivery")
    assert inbox.items == [("orders", {"order_id": 7, "status": "paid"})]


async def test_invalidation_broadcast_reaches_local_caches(pair: tuple[Events, Events, aioredis.Redis]):
    pub, sub, raw = pair
    local_cache = {"product:1": "a", "product:2": "b", "product:3": "c"}

    async def drop(keys: list[str] | None) -> None:
        for k in keys if keys is not None else list(local_cache):
            local_cache.pop(k, None)

    sub.on_invalidate(drop)
    await sub.start()
    await sub.wait_ready()
    assert await raw.pubsub_numsub(f"{sub.namespace}:invalidate") == [
        (f"{sub.namespace}:invalidate".encode(), 1)
    ]
    await pub.publish_invalidation("product:1", "product:2")
    await until(lambda: "product:1" not in local_cache, "invalidation")
    assert local_cache == {"product:3": "c"}


async def test_bad_messages_and_failing_callbacks_do_not_stop_the_listener(
    pair: tuple[Events, Events, aioredis.Redis],
):
    pub, sub, raw = pair
    inbox = Inbox()

    async def boom(channel: str, payload: Any) -> None:
        raise RuntimeError("callback bug")

    sub.subscribe("orders", boom)
    sub.subscribe("orders", inbox.event)
    await sub.start()
    await sub.wait_ready()
    await raw.publish(sub.channel("orders"), b"\xff not json")
    await pub.publish("orders", 1)
    await until(lambda: inbox.items == [("orders", 1)], "delivery after bad message")
    assert sub.decode_errors == 1 and sub.callback_errors == 1


async def test_subscribe_while_running(pair: tuple[Events, Events, aioredis.Redis]):
    pub, sub, _ = pair
    inbox = Inbox()
    sub.subscribe("a", inbox.event)
    await sub.start()
    await sub.wait_ready()
    sub.subscribe("b", inbox.event)
    for _ in range(500):
        if await pub.publish("b", "hello") == 1:
            break
        await asyncio.sleep(0.01)
    await until(lambda: ("b", "hello") in inbox.items, "delivery on late channel")


async def test_publish_errors(tier: Any):
    dead = create_redis("redis://127.0.0.1:1/0", options=RedisOptions(retries=0))
    try:
        with pytest.raises(Unavailable):
            await Events(dead).publish("x", 1)
        with pytest.raises(ValueError, match="JSON"):
            await Events(dead).publish("x", object())
        with pytest.raises(ValueError, match="channel"):
            await Events(dead).publish("bad channel", 1)
    finally:
        await dead.aclose()


async def test_resubscribes_after_redis_restart(killable_redis: KillableRedis):
    pub_client, sub_client = create_redis(killable_redis.redis_url), create_redis(killable_redis.redis_url)
    pub, sub = Events(pub_client), Events(sub_client, poll_timeout=0.05, backoff_max=0.2)
    inbox, invalidations, reconnected = Inbox(), Inbox(), asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    sub.subscribe("orders", inbox.event)
    sub.on_invalidate(invalidations.invalidation)
    sub.on_reconnect(on_reconnect)
    try:
        await sub.start()
        await sub.wait_ready()
        await pub.publish("orders", "before")
        await until(lambda: len(inbox.items) == 1, "delivery before the outage")

        killable_redis.kill()
        await until(lambda: not sub.connected, "listener noticing the outage")
        killable_redis.start()
        await asyncio.wait_for(reconnected.wait(), 10)
        await sub.wait_ready()
        assert sub.reconnects >= 1
        assert invalidations.items[0] is None  # "drop everything": messages may have been missed
        for _ in range(500):  # the publisher's pooled connection died too; it reconnects itself
            try:
                if await pub.publish("orders", "after") == 1:
                    break
            except Unavailable:
                pass
            await asyncio.sleep(0.01)
        await until(lambda: ("orders", "after") in inbox.items, "delivery after restart")
    finally:
        await sub.aclose()
        await pub_client.aclose()
        await sub_client.aclose()


async def test_unresponsive_server_detected_by_liveness_ping(killable_redis: KillableRedis):
    """A connection that stays open but gets no answers (half-open socket) is replaced."""
    client, admin = create_redis(killable_redis.redis_url), create_redis(killable_redis.redis_url)
    sub = Events(client, poll_timeout=0.02, ping_interval=0.05, backoff_max=0.1)
    sub.subscribe("orders", Inbox().event)
    try:
        await sub.start()
        await sub.wait_ready()
        await admin.execute_command("CLIENT", "PAUSE", 400, "ALL")  # server stops answering everyone
        await until(lambda: sub.reconnects >= 1, "reconnect after missing PONGs")
        await sub.wait_ready()
    finally:
        await sub.aclose()
        await client.aclose()
        await admin.aclose()


async def test_wait_ready_covers_channels_subscribed_after_start(
    pair: tuple[Events, Events, aioredis.Redis],
) -> None:
    """Issue 10, defect 8: ``wait_ready()`` returned before a later ``subscribe()`` was active,
    so a publish right after it reached no one."""
    pub, sub, _ = pair
    first, later = Inbox(), Inbox()
    sub.subscribe("first", first.event)
    await sub.start()
    await sub.wait_ready()
    for i in range(5):  # each new channel: ready only once Redis confirmed it
        sub.subscribe(f"later{i}", later.event)
        await sub.wait_ready()
        assert await pub.publish(f"later{i}", {"n": i}) == 1
    await until(lambda: len(later.items) == 5, "every publish after wait_ready delivered")


async def test_silently_hung_subscription_is_detected_and_resubscribed(fault_tier: Any) -> None:
    """A subscription connection that stops answering (no RST, no FIN: a hung proxy) is noticed
    by the missing PONGs within 3 x ping_interval; after the repair the listener resubscribes and
    invalidation listeners get None (messages may have been missed)."""
    ns = "t" + secrets.token_hex(4)
    proxy = fault_tier.proxy("redis")
    sub_client = create_redis(fault_tier.proxied_redis_url)
    pub_client = create_redis(fault_tier.redis_url)
    sub = Events(sub_client, namespace=ns, poll_timeout=0.05, ping_interval=0.2, backoff_max=0.2)
    pub = Events(pub_client, namespace=ns)
    inbox = Inbox()
    sub.subscribe("orders", inbox.event)
    sub.on_invalidate(inbox.invalidation)
    try:
        await sub.start()
        await sub.wait_ready()
        await asyncio.to_thread(proxy.hang)
        await until(lambda: not sub.connected, "the hung subscription noticed")
        await asyncio.to_thread(proxy.heal)
        await sub.wait_ready()
        assert sub.reconnects >= 1 and None in inbox.items
        assert await pub.publish("orders", {"id": 1}) == 1
        await until(lambda: ("orders", {"id": 1}) in inbox.items, "delivery after the resubscribe")
    finally:
        await asyncio.to_thread(proxy.heal)
        await sub.aclose()
        await sub_client.aclose()
        await pub_client.aclose()
