"""LocalTier: the whole data tier (PostgreSQL primary + hot standby, PgBouncer, Redis primary +
replica) on free loopback ports in a temp dir, started from local binaries, with fault operations.

Typical use::

    with LocalTier() as tier:                       # ~2-3 s; everything stopped on exit
        db = tier.create_database("shop_test")      # -> DatabaseDSNs(primary, standby, pgbouncer)
        tier.pause_replay()                         # deterministic replication lag
        tier.kill_primary(); tier.promote_standby() # failover

All methods are synchronous (subprocess + short polls). From async code call the ``a``-prefixed
variants or wrap in ``asyncio.to_thread`` so the event loop keeps running during an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from commerce_db.localtier import registry
from commerce_db.localtier.binaries import Binaries, find_binaries
from commerce_db.localtier.errors import LocalTierError
from commerce_db.localtier.faultproxy import FaultProxy
from commerce_db.localtier.pgbouncer import PgBouncerNode
from commerce_db.localtier.postgres import (
    APP_DB,
    APP_USER,
    READER_USER,
    REPLICATION_USER,
    SUPERUSER,
    WRITER_USER,
    Credentials,
    PostgresNode,
    cluster_template,
    copy_cluster,
)
from commerce_db.localtier.procs import RunAs, wait_until
from commerce_db.localtier.reaper import reap_orphans, write_owner
from commerce_db.localtier.redis_node import RedisNode
from commerce_db.localtier.tls import TlsFiles, make_throwaway_ca

_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_SLOT = "standby_1"


def _redact(dsn: str | None) -> str | None:
    return None if dsn is None else re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", dsn)


def _check_traversable(path: Path, run_as: RunAs) -> None:
    """PostgreSQL runs as another user when we are root: it must be able to reach its data dir."""
    if run_as.uid is None:
        return
    for parent in (path.resolve(), *path.resolve().parents):
        st = parent.stat()
        if st.st_uid != run_as.uid and not st.st_mode & 0o001:
            raise LocalTierError(
                f"{parent} is not traversable by the {run_as.user!r} user that runs PostgreSQL "
                f"(mode {oct(st.st_mode & 0o777)}); use a base_dir whose parents are o+x, e.g. /tmp"
            )


@dataclass(frozen=True)
class DatabaseDSNs:
    """Connection URLs (as role ``app``) for one database on every PostgreSQL endpoint of a tier.

    ``standby`` / ``pgbouncer`` are None when the tier has no such endpoint (external servers, or
    after the standby was promoted).
    """

    name: str
    primary: str
    standby: str | None
    pgbouncer: str | None

    def __repr__(self) -> str:
        return (
            f"DatabaseDSNs(name={self.name!r}, primary={_redact(self.primary)!r}, "
            f"standby={_redact(self.standby)!r}, pgbouncer={_redact(self.pgbouncer)!r})"
        )


class LocalTier:
    """Throwaway servers for tests, the demo and the benchmarks.

    Args (all keyword-only, defaults in brackets):
        standby: start a streaming hot standby of the primary [True].
        pgbouncer: start PgBouncer (transaction mode) in front of the primary [True].
        redis: start a Redis primary [True].
        redis_replica: also start a Redis replica of it [True].
        pgbouncer_pool_size: PgBouncer ``default_pool_size`` [20].
        pgbouncer_max_client_conn: PgBouncer ``max_client_conn`` [1000].
        base_dir: parent of the temp dir [system temp dir].
        keep: keep the temp dir (logs, data) after stop() [False, or env ``LOCALTIER_KEEP=1``].
        synchronous_standby: commit waits until the standby has flushed the WAL
            (``synchronous_standby_names = '*'``), like RDS Multi-AZ; a promoted standby then has
            every acknowledged commit [False: asynchronous, like a read replica].
        transport: ``"tls"``: every TCP listener speaks TLS only, with a throwaway CA made for
            this run (PostgreSQL ``hostssl`` + SCRAM, PgBouncer client and server TLS, Redis
            ``tls-port`` only with ``requirepass``); DSNs carry ``sslmode=verify-full`` and the CA
            path, the Redis URL is ``rediss://`` with the password and CA, as in production.
            ``"plaintext"``: no TLS and no Redis password, for the rare client or test that needs
            it (say why where you use it) ["tls"].
        replication_proxy: the standby streams WAL through a :class:`FaultProxy`, so
            :meth:`hang_wal_stream` can stall its WAL receiver while it still reports
            ``streaming`` [False].

    Fault proxies (see :mod:`commerce_db.localtier.faultproxy`): ``tier.proxy("pgbouncer")``
    starts (once) a TCP proxy in front of that server (``primary``, ``standby``, ``pgbouncer``,
    ``redis``); ``tier.proxied_dsns()`` / ``tier.proxied_redis_url`` give URLs through them. Then
    ``tier.proxy("pgbouncer").arm(b"COMMIT", "cut")`` drops the connection right after a COMMIT
    was forwarded, ``.hang()`` / ``.cut()`` / ``.delay(s)`` / ``.refuse()`` / ``.heal()``.
    """

    supports_faults = True

    def __init__(
        self,
        *,
        standby: bool = True,
        pgbouncer: bool = True,
        redis: bool = True,
        redis_replica: bool = True,
        pgbouncer_pool_size: int = 20,
        pgbouncer_max_client_conn: int = 1000,
        base_dir: str | os.PathLike[str] | None = None,
        keep: bool | None = None,
        synchronous_standby: bool = False,
        replication_proxy: bool = False,
        transport: str = "tls",
    ) -> None:
        if transport not in ("tls", "plaintext"):
            raise ValueError(f"transport must be 'tls' or 'plaintext', got {transport!r}")
        self.transport = transport
        self.tls: TlsFiles | None = None
        """The tier's CA and server certificate (None in plaintext mode or before start)."""
        self._redis_password = secrets.token_urlsafe(24) if transport == "tls" else None
        self._want_standby = standby
        self._want_pgbouncer = pgbouncer
        self._want_redis = redis
        self._want_redis_replica = redis and redis_replica
        self._synchronous = synchronous_standby and standby
        self._pool_size = pgbouncer_pool_size
        self._max_client_conn = pgbouncer_max_client_conn
        self._base_dir = base_dir
        self.keep = keep if keep is not None else os.environ.get("LOCALTIER_KEEP") == "1"
        self._lock = threading.RLock()
        self.workdir: Path | None = None
        self.bins: Binaries | None = None
        self._run_as: RunAs | None = None
        self._creds: Credentials | None = None
        self._primary: PostgresNode | None = None
        self._standby: PostgresNode | None = None
        self._retired: list[PostgresNode] = []  # former primaries after a promotion
        self._pgbouncer: PgBouncerNode | None = None
        self._redis: RedisNode | None = None
        self._redis_replica: RedisNode | None = None
        self.started_in: float | None = None
        self._want_replication_proxy = replication_proxy and standby
        self._proxies: dict[str, FaultProxy] = {}
        self._saved_conninfo: str | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> LocalTier:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> LocalTier:
        """Start every configured server and wait until each is usable. Returns self.

        On any failure everything already started is stopped before the error propagates.
        """
        t0 = time.monotonic()
        with self._lock:
            if self.workdir is not None:
                raise LocalTierError("this LocalTier was already started; create a new one")
            self.bins = find_binaries()
            if self.transport == "tls" and self.bins.pg_has_openssl() is False:
                raise LocalTierError(
                    f"the PostgreSQL in {self.bins.pg_bindir} was built without OpenSSL and cannot "
                    "serve TLS (the local tier's default transport): point $PG_BINDIR at a build "
                    "with OpenSSL (Debian's postgresql packages), or pass transport='plaintext'"
                )
            self._run_as = RunAs()
            reap_orphans(str(self._base_dir) if self._base_dir else None)
            _check_traversable(Path(self._base_dir or tempfile.gettempdir()), self._run_as)
            self.workdir = Path(tempfile.mkdtemp(prefix="cdb-tier-", dir=self._base_dir))
            self.workdir.chmod(0o755)  # the postgres user must traverse it when we run as root
            write_owner(self.workdir)
            registry.register(self)
            try:
                if self.transport == "tls":
                    self.tls = make_throwaway_ca(self.workdir / "tls", self._run_as)
                with ThreadPoolExecutor(max_workers=3) as pool:
                    pg = pool.submit(self._start_postgres)
                    rd = pool.submit(self._start_redis_nodes) if self._want_redis else None
                    pg.result()
                    if rd is not None:
                        rd.result()
            except BaseException:
                self.stop()
                raise
        self.started_in = time.monotonic() - t0
        return self

    def _home(self, name: str) -> Path:
        assert self.workdir is not None and self._run_as is not None
        home = self.workdir / name
        home.mkdir(mode=0o755)
        self._run_as.chown(home)
        return home

    def _start_postgres(self) -> None:
        assert self.bins is not None and self._run_as is not None
        template, self._creds = cluster_template(self.bins, self._run_as)
        home = self._home("primary")
        copy_cluster(template, home / "data", self._run_as)
        self._primary = PostgresNode("primary", home, self.bins, self._run_as, self._creds, tls=self.tls)
        if self.tls is not None:
            self._primary.enable_tls()
        self._primary.start()
        with ThreadPoolExecutor(max_workers=2) as pool:
            futs = []
            if self._want_pgbouncer:
                futs.append(pool.submit(self._start_pgbouncer))
            if self._want_standby:
                futs.append(pool.submit(self._start_standby))
            for f in futs:
                f.result()

    def _start_pgbouncer(self) -> None:
        assert self.bins and self._run_as and self._creds and self._primary and self._primary.port
        self._pgbouncer = PgBouncerNode(
            self._home("pgbouncer"),
            self.bins,
            self._run_as,
            self._creds,
            self._primary.port,
            max_client_conn=self._max_client_conn,
            default_pool_size=self._pool_size,
            tls=self.tls,
        )
        self._pgbouncer.start()

    def _start_standby(self) -> None:
        assert self.bins and self._run_as and self._creds and self._primary and self._primary.port
        home = self._home("standby")
        # -R writes primary_conninfo (password included) + standby.signal; the slot keeps WAL for it.
        self._run_as.run(
            [
                self.bins.pg("pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self._primary.port),
                "-U",
                REPLICATION_USER,
                "-D",
                str(home / "data"),
                "-R",
                "-X",
                "stream",
                "-C",
                "-S",
                _SLOT,
                "--checkpoint=fast",
                "--no-sync",
            ],
            cwd=home,
            env={
                "PGPASSWORD": self._creds.replicator,
                **(
                    {
                        "PGSSLMODE": "verify-full",
                        "PGSSLROOTCERT": str(self.tls.ca_cert),
                        # No client certificate: without these libpq probes ~/.postgresql of a
                        # HOME the postgres user may not read (root's).
                        "PGSSLCERT": str(self.tls.ca_cert.parent / "no-client.crt"),
                        "PGSSLKEY": str(self.tls.ca_cert.parent / "no-client.key"),
                    }
                    if self.tls is not None
                    else {}
                ),
            },
            timeout=120,
        )
        if self._want_replication_proxy:
            proxy = FaultProxy("replication", self._primary.port).start()
            self._proxies["replication"] = proxy
            auto = home / "data" / "postgresql.auto.conf"
            auto.write_text(
                re.sub(r"port=\d+", f"port={proxy.port}", auto.read_text())
            )  # written in place: keeps the postgres user's ownership
        self._standby = PostgresNode("standby", home, self.bins, self._run_as, self._creds, tls=self.tls)
        self._standby.start()
        primary = self._primary
        wait_until(
            "the standby to stream from the primary",
            lambda: (
                primary.psql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
                not in ("", "0")
            ),
            timeout=30,
        )
        if self._synchronous:
            # Only the primary gets it (the standby's copy predates it), so after a promotion the
            # new primary does not wait for a standby it no longer has.
            primary.psql("ALTER SYSTEM SET synchronous_standby_names = '*'")
            primary.psql("SELECT pg_reload_conf()")
            wait_until(
                "the standby to become synchronous",
                lambda: (
                    primary.psql("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")
                    not in ("", "0")
                ),
                timeout=30,
            )

    def _start_redis_nodes(self) -> None:
        assert self.bins is not None and self._run_as is not None
        self._redis = RedisNode(
            "primary",
            self._home("redis"),
            self.bins.redis_server,
            self._run_as,
            tls=self.tls,
            password=self._redis_password,
        )
        self._redis.start()
        if self._want_redis_replica:
            self._redis_replica = RedisNode(
                "replica",
                self._home("redis-replica"),
                self.bins.redis_server,
                self._run_as,
                replica_of=self._redis,
                tls=self.tls,
                password=self._redis_password,
            )
            self._redis_replica.start()
            self._redis_replica.wait_replica_in_sync()

    def stop(self) -> None:
        """Stop every process this tier started (proxy first, then databases, then Redis) and remove
        the temp dir unless ``keep``. Idempotent; never raises for a node that is already gone."""
        with self._lock:
            for proxy in self._proxies.values():
                with contextlib.suppress(Exception):
                    proxy.stop()
            self._proxies.clear()
            nodes: list[Any] = [
                self._pgbouncer,
                self._standby,
                self._primary,
                *self._retired,
                self._redis_replica,
                self._redis,
            ]
            for node in nodes:
                if node is None:
                    continue
                try:
                    node.stop()
                except Exception:  # half-started or already dead: make sure it is gone
                    kill = getattr(node, "kill", None)
                    if kill is not None:
                        kill()
            registry.unregister(self)
            if self.workdir is not None and not self.keep:
                shutil.rmtree(self.workdir, ignore_errors=True)

    # -- node access -----------------------------------------------------------------------------
    def _need(self, node: Any, what: str) -> Any:
        if node is None:
            raise LocalTierError(f"this tier has no {what} (not configured, not started, or promoted)")
        return node

    @property
    def primary(self) -> PostgresNode:
        """The current primary (the former standby after :meth:`promote_standby`)."""
        return self._need(self._primary, "PostgreSQL primary")  # type: ignore[no-any-return]

    @property
    def standby(self) -> PostgresNode:
        return self._need(self._standby, "PostgreSQL standby")  # type: ignore[no-any-return]

    @property
    def pgbouncer(self) -> PgBouncerNode:
        return self._need(self._pgbouncer, "PgBouncer")  # type: ignore[no-any-return]

    @property
    def redis(self) -> RedisNode:
        return self._need(self._redis, "Redis primary")  # type: ignore[no-any-return]

    @property
    def redis_replica(self) -> RedisNode:
        return self._need(self._redis_replica, "Redis replica")  # type: ignore[no-any-return]

    @property
    def has_standby(self) -> bool:
        return self._standby is not None

    @property
    def has_pgbouncer(self) -> bool:
        return self._pgbouncer is not None

    # -- DSNs (role ``app``, database ``app`` unless stated) ---------------------------------------
    @property
    def primary_dsn(self) -> str:
        return self.primary.dsn()

    @property
    def standby_dsn(self) -> str:
        return self.standby.dsn()

    @property
    def pgbouncer_dsn(self) -> str:
        return self.pgbouncer.dsn(APP_DB)

    @property
    def redis_url(self) -> str:
        return self.redis.url

    @property
    def redis_replica_url(self) -> str:
        return self.redis_replica.url

    @property
    def primary_admin_dsn(self) -> str:
        """Superuser URL of the primary (database ``postgres``)."""
        return self.primary.dsn("postgres", user=SUPERUSER)

    @property
    def standby_admin_dsn(self) -> str:
        return self.standby.dsn("postgres", user=SUPERUSER)

    @property
    def pgbouncer_admin_dsn(self) -> str:
        """Admin console URL (database ``pgbouncer``; simple query protocol only, e.g. psql)."""
        pgb = self.pgbouncer
        return f"postgresql://pgbouncer_admin:{pgb.creds.pgbouncer_admin}@127.0.0.1:{pgb.port}/pgbouncer"

    @property
    def app_user(self) -> str:
        return APP_USER

    def dsns(self, db: str = APP_DB, *, role: str = "owner") -> DatabaseDSNs:
        """DSNs of database db on the current primary, standby and PgBouncer.

        :param role: ``"owner"`` (``app``: owns the schema, runs migrations), ``"writer"``
            (``app_writer``: rows only, no DDL) or ``"reader"`` (``app_reader``: read-only), the
            per-application roles a service gets in production. Default: ``"owner"``.
        """
        users = {"owner": APP_USER, "writer": WRITER_USER, "reader": READER_USER}
        if role not in users:
            raise ValueError(f"role must be one of {sorted(users)}, got {role!r}")
        user = users[role]
        return DatabaseDSNs(
            name=db,
            primary=self.primary.dsn(db, user=user),
            standby=self._standby.dsn(db, user=user) if self._standby is not None else None,
            pgbouncer=self._pgbouncer.dsn(db, user=user) if self._pgbouncer is not None else None,
        )

    # -- databases -------------------------------------------------------------------------------
    def create_database(self, name: str, timeout: float = 30.0) -> DatabaseDSNs:
        """Create database name (owner ``app``, pg_stat_statements installed) and wait until the
        standby has replayed it. Name: lowercase letters, digits, ``_``; at most 63 chars."""
        if not _DB_NAME.match(name):
            raise ValueError(f"database name {name!r} must match {_DB_NAME.pattern}")
        with self._lock:
            self.primary.psql(f'CREATE DATABASE "{name}" OWNER {APP_USER}')
            if self._standby is not None:
                sb = self._standby
                wait_until(
                    f"database {name} on the standby",
                    lambda: sb.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") == "1",
                    timeout=timeout,
                    proc=sb.proc,
                )
            return self.dsns(name)

    def drop_database(self, name: str) -> None:
        """Drop database name, terminating its sessions (PgBouncer's and the standby's too)."""
        if not _DB_NAME.match(name):
            raise ValueError(f"database name {name!r} must match {_DB_NAME.pattern}")
        with self._lock:
            self.primary.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # -- PostgreSQL faults -----------------------------------------------------------------------
    def kill_primary(self) -> None:
        """SIGKILL the primary's postmaster and backends (no shutdown checkpoint: a crash)."""
        with self._lock:
            self.primary.kill()

    def stop_primary(self, mode: str = "fast") -> None:
        """Shut the primary down: ``smart`` | ``fast`` | ``immediate`` [fast]."""
        with self._lock:
            self.primary.stop(mode)

    def start_primary(self) -> None:
        """Start the primary again on the same port (runs crash recovery after a kill)."""
        with self._lock:
            self.primary.start()

    def restart_primary(self, mode: str = "fast") -> None:
        with self._lock:
            self.primary.stop(mode)
            self.primary.start()

    def promote_standby(self, *, repoint_pgbouncer: bool = True, timeout: float = 60.0) -> str:
        """Promote the standby to primary and return its writer DSN (database ``app``).

        Afterwards :attr:`primary` is the promoted node, the tier has no standby, and (by default)
        PgBouncer sends new server connections to the new primary, as RDS Proxy follows a failover.
        The old primary is not stopped here (kill it first for a realistic failover).
        """
        with self._lock:
            sb = self.standby
            sb.psql(f"SELECT pg_promote(true, {int(timeout)})", timeout=timeout + 5)
            wait_until(
                "the promoted standby to leave recovery",
                lambda: not sb.in_recovery(),
                timeout=timeout,
                proc=sb.proc,
            )
            if self._primary is not None:
                self._retired.append(self._primary)
            self._primary, self._standby = sb, None
            if repoint_pgbouncer and self._pgbouncer is not None and self._pgbouncer.alive():
                assert sb.port is not None
                self._pgbouncer.repoint(sb.port)
            return sb.dsn()

    def pause_replay(self, timeout: float = 30.0) -> None:
        """Pause WAL replay on the standby: it keeps receiving WAL but shows no new commits, which
        gives real, deterministic replication lag until :meth:`resume_replay`."""
        with self._lock:
            sb = self.standby
            sb.psql("SELECT pg_wal_replay_pause()")
            wait_until(
                "standby replay to pause",
                lambda: sb.psql("SELECT pg_get_wal_replay_pause_state()") == "paused",
                timeout=timeout,
                proc=sb.proc,
            )

    def resume_replay(self) -> None:
        with self._lock:
            self.standby.psql("SELECT pg_wal_replay_resume()")

    def replay_lsn(self) -> str:
        """The standby's last replayed WAL position (``pg_last_wal_replay_lsn()``), e.g. ``0/3000148``."""
        return self.standby.psql("SELECT pg_last_wal_replay_lsn()")

    def primary_lsn(self) -> str:
        """The primary's current WAL write position (``pg_current_wal_lsn()``)."""
        return self.primary.psql("SELECT pg_current_wal_lsn()")

    def wait_for_standby(self, lsn: str | None = None, timeout: float = 30.0) -> None:
        """Wait until the standby has replayed lsn [the primary's current position]."""
        target = lsn or self.primary_lsn()
        sb = self.standby
        wait_until(
            f"standby replay to reach {target}",
            lambda: sb.psql(f"SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '{target}') >= 0") == "t",
            timeout=timeout,
            proc=sb.proc,
        )

    def replication_lag(self) -> dict[str, float]:
        """Replay lag seen by the primary (``pg_stat_replication``): ``bytes`` and ``seconds``
        (the latter NULL→0 when idle). Zeros when no standby is connected."""
        out = self.primary.psql(
            "SELECT COALESCE(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0), "
            "COALESCE(max(EXTRACT(epoch FROM replay_lag)), 0) FROM pg_stat_replication"
        )
        b, s = out.split("|")
        return {"bytes": float(b), "seconds": float(s)}

    def detach_wal_receiver(self, timeout: float = 30.0) -> None:
        """Stop the standby's WAL receiver (``primary_conninfo = ''``): the standby stays up,
        serves reads and reports no pending WAL, but receives nothing until
        :meth:`attach_wal_receiver`."""
        with self._lock:
            sb = self.standby
            current = sb.psql("SHOW primary_conninfo")
            if current:
                self._saved_conninfo = current
            sb.psql("ALTER SYSTEM SET primary_conninfo = ''")
            sb.psql("SELECT pg_reload_conf()")
            wait_until(
                "the WAL receiver to stop",
                lambda: sb.psql("SELECT count(*) FROM pg_stat_wal_receiver") == "0",
                timeout=timeout,
                proc=sb.proc,
            )

    def attach_wal_receiver(self) -> None:
        """Undo :meth:`detach_wal_receiver` (the receiver reconnects within a few seconds)."""
        with self._lock:
            sb = self.standby
            saved = self._saved_conninfo
            if saved is None:
                return
            quoted = saved.replace("'", "''")
            sb.psql(f"ALTER SYSTEM SET primary_conninfo = '{quoted}'")
            sb.psql("SELECT pg_reload_conf()")

    def hang_wal_stream(self) -> None:
        """Stall the replication link (needs ``replication_proxy=True``): the WAL receiver stays
        connected and ``streaming`` but gets no WAL until :meth:`resume_wal_stream`."""
        self._replication_proxy().hang()

    def resume_wal_stream(self) -> None:
        self._replication_proxy().heal()

    def _replication_proxy(self) -> FaultProxy:
        proxy = self._proxies.get("replication")
        if proxy is None:
            raise LocalTierError("this tier streams WAL directly; create it with replication_proxy=True")
        return proxy

    # -- fault proxies ---------------------------------------------------------------------------
    def proxy(self, target: str) -> FaultProxy:
        """The :class:`FaultProxy` in front of ``target`` (``primary``, ``standby``,
        ``pgbouncer``, ``redis``), started on first use. Its upstream is the server's current
        port (a proxy made for ``primary`` before a promotion keeps pointing at the old one)."""
        with self._lock:
            proxy = self._proxies.get(target)
            if proxy is None:
                nodes = {
                    "primary": self._primary,
                    "standby": self._standby,
                    "pgbouncer": self._pgbouncer,
                    "redis": self._redis,
                }
                if target not in nodes:
                    raise ValueError(f"proxy target must be one of {sorted(nodes)}, got {target!r}")
                node = self._need(nodes[target], target)
                proxy = FaultProxy(
                    target, node.port, protocol="redis" if target == "redis" else "postgres", tls=self.tls
                ).start()
                self._proxies[target] = proxy
            return proxy

    def proxied_dsns(self, db: str = APP_DB) -> DatabaseDSNs:
        """Like :meth:`dsns`, every URL through the endpoint's fault proxy."""
        plain = self.dsns(db)
        return DatabaseDSNs(
            name=db,
            primary=self.proxy("primary").url(plain.primary),
            standby=self.proxy("standby").url(plain.standby) if plain.standby else None,
            pgbouncer=self.proxy("pgbouncer").url(plain.pgbouncer) if plain.pgbouncer else None,
        )

    @property
    def proxied_redis_url(self) -> str:
        """The Redis primary's URL through its fault proxy."""
        return self.proxy("redis").url(self.redis_url)

    def heal_all(self) -> None:
        """Clear every fault on every proxy (replication included)."""
        for proxy in list(self._proxies.values()):
            proxy.heal()

    # -- Redis faults ----------------------------------------------------------------------------
    def kill_redis(self) -> None:
        """SIGKILL the Redis primary (its data is gone; the replica loses its link)."""
        with self._lock:
            self.redis.kill()

    def start_redis(self) -> None:
        """Start the Redis primary again on the same port (empty: no persistence)."""
        with self._lock:
            self.redis.start()

    # -- PgBouncer faults ------------------------------------------------------------------------
    def restart_pgbouncer(self) -> None:
        """Stop PgBouncer (SIGTERM: clients are disconnected) and start it on the same port."""
        with self._lock:
            self.pgbouncer.stop()
            self.pgbouncer.start()

    def pgbouncer_show(self, what: str = "POOLS") -> list[dict[str, str]]:
        """``SHOW <what>`` on the admin console (POOLS, STATS, SERVERS, CLIENTS...) as dicts."""
        if not re.fullmatch(r"[A-Za-z_]+", what):
            raise ValueError(f"SHOW target must be a single word, got {what!r}")
        return self.pgbouncer.admin(f"SHOW {what}")

    # -- async wrappers: keep the event loop running while a server starts or fails over -------
    async def akill_primary(self) -> None:
        await asyncio.to_thread(self.kill_primary)

    async def astart_primary(self) -> None:
        await asyncio.to_thread(self.start_primary)

    async def arestart_primary(self, mode: str = "fast") -> None:
        await asyncio.to_thread(self.restart_primary, mode)

    async def apromote_standby(self, *, repoint_pgbouncer: bool = True) -> str:
        return await asyncio.to_thread(lambda: self.promote_standby(repoint_pgbouncer=repoint_pgbouncer))

    async def akill_redis(self) -> None:
        await asyncio.to_thread(self.kill_redis)

    async def astart_redis(self) -> None:
        await asyncio.to_thread(self.start_redis)

    async def arestart_pgbouncer(self) -> None:
        await asyncio.to_thread(self.restart_pgbouncer)

    async def acreate_database(self, name: str) -> DatabaseDSNs:
        return await asyncio.to_thread(self.create_database, name)

    async def areplication_lag(self) -> dict[str, float]:
        return await asyncio.to_thread(self.replication_lag)
