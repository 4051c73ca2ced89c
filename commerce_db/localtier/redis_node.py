"""One redis-server (primary or replica) run from the local binary."""

from __future__ import annotations

import contextlib
import functools
import signal
from pathlib import Path
from urllib.parse import quote

import redis

from commerce_db.localtier.errors import LocalTierError
from commerce_db.localtier.procs import ManagedProcess, RunAs, free_port, wait_until
from commerce_db.localtier.tls import TlsFiles


class RedisNode:
    """redis-server on 127.0.0.1:<port>, no persistence (it is a cache), log under ``home``.

    ``replica_of`` makes it a replica of another node (``replicaof``); diskless sync with no delay
    so a replica is in sync within milliseconds of starting.
    """

    def __init__(
        self,
        name: str,
        home: Path,
        binary: Path,
        run_as: RunAs,
        replica_of: RedisNode | None = None,
        *,
        tls: TlsFiles | None = None,
        password: str | None = None,
    ) -> None:
        self.name = name
        self.home = home
        self.binary = binary
        self.run_as = run_as
        self.replica_of = replica_of
        self.tls = tls
        """TLS files: the node then listens only on a TLS port (``tls-port``, ``port 0``)."""
        self.password = password
        """``requirepass`` (the stand-in for the ElastiCache AUTH token); kept in a 0600 config
        file, never on a command line."""
        self.port: int | None = None
        self.proc: ManagedProcess | None = None

    @property
    def url(self) -> str:
        """``rediss://:<password>@127.0.0.1:<port>/0?ssl_ca_certs=<ca>`` with TLS, else
        ``redis://127.0.0.1:<port>/0`` (plaintext mode)."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        if self.tls is None:
            return f"redis://{auth}127.0.0.1:{self.port}/0"
        return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls.ca_cert}"

    def _config_file(self) -> list[str]:
        """TLS and password settings in a 0600 file passed as the first argument."""
        lines = []
        if self.password:
            lines.append(f'requirepass "{self.password}"')
            if self.replica_of is not None and self.replica_of.password:
                lines.append(f'masterauth "{self.replica_of.password}"')
        if self.tls is not None:
            lines += [
                f"tls-cert-file {self.tls.server_cert}",
                f"tls-key-file {self.tls.server_key}",
                f"tls-ca-cert-file {self.tls.ca_cert}",
                "tls-auth-clients no",
                "tls-replication yes",
            ]
        if not lines:
            return []
        conf = self.home / "redis-auth.conf"
        conf.touch(mode=0o600)
        conf.write_text("\n".join(lines) + "\n")
        conf.chmod(0o600)
        self.run_as.chown(conf)
        return [str(conf)]

    def start(self, timeout: float = 20.0) -> None:
        """Start (first start picks a free port; restarts keep it) and wait for PING."""
        if self.proc is not None and self.proc.alive():
            return
        attempts = 3 if self.port is None else 1
        for attempt in range(attempts):
            port = self.port if attempts == 1 and self.port is not None else free_port()
            listen = (
                ["--port", "0", "--tls-port", str(port)] if self.tls is not None else ["--port", str(port)]
            )
            argv = [
                str(self.binary),
                *self._config_file(),
                *listen,
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
                    functools.partial(self._ping, port),
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

    def client(self, port: int | None = None, socket_timeout: float = 5) -> redis.Redis:
        kwargs: dict[str, object] = {}
        if self.tls is not None:
            kwargs.update(ssl=True, ssl_ca_certs=str(self.tls.ca_cert))
        return redis.Redis(
            host="127.0.0.1",
            port=port or self.port or 0,
            socket_timeout=socket_timeout,
            password=self.password,
            **kwargs,  # type: ignore[arg-type]
        )

    def _ping(self, port: int) -> bool:
        try:
            with contextlib.closing(self.client(port, socket_timeout=1)) as c:
                return bool(c.ping())
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            return False

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
