"""One redis-server (primary or replica) run from the local binary."""

from __future__ import annotations

import contextlib
import functools
import signal
from pathlib import Path

import redis

from commerce_db.localtier.errors import LocalTierError
from commerce_db.localtier.procs import ManagedProcess, RunAs, free_port, wait_until


class RedisNode:
    """redis-server on 127.0.0.1:<port>, no persistence (it is a cache), log under ``home``.

    ``replica_of`` makes it a replica of another node (``replicaof``); diskless sync with no delay
    so a replica is in sync within milliseconds of starting.
    """

    def __init__(
        self, name: str, home: Path, binary: Path, run_as: RunAs, replica_of: RedisNode | None = None
    ) -> None:
        self.name = name
        self.home = home
        self.binary = binary
        self.run_as = run_as
        self.replica_of = replica_of
        self.port: int | None = None
        self.proc: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> None:
        """Start (first start picks a free port; restarts keep it) and wait for PING."""
        if self.proc is not None and self.proc.alive():
            return
        attempts = 3 if self.port is None else 1
        for attempt in range(attempts):
            port = self.port if attempts == 1 and self.port is not None else free_port()
            argv = [
                str(self.binary),
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.home),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                "--daemonize",
                "no",
                "--logfile",
                "",
                "--maxclients",
                "10000",
                "--repl-diskless-sync",
                "yes",
                "--repl-diskless-sync-delay",
                "0",
                "--repl-diskless-load",
                "on-empty-db",
            ]
            if self.replica_of is not None:
                argv += ["--replicaof", "127.0.0.1", str(self.replica_of.port)]
            self.proc = ManagedProcess(
                f"redis {self.name} (port {port})",
                argv,
                cwd=self.home,
                log=self.home / "redis.log",
                run_as=self.run_as,
            )
            try:
                wait_until(
                    f"redis {self.name} to answer PING",
                    functools.partial(_ping, port),
                    timeout=timeout,
                    proc=self.proc,
                )
            except LocalTierError:
                in_use = "Address already in use" in self.proc.log_tail(4000)
                self.proc.stop()
                if in_use and attempt + 1 < attempts:
                    continue
                raise
            self.port = port
            return

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(signal.SIGTERM, timeout=10)

    def kill(self) -> None:
        """SIGKILL: the cache vanishes with everything in it."""
        if self.proc is not None:
            self.proc.kill_group()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive()

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port or 0, socket_timeout=5)

    def replication_info(self) -> dict[str, str]:
        with contextlib.closing(self.client()) as c:
            return {str(k): str(v) for k, v in c.info("replication").items()}

    def wait_replica_in_sync(self, timeout: float = 20.0) -> None:
        """Wait until this replica reports ``master_link_status:up``."""
        wait_until(
            f"redis {self.name} replication link",
            lambda: self.replication_info().get("master_link_status") == "up",
            timeout=timeout,
            proc=self.proc,
        )


def _ping(port: int) -> bool:
    try:
        with contextlib.closing(redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)) as c:
            return bool(c.ping())
    except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
        return False
