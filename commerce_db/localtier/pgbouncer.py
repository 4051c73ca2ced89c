"""PgBouncer in transaction mode in front of a PostgreSQL node (the local stand-in for RDS Proxy)."""

from __future__ import annotations

import functools
import signal
import subprocess
from pathlib import Path

from commerce_db.localtier.binaries import Binaries
from commerce_db.localtier.errors import LocalTierError
from commerce_db.localtier.postgres import APP_USER, READER_USER, WRITER_USER, Credentials, tls_query
from commerce_db.localtier.procs import ManagedProcess, RunAs, free_port, port_open, wait_until
from commerce_db.localtier.tls import TlsFiles

ADMIN_USER = "pgbouncer_admin"

_INI = """\
[databases]
; wildcard: every database name routes to the writer, so per-test databases need no config
* = host=127.0.0.1 port={backend_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
pidfile = {home}/pgbouncer.pid
logfile = {home}/pgbouncer.log
auth_type = scram-sha-256
auth_file = {home}/userlist.txt
admin_users = {admin}
stats_users = {app}
pool_mode = transaction
max_client_conn = {max_client_conn}
default_pool_size = {default_pool_size}
reserve_pool_size = 5
ignore_startup_parameters = extra_float_digits
; retry a failed server login after 1 s, not 15 s: failovers in drills recover promptly
server_login_retry = 1
server_connect_timeout = 5
log_connections = 0
log_disconnections = 0
"""


class PgBouncerNode:
    """pgbouncer on 127.0.0.1:<port>; ``* = host=127.0.0.1 port=<backend>`` wildcard database."""

    def __init__(
        self,
        home: Path,
        bins: Binaries,
        run_as: RunAs,
        creds: Credentials,
        backend_port: int,
        *,
        max_client_conn: int = 1000,
        default_pool_size: int = 20,
        tls: TlsFiles | None = None,
    ) -> None:
        self.tls = tls
        self.home = home
        self.bins = bins
        self.run_as = run_as
        self.creds = creds
        self.backend_port = backend_port
        self.max_client_conn = max_client_conn
        self.default_pool_size = default_pool_size
        self.port: int | None = None
        self.proc: ManagedProcess | None = None

    def _write_config(self, port: int) -> Path:
        userlist = self.home / "userlist.txt"
        userlist.write_text(
            f'"{APP_USER}" "{self.creds.app}"\n"{ADMIN_USER}" "{self.creds.pgbouncer_admin}"\n'
            f'"{WRITER_USER}" "{self.creds.writer}"\n"{READER_USER}" "{self.creds.reader}"\n'
        )
        userlist.chmod(0o600)
        ini = self.home / "pgbouncer.ini"
        text = _INI.format(
            backend_port=self.backend_port,
            port=port,
            home=self.home,
            admin=ADMIN_USER,
            app=APP_USER,
            max_client_conn=self.max_client_conn,
            default_pool_size=self.default_pool_size,
        )
        if self.tls is not None:
            # Clients must speak TLS (like RDS Proxy's require_tls); PgBouncer verifies the server.
            text += (
                "client_tls_sslmode = require\n"
                f"client_tls_key_file = {self.tls.server_key}\n"
                f"client_tls_cert_file = {self.tls.server_cert}\n"
                "server_tls_sslmode = verify-full\n"
                f"server_tls_ca_file = {self.tls.ca_cert}\n"
            )
        ini.write_text(text)
        self.run_as.chown(self.home)
        return ini

    def start(self, timeout: float = 20.0) -> None:
        if self.proc is not None and self.proc.alive():
            return
        attempts = 3 if self.port is None else 1
        for attempt in range(attempts):
            port = self.port if attempts == 1 and self.port is not None else free_port()
            ini = self._write_config(port)
            self.proc = ManagedProcess(
                f"pgbouncer (port {port})",
                [str(self.bins.pgbouncer), str(ini)],
                cwd=self.home,
                log=self.home / "pgbouncer.stdout",
                run_as=self.run_as,
            )
            try:
                wait_until(
                    "pgbouncer to listen", functools.partial(port_open, port), timeout=timeout, proc=self.proc
                )
            except LocalTierError:
                log = self.proc.log_tail(3000) + _tail(self.home / "pgbouncer.log")
                self.proc.stop()
                if "in use" in log and attempt + 1 < attempts:
                    continue
                raise LocalTierError(f"pgbouncer did not start:\n{log}") from None
            self.port = port
            return

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(signal.SIGTERM, timeout=10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive()

    def repoint(self, backend_port: int) -> None:
        """Send new server connections to another backend (after a promotion), via RELOAD."""
        self.backend_port = backend_port
        if self.port is not None:
            self._write_config(self.port)
            self.admin("RELOAD")
            # Server connections still open to the old backend are dead or read-only: drop them.
            self.admin("RECONNECT")

    def dsn(self, db: str, *, user: str = APP_USER) -> str:
        password = self.creds.password_of(user)
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{db}{tls_query(self.tls)}"

    def admin(self, command: str) -> list[dict[str, str]]:
        """Run an admin-console command (``SHOW POOLS``, ``RELOAD``...) and return rows as dicts.

        The console speaks only the simple query protocol, so this goes through psql.
        """
        res = subprocess.run(
            [
                self.bins.pg("psql"),
                "-X",
                "-q",
                "-A",
                "-F",
                "\x1f",
                "-P",
                "footer=off",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                ADMIN_USER,
                "-d",
                "pgbouncer",
                "-c",
                command,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={
                "PGPASSWORD": self.creds.pgbouncer_admin,
                "PATH": "/usr/bin:/bin",
                "LC_ALL": "C.UTF-8",
                **(
                    {"PGSSLMODE": "verify-full", "PGSSLROOTCERT": str(self.tls.ca_cert)}
                    if self.tls is not None
                    else {}
                ),
            },
        )
        if res.returncode != 0:
            raise LocalTierError(f"pgbouncer admin command {command!r} failed: {res.stderr.strip()}")
        lines = [ln for ln in res.stdout.splitlines() if ln]
        if not lines:
            return []
        header = lines[0].split("\x1f")
        return [dict(zip(header, ln.split("\x1f"), strict=False)) for ln in lines[1:]]


def _tail(path: Path, chars: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""
