"""Task queue on Redis Streams with consumer groups, retries and a dead-letter stream.

Delivery is **at least once**: a message is acknowledged (XACK) only after its handler returned.
If the handler raises, times out, or the worker dies, the message stays in the group's pending
list; after ``min_idle`` seconds any worker reclaims it (XAUTOCLAIM) and runs it again. Redis
counts every delivery; once a message has been delivered ``max_deliveries`` times without
success it is moved to ``{stream}:dlq`` together with the last error and then acknowledged.

So handlers must be **idempotent**: key their side effects on the message id or on a business
key (an order id with a UNIQUE constraint, ``INSERT ... ON CONFLICT DO NOTHING``), because a
handler that succeeded but whose XACK was lost (crash, Redis failover) runs again.

Nothing accepted is ever dropped: there is no ``MAXLEN`` trimming. A message leaves the stream
only when it is acknowledged (``XACK`` + ``XDEL`` in one ``MULTI``) or moved to the dead-letter
stream. ``maxlen`` bounds the *unfinished* messages (waiting or pending): an enqueue that would go
past it raises :class:`~dataaccess.errors.QueueFull` and enqueues nothing (back-pressure; checked
and appended in one Lua script, so concurrent producers cannot overshoot).

Keys: ``cdb:v1:queue:{name}`` (stream), ``…:dlq`` (dead letters), ``…:errors`` (hash of the
last error per pending message id, so whichever worker dead-letters it can record why).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from dataaccess.errors import QueueFull, Unavailable
from dataaccess.keys import KeySpace, validate_key_part
from dataaccess.redis_client import drop_stale_connections

__all__ = ["DLQ_FIELD_PREFIX", "Handler", "Message", "Queues", "StreamQueue"]

log = logging.getLogger(__name__)

_REDIS_ERRORS = (RedisError, OSError, TimeoutError)

DLQ_FIELD_PREFIX = "x-dlq-"
"""Prefix of the metadata fields added to dead-lettered entries (reserved in payloads)."""

FieldValue = str | int | float | bytes

# KEYS[1] = stream. ARGV = maxlen, n, then for each message: field count, field, value, ...
# All-or-nothing: refuses every message when the unfinished ones would exceed maxlen.
_ENQUEUE = """
local cap, n = tonumber(ARGV[1]), tonumber(ARGV[2])
local len = redis.call('XLEN', KEYS[1])
if len + n > cap then return {-1, len} end
local ids, i = {}, 3
for m = 1, n do
  local c = tonumber(ARGV[i]); i = i + 1
  local args = {}
  for j = 1, 2 * c do args[j] = ARGV[i + j - 1] end
  i = i + 2 * c
  ids[m] = redis.call('XADD', KEYS[1], '*', unpack(args))
end
return ids
"""


@dataclass(frozen=True, slots=True)
class Message:
    """One stream entry as handed to a handler."""

    id: str
    fields: dict[str, str]
    deliveries: int
    """How many times Redis delivered it so far, this delivery included (1 on first delivery)."""


Handler = Callable[[Message], Awaitable[None]]


class StreamQueue:
    """One named queue (a stream + consumer group).

    :param redis: asyncio client on the Redis primary; its ``socket_timeout`` must exceed ``block``.
    :param name: queue name, e.g. ``"emails"``.
    :param namespace: key namespace. Default: ``"cdb"``. :param key_version: Default: ``1``.
    :param group: consumer group name. Default: ``"workers"``.
    :param maxlen: most unfinished (waiting + pending) messages the queue accepts; an enqueue past
        it raises :class:`~dataaccess.errors.QueueFull`. Nothing is ever trimmed. Default: ``100_000``.
    :param max_deliveries: deliveries before a failing message is dead-lettered. Default: ``5``.
    :param min_idle: seconds a pending message must be idle before another worker reclaims it;
        must exceed the slowest normal handler run. Default: ``30.0``.
    :param block: seconds ``XREADGROUP`` waits for new messages (bounds stop latency).
        Default: ``min(0.5, socket_timeout / 2)``.
    :param batch_size: messages fetched per read. Default: ``10``.
    :param handler_timeout: seconds a handler may run before it counts as failed, or None.
        Default: ``None``.
    :param reclaim_interval: seconds between reclaim scans in :meth:`run`. Default: ``min_idle / 2``.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        name: str,
        *,
        namespace: str = "cdb",
        key_version: int = 1,
        group: str = "workers",
        maxlen: int = 100_000,
        max_deliveries: int = 5,
        min_idle: float = 30.0,
        block: float | None = None,
        batch_size: int = 10,
        handler_timeout: float | None = None,
        reclaim_interval: float | None = None,
    ) -> None:
        validate_key_part(name, what="queue name")
        validate_key_part(group, what="group")
        if maxlen < 1:
            raise ValueError(f"maxlen must be >= 1, got {maxlen}")
        if max_deliveries < 1:
            raise ValueError(f"max_deliveries must be >= 1, got {max_deliveries}")
        if min_idle < 0:
            raise ValueError(f"min_idle must be >= 0 seconds, got {min_idle}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if handler_timeout is not None and handler_timeout <= 0:
            raise ValueError(f"handler_timeout must be > 0 seconds or None, got {handler_timeout}")
        socket_timeout = redis.connection_pool.connection_kwargs.get("socket_timeout")
        if block is None:
            block = 0.5 if socket_timeout is None else min(0.5, socket_timeout / 2)
        if block <= 0:
            raise ValueError(f"block must be > 0 seconds, got {block}")
        if socket_timeout is not None and block >= socket_timeout:
            raise ValueError(
                f"block ({block} s) must be shorter than the client's socket_timeout ({socket_timeout} s), "
                "or every idle XREADGROUP would end in a TimeoutError"
            )
        self._redis = redis
        self.name = name
        keys = KeySpace(namespace, key_version)
        self.stream = keys.key("queue", name)
        self.dlq = self.stream + ":dlq"
        self._errors = self.stream + ":errors"
        self.group = group
        self.maxlen = maxlen
        self.max_deliveries = max_deliveries
        self.min_idle = min_idle
        self.block = block
        self.batch_size = batch_size
        self.handler_timeout = handler_timeout
        self.reclaim_interval = reclaim_interval if reclaim_interval is not None else max(min_idle / 2, 0.1)
        self._enqueue_script = redis.register_script(_ENQUEUE)
        self._group_ready = False
        self._claim_cursor = "0-0"
        self._stopping = asyncio.Event()
        self._running = 0
        self.processed = 0
        """Messages handled and acknowledged by this instance."""
        self.failed = 0
        """Handler runs that raised or timed out."""
        self.reclaimed = 0
        """Messages this instance took over from idle consumers."""
        self.dead_lettered = 0
        """Messages this instance moved to the dead-letter stream."""

    # -- producing ----------------------------------------------------------------------------
    async def enqueue(self, fields: Mapping[str, FieldValue]) -> str:
        """Append a message; returns its stream id.

        :raises QueueFull: ``maxlen`` unfinished messages are queued (nothing enqueued).
        :raises Unavailable: Redis unreachable (the message may or may not have been appended
            if the connection died after sending: handlers are idempotent anyway).
        """
        return (await self.enqueue_many([fields]))[0]

    async def enqueue_many(self, items: list[Mapping[str, FieldValue]]) -> list[str]:
        """Append many messages in one round trip, all or none; returns their ids in order.

        :raises QueueFull: they would take the queue past ``maxlen`` (nothing enqueued).
        """
        payloads = [_check_fields(f) for f in items]
        if not payloads:
            return []
        args: list[FieldValue] = [self.maxlen, len(payloads)]
        for p in payloads:
            args.append(len(p))
            for k, v in p.items():
                args += [k, v]
        reply = await self._call(self._enqueue_script(keys=[self.stream], args=args))
        if reply and reply[0] == -1:
            raise QueueFull(
                f"queue {self.name!r} holds {int(reply[1])} unfinished messages; maxlen={self.maxlen} "
                f"leaves no room for {len(payloads)} more (nothing enqueued; retry later or add workers)"
            )
        return [_s(i) for i in reply]

    # -- consuming ----------------------------------------------------------------------------
    async def ensure_group(self) -> None:
        """Create the stream and consumer group if missing (idempotent; reads from the start)."""
        try:
            await self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise Unavailable(f"queue unavailable ({type(exc).__name__})") from exc
        except _REDIS_ERRORS as exc:
            raise Unavailable(f"queue unavailable ({type(exc).__name__})") from exc
        self._group_ready = True

    async def process_once(self, consumer: str, handler: Handler, *, reclaim: bool = True) -> int:
        """Reclaim idle pending messages (if ``reclaim``), read new ones, run ``handler`` on each.

        :returns: number of messages handed to ``handler`` or dead-lettered in this pass.
        :raises Unavailable: Redis unreachable (nothing is lost: unacked messages stay pending).
        """
        validate_key_part(consumer, what="consumer")
        if not self._group_ready:
            await self.ensure_group()
        try:
            return await self._process(consumer, handler, reclaim)
        except Unavailable as exc:
            if "NOGROUP" in str(exc.__cause__):  # stream/group vanished (e.g. Redis restarted empty)
                self._group_ready = False
            raise

    async def _process(self, consumer: str, handler: Handler, reclaim: bool) -> int:
        done = 0
        if reclaim:
            for msg in await self._reclaim(consumer):
                await self._dispatch(msg, handler)
                done += 1
        block_ms = None if done else int(self.block * 1000)
        reply = await self._call(
            self._redis.xreadgroup(
                self.group, consumer, {self.stream: ">"}, count=self.batch_size, block=block_ms
            )
        )
        for _stream, entries in reply or []:
            for msg_id, fields in entries:
                await self._dispatch(Message(_s(msg_id), _fields(fields), 1), handler)
                done += 1
        return done

    async def run(self, handler: Handler, *, consumer: str | None = None) -> None:
        """Consume until :meth:`stop` is called. Survives Redis outages (retries with backoff).

        :param consumer: unique consumer name of this worker. Default: ``host-pid-random``.
        """
        consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        loop = asyncio.get_running_loop()
        next_reclaim = 0.0
        backoff = 0.05
        self._running += 1
        try:
            while not self._stopping.is_set():
                try:
                    now = loop.time()
                    reclaim = now >= next_reclaim
                    if reclaim:
                        next_reclaim = now + self.reclaim_interval
                    await self.process_once(consumer, handler, reclaim=reclaim)
                    backoff = 0.05
                except Unavailable as exc:
                    log.warning("queue %s: Redis unavailable (%s); retrying", self.name, exc)
                    with contextlib.suppress(TimeoutError):  # asyncio.timeout: see dataaccess._aio
                        async with asyncio.timeout(backoff):
                            await self._stopping.wait()
                    backoff = min(backoff * 2, 2.0)
        finally:
            self._running -= 1

    def stop(self) -> None:
        """Ask :meth:`run` loops to finish: the message being handled completes, then they return."""
        self._stopping.set()

    # -- inspection ---------------------------------------------------------------------------
    async def pending(self) -> int:
        """Messages delivered but not yet acknowledged (retry candidates)."""
        try:
            info = await self._call(self._redis.xpending(self.stream, self.group))
        except Unavailable as exc:
            if "NOGROUP" in str(exc.__cause__):
                return 0
            raise
        return int(info["pending"])

    async def length(self) -> int:
        """Unfinished messages: waiting for a worker or pending (acknowledged ones are deleted)."""
        return int(await self._call(self._redis.xlen(self.stream)))

    async def prune_consumers(self, idle_for: float = 3600.0) -> list[str]:
        """Delete consumers idle for ``idle_for`` seconds that hold no pending messages.

        Each worker process registers a consumer name; without pruning the group's consumer list
        grows with every deploy. Consumers that still own pending messages are kept (their
        messages are reclaimed by XAUTOCLAIM first). Returns the deleted names. Default: 1 h.
        """
        deleted: list[str] = []
        for info in await self._call(self._redis.xinfo_consumers(self.stream, self.group)):
            name = _s(info["name"])
            if int(info["pending"]) == 0 and int(info["idle"]) >= idle_for * 1000:
                await self._call(self._redis.xgroup_delconsumer(self.stream, self.group, name))
                deleted.append(name)
        return deleted

    async def dead_letters(self, count: int = 100) -> list[Message]:
        """Oldest ``count`` dead-lettered messages (fields include ``x-dlq-*`` metadata)."""
        rows = await self._call(self._redis.xrange(self.dlq, count=count))
        return [
            Message(_s(i), _fields(f), int(_fields(f).get(DLQ_FIELD_PREFIX + "deliveries", "0")))
            for i, f in rows
        ]

    async def requeue_dead_letter(self, dead_id: str) -> str | None:
        """Move one dead letter back to the queue (after fixing the cause). Returns the new id."""
        rows = await self._call(self._redis.xrange(self.dlq, min=dead_id, max=dead_id))
        if not rows:
            return None
        fields = {k: v for k, v in _fields(rows[0][1]).items() if not k.startswith(DLQ_FIELD_PREFIX)}
        # Through the capped enqueue (QueueFull keeps the dead letter), then drop the dead letter.
        new_id = await self.enqueue(fields)
        await self._call(self._redis.xdel(self.dlq, dead_id))
        return new_id

    # -- internals ----------------------------------------------------------------------------
    async def _call(self, aw: Awaitable[Any]) -> Any:
        try:
            return await aw
        except _REDIS_ERRORS as exc:
            await drop_stale_connections(self._redis, exc)
            raise Unavailable(f"queue unavailable ({type(exc).__name__})") from exc

    async def _reclaim(self, consumer: str) -> list[Message]:
        reply = await self._call(
            self._redis.xautoclaim(
                self.stream,
                self.group,
                consumer,
                min_idle_time=int(self.min_idle * 1000),
                start_id=self._claim_cursor,
                count=self.batch_size,
            )
        )
        cursor, entries = reply[0], reply[1]
        self._claim_cursor = _s(cursor)
        entries = [(i, f) for i, f in entries if f is not None]
        if not entries:
            return []
        ids = [_s(i) for i, _ in entries]
        counts: dict[str, int] = {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for msg_id in ids:  # XAUTOCLAIM does not return delivery counts; XPENDING does
                pipe.xpending_range(self.stream, self.group, min=msg_id, max=msg_id, count=1)
            for rows in await self._call(pipe.execute()):
                for row in rows:
                    counts[_s(row["message_id"])] = int(row["times_delivered"])
        self.reclaimed += len(entries)
        return [Message(_s(i), _fields(f), counts.get(_s(i), self.max_deliveries)) for i, f in entries]

    async def _dispatch(self, msg: Message, handler: Handler) -> None:
        if msg.deliveries > self.max_deliveries:
            # Delivered again after the limit: the handler never returned (worker crash, hang).
            await self._dead_letter(msg, None)
            return
        try:
            if self.handler_timeout is not None:
                async with asyncio.timeout(self.handler_timeout):  # not 3.11's wait_for (drops cancels)
                    await handler(msg)
            else:
                await handler(msg)
        except Exception as exc:  # the handler's failure is data here, not a crash
            self.failed += 1
            error = f"{type(exc).__name__}: {exc}"[:500]
            log.warning(
                "queue %s: handler failed for %s (delivery %d/%d): %s",
                self.name,
                msg.id,
                msg.deliveries,
                self.max_deliveries,
                type(exc).__name__,
            )
            if msg.deliveries >= self.max_deliveries:
                await self._dead_letter(msg, error)
            else:
                await self._call(self._redis.hset(self._errors, msg.id, error))
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, self.group, msg.id)
            pipe.xdel(self.stream, msg.id)  # finished: frees its place under maxlen
            pipe.hdel(self._errors, msg.id)
            await self._call(pipe.execute())
        self.processed += 1

    async def _dead_letter(self, msg: Message, error: str | None) -> None:
        if error is None:
            last = await self._call(self._redis.hget(self._errors, msg.id))
            error = (_s(last) + "; " if last else "") + "delivery limit exceeded without completion"
        meta = {
            DLQ_FIELD_PREFIX + "source-id": msg.id,
            DLQ_FIELD_PREFIX + "queue": self.name,
            DLQ_FIELD_PREFIX + "deliveries": str(msg.deliveries),
            DLQ_FIELD_PREFIX + "error": error,
        }
        # One MULTI: the dead letter exists iff the original is acknowledged.
        entry: dict[Any, Any] = {**msg.fields, **meta}
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.dlq, entry)  # never trimmed: dead letters wait for a human
            pipe.xack(self.stream, self.group, msg.id)
            pipe.xdel(self.stream, msg.id)
            pipe.hdel(self._errors, msg.id)
            await self._call(pipe.execute())
        self.dead_lettered += 1
        log.error("queue %s: message %s dead-lettered after %d deliveries", self.name, msg.id, msg.deliveries)


class Queues:
    """Named queues sharing one client and defaults: ``queues["emails"]`` or ``queues.get(...)``.

    :param redis: asyncio client. :param namespace: Default: ``"cdb"``.
    :param defaults: keyword defaults for every :class:`StreamQueue` (e.g. ``max_deliveries=3``).
    """

    def __init__(self, redis: aioredis.Redis, *, namespace: str = "cdb", **defaults: Any) -> None:
        self._redis = redis
        self._namespace = namespace
        self._defaults = defaults
        self._queues: dict[str, StreamQueue] = {}

    def get(self, name: str, **overrides: Any) -> StreamQueue:
        """The queue called ``name`` (created on first use; ``overrides`` apply only then)."""
        q = self._queues.get(name)
        if q is None:
            q = StreamQueue(self._redis, name, namespace=self._namespace, **{**self._defaults, **overrides})
            self._queues[name] = q
        return q

    def __getitem__(self, name: str) -> StreamQueue:
        return self.get(name)

    def __iter__(self) -> Any:
        return iter(self._queues)

    async def aclose(self) -> None:
        """Stop every running consumer loop of these queues."""
        for q in self._queues.values():
            q.stop()


def _check_fields(fields: Mapping[str, FieldValue]) -> dict[str, FieldValue]:
    if not isinstance(fields, Mapping) or not fields:
        raise ValueError("a queue message needs a non-empty mapping of fields")
    out: dict[str, FieldValue] = {}
    for key, value in fields.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"message field names must be non-empty strings, got {key!r}")
        if key.startswith(DLQ_FIELD_PREFIX):
            raise ValueError(f"message field {key!r} uses the reserved prefix {DLQ_FIELD_PREFIX!r}")
        if isinstance(value, bool) or not isinstance(value, str | int | float | bytes):
            raise ValueError(
                f"message field {key!r} must be str, int, float or bytes, got {type(value).__name__}"
            )
        out[key] = value
    return out


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {_s(k): _s(v) for k, v in raw.items()}
