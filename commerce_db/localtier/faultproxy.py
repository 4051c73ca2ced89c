"""A TCP fault-injection proxy for the local tier: faults become ordinary test inputs.

One :class:`FaultProxy` listens on a free loopback port and forwards every connection to one
server (PostgreSQL, PgBouncer, Redis, or the standby's replication link). Faults, all thread-safe
and callable from sync or async code (the proxy runs its own event loop in a daemon thread)::

    proxy.cut()                 # close every open connection now (both sides, RST)
    proxy.hang()                # hold all traffic (open and new connections) until heal():
                                # a server that stopped answering; nothing is lost
    proxy.delay(0.2)            # every chunk waits 0.2 s before it is forwarded
    proxy.refuse()              # new connections are closed at once (server "down")
    proxy.heal()                # back to normal (connections cut by a drop are closed)
    proxy.arm(b"COMMIT", "cut") # the next time a client sends COMMIT: forward it, let the server
                                # answer, discard the answer and close both sides — the server
                                # committed, the client cannot know

Actions of :meth:`FaultProxy.arm`, applied to the connection that sent the statement, right
after it was forwarded to the server:

``cut``    wait for the server's first reply bytes (the statement ran), discard them, close both
           sides. Deterministic "committed, connection lost before the acknowledgement".
``hang``   hold the reply (and everything after it on that connection) until :meth:`heal`, then
           deliver it: a client with a timeout gives up first.
``delay``  deliver the reply ``seconds`` late.
``drop``   black hole: discard everything after the statement in both directions, never close
           (a network partition; only the client's own timeouts end it). :meth:`heal` closes it.

Matching is on the client->server bytes (PostgreSQL's simple-query ``COMMIT;`` as asyncpg
sends it, a RESP command name such as ``EVALSHA`` or ``XADD``), across chunk boundaries. With a
TLS tier the proxy terminates TLS on both sides with the tier's own CA (PostgreSQL's in-protocol
``SSLRequest`` for ``protocol="postgres"``, TLS from the first byte for ``"redis"``), so clients
still verify ``127.0.0.1`` against that CA and statements stay matchable; ``"raw"`` forwards bytes
untouched (the replication link).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from commerce_db.localtier.errors import LocalTierError
from commerce_db.localtier.tls import TlsFiles

__all__ = ["Action", "FaultProxy", "rewrite_port"]

Action = Literal["cut", "hang", "delay", "drop"]
_ACTIONS = ("cut", "hang", "delay", "drop")
_CHUNK = 65536
_SSL_REQUEST = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")
_GSSENC_REQUEST = (8).to_bytes(4, "big") + (80877104).to_bytes(4, "big")
Protocol = Literal["postgres", "redis", "raw"]


def rewrite_port(url: str, port: int, host: str = "127.0.0.1") -> str:
    """``url`` with its host and port replaced (credentials, path and query kept)."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass
class _Rule:
    pattern: bytes
    action: Action
    seconds: float
    remaining: int


@dataclass(eq=False)
class _Conn:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    after: _Rule | None = None  # a fired rule waiting for the server's reply
    black_hole: bool = False
    held: bool = False  # a fired "hang": hold until heal()
    tail: bytes = b""  # last bytes sent upstream, to match patterns split across chunks
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for w in (self.client, self.server):
            with contextlib.suppress(Exception):
                w.transport.abort()


class FaultProxy:
    """TCP proxy ``127.0.0.1:<port>`` -> ``upstream_host:upstream_port`` with injectable faults.

    :param name: label used in errors and thread names.
    :param upstream_port: the server's port. :param upstream_host: Default: ``"127.0.0.1"``.
    :param protocol: ``"postgres"``, ``"redis"`` or ``"raw"``: how TLS is negotiated when ``tls``
        is given. Default: ``"raw"``.
    :param tls: the tier's TLS files: terminate TLS on both sides (see module doc). Default: None.
    :param listen_host: loopback address to listen on, e.g. ``"127.0.0.2"`` so that two proxies
        share a port and differ only by address, like two endpoints a DNS name can point at.
        Default: ``"127.0.0.1"``.
    :param listen_port: Default: 0 (a free port).

    Use :meth:`start` / :meth:`stop` (or ``with``). :attr:`port` is the listening port.
    Counters: :attr:`connections` accepted, :attr:`fired` armed rules that fired;
    :attr:`open_connections` is how many are open now.
    """

    def __init__(
        self,
        name: str,
        upstream_port: int,
        upstream_host: str = "127.0.0.1",
        *,
        protocol: Protocol = "raw",
        tls: TlsFiles | None = None,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
    ) -> None:
        self.name = name
        self.listen_host = listen_host
        self.listen_port = listen_port
        self.protocol = protocol
        self.tls = tls if protocol != "raw" else None
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.port: int | None = None
        self.connections = 0
        self.fired = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._conns: set[_Conn] = set()
        self._rules: list[_Rule] = []
        self._refusing = False
        self._delay = 0.0
        self._flowing: asyncio.Event | None = None  # cleared while hung
        self._fired_event = threading.Event()

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        if self._thread is not None:
            raise LocalTierError(f"fault proxy {self.name} already started")
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.call_soon(ready.set)
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"faultproxy-{self.name}", daemon=True)
        self._thread.start()
        ready.wait(10)
        self._call(self._listen())
        return self

    async def _listen(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        direct_tls = self.tls.server_context() if self.tls is not None and self.protocol == "redis" else None
        self._server = await asyncio.start_server(
            self._handle, self.listen_host, self.listen_port, ssl=direct_tls
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        """Close the listener and every connection; stop the thread. Idempotent."""
        if self._loop is None or self._thread is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for c in list(self._conns):
                c.abort()
            for c in list(self._conns):
                for t in c.tasks:
                    t.cancel()

        with contextlib.suppress(Exception):
            self._call(shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        if self._loop is None:
            coro.close()
            raise LocalTierError(f"fault proxy {self.name} is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    @property
    def open_connections(self) -> int:
        """Client connections open through the proxy right now."""
        return len(self._conns)

    def url(self, upstream_url: str) -> str:
        """``upstream_url`` (a DSN or Redis URL of the upstream server) pointed at this proxy."""
        if self.port is None:
            raise LocalTierError(f"fault proxy {self.name} is not running")
        return rewrite_port(upstream_url, self.port)

    # -- faults -----------------------------------------------------------------------------------
    def cut(self) -> None:
        """Close every open connection now (both sides). New connections are accepted."""

        async def go() -> None:
            for c in list(self._conns):
                c.abort()

        self._call(go())

    def hang(self) -> None:
        """Hold all traffic, on open and new connections, until :meth:`heal` (nothing is lost)."""

        async def go() -> None:
            assert self._flowing is not None
            self._flowing.clear()

        self._call(go())

    def delay(self, seconds: float) -> None:
        """Forward every chunk ``seconds`` late (0 turns it off)."""
        if seconds < 0:
            raise ValueError(f"delay must be >= 0 seconds, got {seconds}")
        self._delay = float(seconds)

    def refuse(self) -> None:
        """Close new connections at once, as a server that is down (open ones are kept)."""
        self._refusing = True

    def arm(self, pattern: bytes, action: Action, *, seconds: float = 0.0, count: int = 1) -> None:
        """Apply ``action`` to the next ``count`` connections that send ``pattern`` (see module doc).

        :param pattern: bytes to look for in client->server traffic, e.g. ``b"COMMIT"``.
        :param seconds: for ``delay``: how late the reply is delivered. Default: ``0``.
        :param count: how many times the rule fires. Default: ``1``.
        """
        if action not in _ACTIONS:
            raise ValueError(f"action must be one of {_ACTIONS}, got {action!r}")
        if not pattern:
            raise ValueError("pattern must be non-empty bytes")
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        self._rules.append(_Rule(bytes(pattern), action, seconds, count))

    def disarm(self) -> None:
        """Forget armed rules that have not fired."""
        self._rules.clear()

    def wait_fired(self, n: int = 1, timeout: float = 30.0) -> None:
        """Block until at least ``n`` armed rules fired in total (raises on timeout)."""
        deadline = threading.Event()
        for _ in range(int(timeout * 100)):
            if self.fired >= n:
                return
            deadline.wait(0.01)
        raise LocalTierError(f"fault proxy {self.name}: armed rule fired {self.fired} of {n} times")

    async def await_fired(self, n: int = 1, timeout: float = 30.0) -> None:
        """:meth:`wait_fired` for async callers (keeps the caller's loop running)."""
        for _ in range(int(timeout * 100)):
            if self.fired >= n:
                return
            await asyncio.sleep(0.01)
        raise LocalTierError(f"fault proxy {self.name}: armed rule fired {self.fired} of {n} times")

    def heal(self) -> None:
        """Clear every fault: traffic flows, held replies are delivered, new connections are
        accepted, rules are disarmed; black-holed connections are closed (their bytes are lost)."""
        self._refusing = False
        self._delay = 0.0
        self._rules.clear()

        async def go() -> None:
            assert self._flowing is not None
            self._flowing.set()
            for c in list(self._conns):
                if c.black_hole:
                    c.abort()
                c.held = False

        self._call(go())

    # -- forwarding -------------------------------------------------------------------------------
    async def _handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self._refusing:
            cwriter.transport.abort()
            return
        try:
            sreader, swriter = await self._open_upstream(creader, cwriter)
        except (OSError, ConnectionError, asyncio.IncompleteReadError):
            cwriter.transport.abort()
            return
        conn = _Conn(cwriter, swriter)
        self._conns.add(conn)
        up = asyncio.ensure_future(self._pump(conn, creader, swriter, upstream=True))
        down = asyncio.ensure_future(self._pump(conn, sreader, cwriter, upstream=False))
        conn.tasks = [up, down]
        try:
            await asyncio.wait(conn.tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            conn.abort()
            for t in conn.tasks:
                t.cancel()
            self._conns.discard(conn)

    async def _open_upstream(
        self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port = self.upstream_host, self.upstream_port
        if self.tls is None:
            return await asyncio.open_connection(host, port)
        if self.protocol == "redis":  # the client side is TLS already (start_server ssl=...)
            return await asyncio.open_connection(
                host, port, ssl=self.tls.client_context(), server_hostname=host
            )
        # PostgreSQL: TLS is negotiated in-protocol with an 8-byte SSLRequest answered by 'S'.
        head = await creader.readexactly(8)
        if head == _GSSENC_REQUEST:  # libpq may ask for GSS encryption first: decline
            cwriter.write(b"N")
            await cwriter.drain()
            head = await creader.readexactly(8)
        sreader, swriter = await asyncio.open_connection(host, port)
        if head != _SSL_REQUEST:  # a plaintext client: let the server refuse it
            swriter.write(head)
            return sreader, swriter
        swriter.write(_SSL_REQUEST)
        await swriter.drain()
        if await sreader.readexactly(1) != b"S":
            swriter.transport.abort()
            raise ConnectionError("upstream refused TLS")
        await swriter.start_tls(self.tls.client_context(), server_hostname=host)
        cwriter.write(b"S")
        await cwriter.drain()
        await cwriter.start_tls(self.tls.server_context())
        return sreader, swriter

    def _match(self, conn: _Conn, data: bytes) -> _Rule | None:
        window = conn.tail + data
        conn.tail = window[-64:]
        for rule in self._rules:
            if rule.pattern in window:
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._rules.remove(rule)
                conn.tail = b""
                return rule
        return None

    async def _pump(
        self, conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        assert self._flowing is not None
        try:
            while True:
                data = await reader.read(_CHUNK)
                if not data:
                    return
                if conn.black_hole:
                    continue
                await self._flowing.wait()
                if self._delay:
                    await asyncio.sleep(self._delay)
                if upstream:
                    rule = self._match(conn, data) if self._rules else None
                    writer.write(data)
                    await writer.drain()
                    if rule is not None:
                        self.fired += 1
                        if rule.action == "drop":
                            conn.black_hole = True
                        else:
                            conn.after = rule
                    continue
                rule, conn.after = conn.after, None
                if rule is not None:
                    if rule.action == "cut":
                        conn.abort()
                        return
                    if rule.action == "delay":
                        await asyncio.sleep(rule.seconds)
                    elif rule.action == "hang":
                        conn.held = True
                while conn.held:
                    await asyncio.sleep(0.01)
                writer.write(data)
                await writer.drain()
        except (OSError, ConnectionError):
            return
