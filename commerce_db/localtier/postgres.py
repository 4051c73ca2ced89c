"""One PostgreSQL server (primary or hot standby) run from local binaries."""

from __future__ import annotations

import atexit
import functools
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from commerce_db.localtier.binaries import Binaries
from commerce_db.localtier.errors import LocalTierError
from commerce_db.localtier.procs import ManagedProcess, RunAs, free_port, wait_until
from commerce_db.localtier.reaper import write_owner
from commerce_db.localtier.tls import TlsFiles

SUPERUSER = "postgres"
APP_USER = "app"
"""The schema owner (runs migrations; owns every database the tier creates)."""
WRITER_USER = "app_writer"
"""Per-application writer role: reads and writes rows, no DDL (what a service gets in production)."""
READER_USER = "app_reader"
"""Per-application read-only role (replica reads)."""
APP_DB = "app"
REPLICATION_USER = "replicator"

# Tuned for tests on small machines, but durable: fsync stays on because we test crash safety.
_POSTGRESQL_CONF = """
listen_addresses = '127.0.0.1'
# The unix socket (trust auth, the tier's own superuser access) is for the server's OS user only:
# any other local user would otherwise get a passwordless superuser (review of issue 17).
unix_socket_permissions = 0700
max_connections = 200
shared_buffers = 64MB
fsync = on
synchronous_commit = on
full_page_writes = on
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = 128MB
hot_standby = on
hot_standby_feedback = on
# Standby: report replay position every second (lag figures) and reconnect fast after a restart.
wal_receiver_status_interval = 1s
wal_retrieve_retry_interval = 500ms
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = top
dynamic_shared_memory_type = mmap
checkpoint_timeout = 5min
max_wal_size = 512MB
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
log_checkpoints = off
"""

_PG_HBA = """
local all all trust
host replication replicator 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
"""

# TLS only over TCP (the local rds.force_ssl = 1): no "host" lines, so plaintext finds no entry.
_PG_HBA_TLS = """
local all all trust
hostssl replication replicator 127.0.0.1/32 scram-sha-256
hostssl all all 127.0.0.1/32 scram-sha-256
"""


_ROLE_GRANTS = f"""
ALTER DEFAULT PRIVILEGES FOR ROLE {APP_USER} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {WRITER_USER};
ALTER DEFAULT PRIVILEGES FOR ROLE {APP_USER} GRANT USAGE, SELECT ON SEQUENCES TO {WRITER_USER};
ALTER DEFAULT PRIVILEGES FOR ROLE {APP_USER} GRANT SELECT ON TABLES TO {READER_USER};
"""


def tls_query(tls: TlsFiles | None) -> str:
    """The DSN query that makes libpq / asyncpg verify the server against the tier's CA."""
    return "" if tls is None else f"?sslmode=verify-full&sslrootcert={tls.ca_cert}"


STOP_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}


@dataclass(frozen=True)
class Credentials:
    """Generated passwords of the roles every local cluster has (never logged)."""

    superuser: str
    app: str
    replicator: str
    pgbouncer_admin: str
    writer: str
    reader: str

    @classmethod
    def generate(cls) -> Credentials:
        return cls(*(secrets.token_urlsafe(18) for _ in range(6)))

    def password_of(self, user: str) -> str:
        """The password of one of the tier's login roles."""
        by_user = {
            SUPERUSER: self.superuser,
            APP_USER: self.app,
            WRITER_USER: self.writer,
            READER_USER: self.reader,
        }
        if user not in by_user:
            raise ValueError(f"user must be one of {sorted(by_user)}, got {user!r}")
        return by_user[user]

    def __repr__(self) -> str:  # keep passwords out of reprs, logs and tracebacks
        return "Credentials(<redacted>)"


class PostgresNode:
    """A postmaster on 127.0.0.1:<port> with its data dir, unix socket and log under ``home``."""

    def __init__(
        self,
        name: str,
        home: Path,
        bins: Binaries,
        run_as: RunAs,
        creds: Credentials,
        tls: TlsFiles | None = None,
    ) -> None:
        self.name = name
        self.home = home
        self.datadir = home / "data"
        self.bins = bins
        self.run_as = run_as
        self.creds = creds
        self.tls = tls
        """TLS files when the node only accepts TLS on TCP (``hostssl``), else None (plaintext)."""
        self.port: int | None = None
        self.proc: ManagedProcess | None = None

    def enable_tls(self) -> None:
        """Configure a stopped, copied cluster for TLS only: ``ssl = on`` with the tier's server
        certificate, and ``hostssl`` lines only in ``pg_hba.conf`` (the local equivalent of
        ``rds.force_ssl = 1``); a plaintext TCP connection finds no ``pg_hba.conf`` entry."""
        if self.tls is None:
            raise LocalTierError(f"postgres {self.name} has no TLS files")
        (self.datadir / "localtier_tls.conf").write_text(
            f"ssl = on\nssl_cert_file = '{self.tls.server_cert}'\nssl_key_file = '{self.tls.server_key}'\n"
            "ssl_min_protocol_version = 'TLSv1.2'\n"
        )
        with open(self.datadir / "postgresql.conf", "a") as fh:
            fh.write("\ninclude 'localtier_tls.conf'\n")
        (self.datadir / "pg_hba.conf").write_text(_PG_HBA_TLS)
        self.run_as.chown(self.datadir)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        """Start the postmaster (first start picks a free port; restarts keep it) and wait for it."""
        if self.proc is not None and self.proc.alive():
            return
        attempts = 3 if self.port is None else 1
        for attempt in range(attempts):
            port = self.port if attempts == 1 and self.port is not None else free_port()
            self.proc = ManagedProcess(
                f"postgres {self.name} (port {port})",
                [self.bins.pg("postgres"), "-D", str(self.datadir), "-p", str(port), "-k", str(self.home)],
                cwd=self.home,
                log=self.home / "postgres.log",
                run_as=self.run_as,
            )
            try:
                wait_until(
                    f"postgres {self.name} to accept connections",
                    functools.partial(self._ready, port),
                    timeout=timeout,
                    proc=self.proc,
                )
            except LocalTierError:
                in_use = "already in use" in self.proc.log_tail(4000)
                self.proc.stop()
                if in_use and attempt + 1 < attempts:
                    continue  # lost a port race with another process: try another port
                raise
            self.port = port
            return

    def _ready(self, port: int) -> bool:
        res = subprocess.run(
            [
                self.bins.pg("pg_isready"),
                "-q",
                "-h",
                str(self.home),
                "-p",
                str(port),
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
            ],
            capture_output=True,
            check=False,
        )
        return res.returncode == 0

    def stop(self, mode: str = "fast", timeout: float = 30.0) -> None:
        """Shut down: ``smart`` (wait for clients), ``fast`` (roll back, clean) or ``immediate``
        (no checkpoint; crash recovery at next start). Escalates to SIGKILL after timeout."""
        if mode not in STOP_SIGNALS:
            raise ValueError(f"stop mode must be one of {sorted(STOP_SIGNALS)}, got {mode!r}")
        if self.proc is not None:
            self.proc.stop(STOP_SIGNALS[mode], timeout=timeout)

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend: what a host crash looks like to clients."""
        if self.proc is not None:
            self.proc.kill_group()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive()

    # -- queries (superuser over the unix socket: no password on any command line) -------------
    def psql(self, sql: str, *, db: str = "postgres", timeout: float = 60.0) -> str:
        """Run SQL (fed on stdin) as the superuser and return unaligned, tuples-only output."""
        if self.port is None:
            raise LocalTierError(f"postgres {self.name} was never started")
        res = self.run_as.run(
            [
                self.bins.pg("psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.home),
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-d",
                db,
                "-f",
                "-",
            ],
            cwd=self.home,
            input=sql,
            timeout=timeout,
        )
        return res.stdout.strip()

    def dsn(self, db: str = APP_DB, *, user: str = APP_USER) -> str:
        """``postgresql://`` URL for db as ``app`` (default) or the superuser, with its password."""
        password = self.creds.password_of(user)
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{db}{tls_query(self.tls)}"

    def in_recovery(self) -> bool:
        return self.psql("SELECT pg_is_in_recovery()") == "t"


# -- cluster template ----------------------------------------------------------------------------
# initdb plus role setup costs ~1.5 s; do it once per process and copy the stopped cluster for
# every further tier (fault tests start one per test).
_template_lock = threading.Lock()
_templates: dict[tuple[str, int | None], tuple[Path, Credentials]] = {}


def _initdb(bins: Binaries, run_as: RunAs, datadir: Path, pwfile: Path) -> None:
    base = [
        bins.pg("initdb"),
        "-D",
        str(datadir),
        "-U",
        SUPERUSER,
        f"--pwfile={pwfile}",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "-E",
        "UTF8",
        "--no-sync",
    ]
    try:
        run_as.run([*base, "--locale=C.UTF-8"], cwd=datadir.parent, timeout=120)
    except LocalTierError:
        shutil.rmtree(datadir, ignore_errors=True)
        run_as.run([*base, "--no-locale"], cwd=datadir.parent, timeout=120)


def cluster_template(bins: Binaries, run_as: RunAs) -> tuple[Path, Credentials]:
    """A stopped, configured cluster (roles ``app``/``replicator``, database ``app``) to copy.

    Built once per process in its own temp dir, removed at interpreter exit.
    """
    key = (str(bins.pg_bindir), run_as.uid)
    with _template_lock:
        if key in _templates and (_templates[key][0] / "PG_VERSION").exists():
            return _templates[key]
        creds = Credentials.generate()
        home = Path(tempfile.mkdtemp(prefix="cdb-pgtemplate-"))
        atexit.register(shutil.rmtree, home, True)
        home.chmod(0o755)
        write_owner(home)  # reaped by a later process if this one dies without its atexit hooks
        run_as.chown(home)
        pwfile = home / "pw"
        pwfile.write_text(creds.superuser + "\n")
        pwfile.chmod(0o600)
        run_as.chown(pwfile)
        node = PostgresNode("template", home, bins, run_as, creds)
        _initdb(bins, run_as, node.datadir, pwfile)
        pwfile.unlink()
        (node.datadir / "localtier.conf").write_text(_POSTGRESQL_CONF)
        with open(node.datadir / "postgresql.conf", "a") as fh:
            fh.write("\ninclude 'localtier.conf'\n")
        (node.datadir / "pg_hba.conf").write_text(_PG_HBA)
        run_as.chown(node.datadir)
        node.start()
        try:
            node.psql(
                f"CREATE ROLE {APP_USER} LOGIN CREATEDB PASSWORD '{creds.app}';\n"
                f"GRANT pg_monitor TO {APP_USER};\n"
                f"CREATE ROLE {REPLICATION_USER} LOGIN REPLICATION PASSWORD '{creds.replicator}';\n"
                f"CREATE ROLE {WRITER_USER} LOGIN PASSWORD '{creds.writer}';\n"
                f"CREATE ROLE {READER_USER} LOGIN PASSWORD '{creds.reader}';\n"
            )
            # Per-application roles, as the stack creates them: whatever the owner creates (every
            # migration, in every database copied from template1) is readable and writable by the
            # writer and readable by the reader. Default privileges live per database: set them in
            # template1 before any database is created from it.
            node.psql(_ROLE_GRANTS, db="template1")
            node.psql(f"CREATE DATABASE {APP_DB} OWNER {APP_USER};\n")
            # Every database created later (per-test ones too) gets pg_stat_statements.
            node.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements;", db="template1")
            node.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements;", db=APP_DB)
        finally:
            node.stop("fast")
        for leftover in ("postmaster.pid", "postmaster.opts"):
            (node.datadir / leftover).unlink(missing_ok=True)
        _templates[key] = (node.datadir, creds)
        return _templates[key]


def copy_cluster(template: Path, dest: Path, run_as: RunAs) -> None:
    """Copy a stopped cluster's data dir (permissions kept: PostgreSQL insists on 0700/0750)."""
    shutil.copytree(template, dest, symlinks=True)
    run_as.chown(dest)
