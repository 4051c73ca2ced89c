"""StreamQueue against a real Redis: ack, retry via reclaim, dead-lettering, stop, restarts."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from dataaccess.errors import QueueFull, Unavailable
from dataaccess.queue import Message, Queues, StreamQueue
from dataaccess.redis_client import RedisOptions, create_redis
from tests.integration.redis_faults import KillableRedis, killable_redis

__all__ = ["killable_redis"]  # fixture re-exported for pytest

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(tier: Any) -> AsyncIterator[aioredis.Redis]:
    c = create_redis(tier.redis_url)
    yield c
    await c.aclose()


def make(client: aioredis.Redis, **kw: Any) -> StreamQueue:
    kw.setdefault("min_idle", 0)  # reclaim immediately: the tests decide when a retry happens
    kw.setdefault("block", 0.05)
    return StreamQueue(client, "jobs", namespace="t" + secrets.token_hex(4), **kw)


class Recorder:
    def __init__(self, fail_times: int = 0, poison: str | None = None) -> None:
        self.seen: list[Message] = []
        self.fail_times = fail_times
        self.poison = poison

    async def __call__(self, msg: Message) -> None:
        self.seen.append(msg)
        if self.poison is not None and msg.fields.get("kind") == self.poison:
            raise ValueError(f"cannot handle {msg.fields['kind']}")
        if self.fail_times > 0:
            self.fail_times -= 1
            raise ConnectionError("smtp down")


async def test_enqueue_consume_ack(client: aioredis.Redis):
    q = make(client)
    msg_id = await q.enqueue({"to": "a@example.com", "n": 1})
    h = Recorder()
    assert await q.process_once("w1", h) == 1
    assert [(m.id, m.fields, m.deliveries) for m in h.seen] == [
        (msg_id, {"to": "a@example.com", "n": "1"}, 1)
    ]
    assert await q.pending() == 0 and q.processed == 1
    assert await q.process_once("w1", h) == 0  # nothing redelivered after the ack


async def test_failed_message_stays_pending_and_is_retried(client: aioredis.Redis):
    q = make(client)
    await q.enqueue({"kind": "email"})
    h = Recorder(fail_times=1)
    await q.process_once("w1", h, reclaim=False)
    assert await q.pending() == 1 and q.failed == 1
    await q.process_once("w2", h)  # another worker reclaims it
    assert [m.deliveries for m in h.seen] == [1, 2]
    assert await q.pending() == 0 and q.processed == 1 and q.reclaimed == 1
    assert await client.hlen(q.stream + ":errors") == 0


async def test_poison_message_dead_lettered_after_max_deliveries(client: aioredis.Redis):
    q = make(client, max_deliveries=3)
    good = [await q.enqueue({"kind": "ok", "i": i}) for i in range(3)]
    bad = await q.enqueue({"kind": "poison", "order": "o-17"})
    h = Recorder(poison="poison")
    for _ in range(5):
        await q.process_once("w1", h)
    assert [m.deliveries for m in h.seen if m.id == bad] == [1, 2, 3]
    assert sorted(m.id for m in h.seen if m.fields["kind"] == "ok") == sorted(good)
    assert await q.pending() == 0 and q.dead_lettered == 1
    (dead,) = await q.dead_letters()
    assert dead.fields["kind"] == "poison" and dead.fields["order"] == "o-17"
    assert dead.fields["x-dlq-source-id"] == bad
    assert dead.fields["x-dlq-deliveries"] == "3" and dead.deliveries == 3
    assert dead.fields["x-dlq-error"] == "ValueError: cannot handle poison"
    # After fixing the cause, an operator can put it back.
    new_id = await q.requeue_dead_letter(dead.id)
    assert new_id is not None and await q.dead_letters() == []
    ok = Recorder()
    await q.process_once("w1", ok)
    assert [m.fields for m in ok.seen] == [{"kind": "poison", "order": "o-17"}]


async def test_message_of_a_dead_worker_is_reclaimed(client: aioredis.Redis):
    q = make(client)
    await q.ensure_group()
    msg_id = await q.enqueue({"kind": "report"})
    # A worker reads it and dies before acking.
    await client.xreadgroup(q.group, "dead-worker", {q.stream: ">"}, count=10)
    assert await q.pending() == 1
    h = Recorder()
    await q.process_once("w2", h)
    assert [(m.id, m.deliveries) for m in h.seen] == [(msg_id, 2)]
    assert await q.pending() == 0


async def test_crash_looping_message_dead_lettered_without_running(client: aioredis.Redis):
    q = make(client, max_deliveries=1)
    await q.ensure_group()
    msg_id = await q.enqueue({"kind": "oom"})
    await client.xreadgroup(q.group, "dead-worker", {q.stream: ">"}, count=10)  # delivery 1, crashed
    h = Recorder()
    await q.process_once("w2", h)
    assert h.seen == []
    (dead,) = await q.dead_letters()
    assert dead.fields["x-dlq-source-id"] == msg_id
    assert "delivery limit exceeded" in dead.fields["x-dlq-error"]
    assert await q.pending() == 0


async def test_prune_consumers_keeps_those_with_pending_messages(client: aioredis.Redis):
    q = make(client)
    await q.enqueue({"kind": "x"})
    await q.ensure_group()
    await client.xreadgroup(q.group, "holder", {q.stream: ">"}, count=1)  # owns a pending message
    await client.xgroup_createconsumer(q.stream, q.group, "idle-worker")
    assert await q.prune_consumers(idle_for=0) == ["idle-worker"]
    names = [c["name"] for c in await client.xinfo_consumers(q.stream, q.group)]
    assert names == [b"holder"]
    assert await q.prune_consumers(idle_for=3600) == []


async def test_handler_timeout_counts_as_failure(client: aioredis.Redis):
    q = make(client, handler_timeout=0.05)
    await q.enqueue({"kind": "slow"})

    async def hang(msg: Message) -> None:
        await asyncio.Event().wait()

    await q.process_once("w1", hang)
    assert q.failed == 1 and await q.pending() == 1
    assert (
        "TimeoutError"
        in (await client.hget(q.stream + ":errors", (await _pending_ids(q, client))[0])).decode()
    )


async def _pending_ids(q: StreamQueue, client: aioredis.Redis) -> list[str]:
    rows = await client.xpending_range(q.stream, q.group, "-", "+", 100)
    return [r["message_id"].decode() for r in rows]


async def test_run_until_stop(client: aioredis.Redis):
    q = make(client)
    await q.enqueue_many([{"i": i} for i in range(20)])
    h = Recorder()
    worker = asyncio.create_task(q.run(h, consumer="w1"))
    for _ in range(500):
        if q.processed == 20:
            break
        await asyncio.sleep(0.01)
    q.stop()
    await asyncio.wait_for(worker, 5)
    assert sorted(int(m.fields["i"]) for m in h.seen) == list(range(20))
    assert await q.pending() == 0


async def test_maxlen_is_back_pressure_and_nothing_accepted_is_dropped(client: aioredis.Redis):
    """Issue 10, defect 7: 1,000 enqueues with no worker running and a cap of 100 used to keep
    ~100 and drop the rest silently; a failed message waiting for redelivery vanished when newer
    traffic pushed it past the cap. Now every accepted message is delivered; the rest is refused."""
    q = make(client, maxlen=100)
    accepted: list[str] = []
    refused = 0
    for i in range(1000):
        try:
            accepted.append(await q.enqueue({"i": i}))
        except QueueFull as exc:
            refused += 1
            assert "maxlen=100" in str(exc) and "jobs" in str(exc)
    assert len(accepted) == 100 and refused == 900
    with pytest.raises(QueueFull):  # all or nothing
        await q.enqueue_many([{"i": "x"}, {"i": "y"}])
    assert await q.length() == 100

    async def fail_first_delivery(msg: Message) -> None:
        if msg.deliveries == 1:
            raise ConnectionError("smtp down")

    assert await q.process_once("w1", fail_first_delivery, reclaim=False) == 10  # wait for redelivery
    assert await q.pending() == 10
    # Finishing the others frees room; new traffic must not push the failed ones out.
    ok = Recorder()
    while await q.process_once("w2", ok, reclaim=False):
        pass
    await q.enqueue_many([{"i": f"new{i}"} for i in range(90)])
    assert await q.length() == 100  # 10 pending + 90 new
    while await q.process_once("w2", ok, reclaim=True):
        pass
    done = {m.fields["i"] for m in ok.seen}
    assert {str(i) for i in range(100)} <= done  # every accepted original, the failed ones too
    assert {f"new{i}" for i in range(90)} <= done
    assert await q.length() == 0 and await q.pending() == 0


async def test_bad_input_and_settings(client: aioredis.Redis):
    q = make(client)
    for bad, match in [
        ({}, "non-empty"),
        ({"x-dlq-error": "x"}, "reserved"),
        ({"flag": True}, "flag"),
        ({"obj": object()}, "obj"),
    ]:
        with pytest.raises(ValueError, match=match):
            await q.enqueue(bad)  # type: ignore[arg-type]
    assert await client.exists(q.stream) == 0
    with pytest.raises(ValueError, match="socket_timeout"):
        StreamQueue(client, "x", block=5)
    short = create_redis("redis://127.0.0.1:1/0", options=RedisOptions(socket_timeout=0.5))
    assert StreamQueue(short, "x").block == 0.25  # default adapts to the client's socket_timeout
    await short.aclose()
    with pytest.raises(ValueError, match="queue name"):
        StreamQueue(client, "has space")
    with pytest.raises(ValueError, match="max_deliveries"):
        StreamQueue(client, "x", max_deliveries=0)


async def test_queues_factory(client: aioredis.Redis):
    queues = Queues(client, namespace="t" + secrets.token_hex(4), max_deliveries=2, block=0.05)
    assert queues["emails"] is queues.get("emails")
    assert queues["emails"].max_deliveries == 2
    assert queues["emails"].stream.endswith(":v1:queue:emails")
    worker = asyncio.create_task(queues["emails"].run(Recorder(), consumer="w"))
    await asyncio.sleep(0.05)
    await queues.aclose()
    await asyncio.wait_for(worker, 5)


async def test_redis_down_raises_unavailable():
    dead = create_redis("redis://127.0.0.1:1/0", options=RedisOptions(retries=0))
    try:
        with pytest.raises(Unavailable):
            await StreamQueue(dead, "x").enqueue({"a": 1})
    finally:
        await dead.aclose()


async def test_worker_survives_redis_restart(killable_redis: KillableRedis):
    client = create_redis(killable_redis.redis_url)
    q = StreamQueue(client, "jobs", min_idle=0, block=0.05)
    h = Recorder()
    worker = asyncio.create_task(q.run(h, consumer="w1"))
    try:
        await q.enqueue({"n": 1})
        while q.processed < 1:
            await asyncio.sleep(0.01)
        killable_redis.kill()
        with pytest.raises(Unavailable):
            await q.enqueue({"n": 2})
        await asyncio.sleep(0.1)  # the worker hits errors and backs off, without dying
        assert not worker.done()
        killable_redis.start()  # empty: stream and group are gone
        for _ in range(300):
            try:
                await q.enqueue({"n": 3})
                break
            except Unavailable:
                await asyncio.sleep(0.01)
        for _ in range(500):
            if q.processed >= 2:
                break
            await asyncio.sleep(0.01)
        assert [m.fields["n"] for m in h.seen] == ["1", "3"]
    finally:
        q.stop()
        await asyncio.wait_for(worker, 5)
        await client.aclose()


async def test_enqueue_cut_after_sending_is_unavailable_and_a_resend_is_delivered(fault_tier: Any):
    """The connection dies right after the enqueue script was sent. The client's own retry (or
    the caller's re-send after ``Unavailable``) may append it twice; it is delivered at least once."""
    proxy = fault_tier.proxy("redis")
    c = create_redis(fault_tier.proxied_redis_url)
    try:
        q = make(c)
        await q.ensure_group()
        await q.enqueue({"warm": 1})  # script loaded, group exists
        proxy.arm(b"EVALSHA", "cut")
        try:
            await q.enqueue({"order": 7})
        except Unavailable:
            await q.enqueue({"order": 7})  # outcome unknown: the caller re-sends
        assert proxy.fired == 1
        h = Recorder()
        while await q.process_once("w", h):
            pass
        orders = [m.fields["order"] for m in h.seen if "order" in m.fields]
        assert orders and set(orders) == {"7"}  # delivered (maybe twice: at least once)
    finally:
        proxy.heal()
        await c.aclose()
