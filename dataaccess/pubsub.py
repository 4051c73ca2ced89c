"""Redis pub/sub: application events and cache-invalidation broadcast, with reconnection.

redis-py's asyncio ``PubSub`` does not survive a Redis restart or failover by itself (redis-py
#2089, #2417), and a half-open socket (ElastiCache node replaced, NAT timeout) can leave it
silently waiting forever. :class:`Events` runs one listener task that (re)subscribes, PINGs the
server through the subscription connection, and on any connection error or missing PONG closes
the connection, backs off (jittered exponential, 50 ms .. 2 s) and resubscribes.

Pub/sub is **at most once**: messages published while the listener is disconnected are lost.
That is why every reconnect calls the ``on_reconnect`` hooks and tells invalidation listeners to
drop *everything* (``keys=None``): a process-local cache cannot know what it missed. Use
:class:`dataaccess.queue.StreamQueue` when every message must be processed.

Payloads are JSON. Channel ``"orders"`` is published as ``"{namespace}:orders"``; cache
invalidations go to ``"{namespace}:invalidate"`` (``cdb:invalidate``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from dataaccess._aio import cancel_and_wait
from dataaccess.errors import Unavailable
from dataaccess.keys import validate_key_part
from dataaccess.redis_client import drop_stale_connections

__all__ = ["EventCallback", "Events", "InvalidationCallback", "ReconnectCallback"]

log = logging.getLogger(__name__)

EventCallback = Callable[[str, Any], Awaitable[None]]
"""``async def cb(channel, payload)``: ``channel`` without the namespace, ``payload`` decoded JSON."""
InvalidationCallback = Callable[[list[str] | None], Awaitable[None]]
"""``async def cb(keys)``: cache keys to drop, or None = drop everything (after a reconnect)."""
ReconnectCallback = Callable[[], Awaitable[None]]

_CONN_ERRORS = (RedisError, OSError, TimeoutError)
_PING = b"cdb-liveness"
INVALIDATION_CHANNEL = "invalidate"


class Events:
    """Publish JSON events and deliver subscribed channels to async callbacks.

    :param redis: asyncio client (the listener holds one pooled connection while running).
    :param namespace: channel prefix. Default: ``"cdb"``.
    :param poll_timeout: seconds one wait for a message lasts; bounds stop latency. Default: ``0.5``.
    :param ping_interval: seconds between liveness PINGs on the subscription connection; the
        connection is considered dead after ``3 * ping_interval`` without a PONG. Default: ``5.0``.
    :param backoff_max: cap of the reconnect backoff in seconds. Default: ``2.0``.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        namespace: str = "cdb",
        poll_timeout: float = 0.5,
        ping_interval: float = 5.0,
        backoff_max: float = 2.0,
    ) -> None:
        validate_key_part(namespace, what="namespace")
        for name, value in (
            ("poll_timeout", poll_timeout),
            ("ping_interval", ping_interval),
            ("backoff_max", backoff_max),
        ):
            if value <= 0:
                raise ValueError(f"{name} must be > 0 seconds, got {value}")
        self._redis = redis
        self.namespace = namespace
        self.poll_timeout = poll_timeout
        self.ping_interval = ping_interval
        self.backoff_max = backoff_max
        self._callbacks: dict[str, list[EventCallback]] = {}
        self._invalidation: list[InvalidationCallback] = []
        self._reconnect: list[ReconnectCallback] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._confirmed: set[str] = set()  # channels Redis confirmed on the current connection
        self._changed = asyncio.Event()
        self._closing = False
        self._silent_reconnect = False
        self.delivered = 0
        """Messages handed to callbacks."""
        self.reconnects = 0
        """Successful re-subscriptions after a lost connection."""
        self.callback_errors = 0
        """Callbacks that raised (logged, never stop the listener)."""
        self.decode_errors = 0
        """Messages that were not valid JSON (dropped)."""

    # -- publishing ---------------------------------------------------------------------------
    def channel(self, name: str) -> str:
        """Full channel name: ``channel("orders")`` -> ``"cdb:orders"``."""
        return f"{self.namespace}:{validate_key_part(name, what='channel')}"

    async def publish(self, channel: str, payload: Any) -> int:
        """Publish ``payload`` (JSON-serialisable) on ``channel``; returns how many subscribers got it.

        :raises ValueError: payload not JSON-serialisable. :raises Unavailable: Redis unreachable.
        """
        try:
            data = json.dumps(payload, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"event payload must be JSON-serialisable: {exc}") from exc
        try:
            return int(await self._redis.publish(self.channel(channel), data))
        except _CONN_ERRORS as exc:
            await drop_stale_connections(self._redis, exc)
            raise Unavailable(f"event bus unavailable ({type(exc).__name__})") from exc

    async def publish_invalidation(self, *keys: str) -> int:
        """Tell every process to drop ``keys`` from its local (in-process) cache."""
        for k in keys:
            validate_key_part(k, what="cache key")
        return await self.publish(INVALIDATION_CHANNEL, list(keys))

    # -- subscribing --------------------------------------------------------------------------
    def subscribe(self, channel: str, callback: EventCallback) -> None:
        """Deliver messages of ``channel`` to ``callback`` (in order, one at a time; keep it quick).
        A running listener subscribes at once; :meth:`wait_ready` waits until Redis confirmed it."""
        full = self.channel(channel)
        self._callbacks.setdefault(full, []).append(callback)
        self._want(full)

    def _want(self, full: str) -> None:
        if full not in self._confirmed:
            self._ready.clear()  # not ready until Redis confirmed this channel too
        self._changed.set()

    def on_invalidate(self, callback: InvalidationCallback) -> None:
        """Call ``callback(keys)`` for broadcast invalidations, and ``callback(None)`` after a
        reconnect (invalidations may have been missed: drop the whole local cache)."""
        self._invalidation.append(callback)
        full = self.channel(INVALIDATION_CHANNEL)
        self._callbacks.setdefault(full, [])
        self._want(full)

    def on_reconnect(self, callback: ReconnectCallback) -> None:
        """Call ``callback()`` after every re-subscription that followed a lost connection."""
        self._reconnect.append(callback)

    async def start(self) -> None:
        """Start the listener task (idempotent)."""
        if self._task is None or self._task.done():
            self._closing = False
            self._task = asyncio.get_running_loop().create_task(self._listen(), name="cdb-events")

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until Redis has confirmed the subscription of every channel registered so far
        (also those registered after the listener started): a publish after this returns
        reaches this listener."""
        async with asyncio.timeout(timeout):  # not wait_for: 3.11's can drop a cancellation
            await self._ready.wait()

    @property
    def connected(self) -> bool:
        """True while subscribed."""
        return self._ready.is_set()

    async def aclose(self) -> None:
        """Stop the listener and release its connection."""
        self._closing = True
        self._changed.set()
        if self._task is not None:
            await cancel_and_wait(self._task, what="events listener")
            self._task = None
        self._ready.clear()

    # -- listener -----------------------------------------------------------------------------
    async def _listen(self) -> None:
        backoff = 0.05
        ever_connected = False
        loop = asyncio.get_running_loop()
        while not self._closing:
            if not self._callbacks:
                self._changed.clear()
                await self._changed.wait()
                continue
            # Subscribe confirmations are not ignored: readiness means "Redis confirmed it".
            pubsub = self._redis.pubsub(ignore_subscribe_messages=False)
            self._confirmed.clear()
            try:
                subscribed = set(self._callbacks)
                await pubsub.subscribe(*subscribed)
                if ever_connected:
                    self.reconnects += 1
                    log.info("events: resubscribed after connection loss")
                    await self._after_reconnect()
                ever_connected = True
                backoff = 0.05
                # redis-py may reconnect + resubscribe this connection inside its own retry; we
                # must still learn about it, since messages were missed meanwhile.
                self._silent_reconnect = False
                if pubsub.connection is not None:
                    pubsub.connection.register_connect_callback(self._note_reconnect)
                last_pong = next_ping = loop.time()
                while not self._closing:
                    if self._changed.is_set():
                        self._changed.clear()
                        new = set(self._callbacks) - subscribed
                        if new:
                            await pubsub.subscribe(*new)
                            subscribed |= new
                    now = loop.time()
                    if now >= next_ping:
                        await pubsub.ping(_PING)
                        next_ping = now + self.ping_interval
                    if now - last_pong > 3 * self.ping_interval:
                        raise TimeoutError("no PONG on the subscription connection")
                    msg = await pubsub.get_message(timeout=self.poll_timeout)
                    if self._silent_reconnect:
                        self._silent_reconnect = False
                        self._confirmed.clear()  # redis-py resubscribes; wait for the confirmations
                        self._ready.clear()
                        self.reconnects += 1
                        await self._after_reconnect()
                    if msg is None:
                        continue
                    if msg["type"] == "subscribe":
                        ch = msg["channel"]
                        self._confirmed.add(ch.decode() if isinstance(ch, bytes) else ch)
                        if self._confirmed >= set(self._callbacks):
                            self._ready.set()
                    elif msg["type"] == "pong":
                        last_pong = loop.time()
                    elif msg["type"] == "message":
                        await self._dispatch(msg["channel"], msg["data"])
            except _CONN_ERRORS as exc:
                self._ready.clear()
                log.warning(
                    "events: subscription lost (%s); reconnecting in %.2fs", type(exc).__name__, backoff
                )
                await asyncio.sleep(backoff * (0.5 + random.random() / 2))
                backoff = min(backoff * 2, self.backoff_max)
            finally:
                self._ready.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _note_reconnect(self, _conn: Any) -> None:
        self._silent_reconnect = True

    async def _after_reconnect(self) -> None:
        for cb in self._invalidation:
            await self._safe(cb(None))
        for rcb in self._reconnect:
            await self._safe(rcb())

    async def _dispatch(self, channel: bytes | str, data: bytes | str) -> None:
        full = channel.decode() if isinstance(channel, bytes) else channel
        try:
            payload = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            self.decode_errors += 1
            log.warning("events: dropped a non-JSON message on %s", full)
            return
        short = full[len(self.namespace) + 1 :]
        if short == INVALIDATION_CHANNEL and isinstance(payload, list):
            keys = [str(k) for k in payload]
            for icb in self._invalidation:
                self.delivered += 1
                await self._safe(icb(keys))
        for cb in self._callbacks.get(full, []):
            self.delivered += 1
            await self._safe(cb(short, payload))

    async def _safe(self, aw: Awaitable[None]) -> None:
        try:
            await aw
        except Exception:
            self.callback_errors += 1
            log.exception("events: callback failed")
