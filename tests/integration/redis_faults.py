"""A private, killable Redis for the Redis fault tests (cache outage, pub/sub reconnection).

Why not the shared ``tier``: killing its Redis would disturb other tests, and ``fault_tier`` also
starts PostgreSQL, PgBouncer and a standby that these tests do not need. This reuses the local
tier's ``RedisNode`` (same flags, same port on restart) for one test only.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from commerce_db.localtier import MissingBinaryError, find_binaries
from commerce_db.localtier.procs import RunAs
from commerce_db.localtier.redis_node import RedisNode


class KillableRedis:
    """Redis primary + replica that a test may kill and restart; restarted/stopped at teardown."""

    def __init__(self, home: Path) -> None:
        try:
            binary = find_binaries().redis_server
        except MissingBinaryError as exc:
            pytest.skip(f"Redis fault tests need a local redis-server: {exc}")
        run_as = RunAs()
        for sub in ("primary", "replica"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        run_as.chown(home)
        self.node = RedisNode("fault-primary", home / "primary", binary, run_as)
        self.replica = RedisNode("fault-replica", home / "replica", binary, run_as, replica_of=self.node)
        self.down = False

    @property
    def redis_url(self) -> str:
        return self.node.url

    @property
    def redis_replica_url(self) -> str:
        return self.replica.url

    def start(self) -> None:
        self.node.start()
        self.down = False

    def start_replica(self) -> None:
        self.replica.start()
        self.replica.wait_replica_in_sync()

    def kill(self) -> None:
        """SIGKILL the primary: every connection drops, every key is gone."""
        self.node.kill()
        self.down = True

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.replica.stop()
        with contextlib.suppress(Exception):
            self.node.stop()


@pytest.fixture
def killable_redis() -> Iterator[KillableRedis]:
    # Not pytest's tmp_path: as root the servers run as ``postgres``, which cannot enter it.
    home = Path(tempfile.mkdtemp(prefix="cdb-redis-fault-"))
    home.chmod(0o755)
    try:
        r = KillableRedis(home)
        r.start()
        try:
            yield r
        finally:
            r.stop()
    finally:
        shutil.rmtree(home, ignore_errors=True)
