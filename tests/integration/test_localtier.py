"""The local tier itself: replication, replay pause/lag, PgBouncer transaction mode, Redis
replication and the fault operations the drills rely on. Real servers throughout."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import pytest
import redis
import redis.asyncio as aredis

from commerce_db.localtier import DatabaseDSNs, ExternalTier, LocalTier, LocalTierError, MissingBinaryError
from commerce_db.localtier.binaries import _find, find_binaries
from commerce_db.localtier.reaper import reap_orphans
from tests.integration.conftest import require


async def _wait_for_row(dsn: str, sql: str, expected: object, attempts: int = 300) -> object:
    """Poll a query on (typically) the standby until it returns expected; returns the last value."""
    conn = await asyncpg.connect(dsn)
    try:
        value = None
        for _ in range(attempts):
            value = await conn.fetchval(sql)
            if value == expected:
                return value
            await asyncio.sleep(0.02)
        return value
    finally:
        await conn.close()


async def test_row_written_on_primary_is_visible_on_standby(
    tier: LocalTier | ExternalTier, fresh_db: DatabaseDSNs
) -> None:
    require(tier, standby=True)
    assert fresh_db.standby is not None
    conn = await asyncpg.connect(fresh_db.primary)
    try:
        await conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
        await conn.execute("INSERT INTO t VALUES (1, 'replicated')")
    finally:
        await conn.close()
    got = await _wait_for_row(fresh_db.standby, "SELECT v FROM t WHERE id = 1", "replicated")
    assert got == "replicated"
    standby = await asyncpg.connect(fresh_db.standby)
    try:
        assert await standby.fetchval("SELECT pg_is_in_recovery()") is True
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await standby.execute("INSERT INTO t VALUES (2, 'nope')")
    finally:
        await standby.close()


async def test_pause_replay_gives_lag_and_resume_catches_up(
    tier: LocalTier | ExternalTier, fresh_db: DatabaseDSNs
) -> None:
    if not isinstance(tier, LocalTier):
        pytest.skip("replay pause needs the local tier")
    assert fresh_db.standby is not None
    primary = await asyncpg.connect(fresh_db.primary)
    standby = await asyncpg.connect(fresh_db.standby)
    try:
        await primary.execute("CREATE TABLE t (id int PRIMARY KEY)")
        await asyncio.to_thread(tier.wait_for_standby)
        await asyncio.to_thread(tier.pause_replay)
        try:
            before = tier.replay_lsn()
            await primary.execute("INSERT INTO t SELECT generate_series(1, 1000)")
            lsn_after_write = await primary.fetchval("SELECT pg_current_wal_lsn()::text")
            # Replay is paused: the standby still shows the table empty, however long we look.
            await asyncio.sleep(0.3)
            assert await standby.fetchval("SELECT count(*) FROM t") == 0
            assert tier.replay_lsn() == before
            assert (await asyncio.to_thread(tier.replication_lag))["bytes"] > 0
        finally:
            tier.resume_replay()
        await asyncio.to_thread(tier.wait_for_standby, lsn_after_write)
        assert await standby.fetchval("SELECT count(*) FROM t") == 1000
    finally:
        await primary.close()
        await standby.close()


async def test_pgbouncer_transaction_mode_with_asyncpg(
    tier: LocalTier | ExternalTier, fresh_db: DatabaseDSNs
) -> None:
    require(tier, pgbouncer=True)
    assert fresh_db.pgbouncer is not None
    # statement_cache_size=0: PgBouncer 1.18 cannot track protocol-level prepared statements.
    pool = await asyncpg.create_pool(fresh_db.pgbouncer, min_size=1, max_size=60, statement_cache_size=0)
    try:
        await pool.execute("CREATE TABLE t (id int PRIMARY KEY, v int)")

        async def worker(i: int) -> int:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("INSERT INTO t VALUES ($1, $2)", i, i * 2)
                return int(await conn.fetchval("SELECT v FROM t WHERE id = $1", i))

        results = await asyncio.gather(*(worker(i) for i in range(300)))
        assert results == [i * 2 for i in range(300)]
        # Transaction pooling: backend pid changes between transactions on one client connection
        # is possible, and the server side stays within default_pool_size.
        if isinstance(tier, LocalTier):
            pools = [p for p in tier.pgbouncer_show("POOLS") if p["database"] == fresh_db.name]
            assert pools and pools[0]["pool_mode"] == "transaction"
            servers = [s for s in tier.pgbouncer_show("SERVERS") if s["database"] == fresh_db.name]
            assert 0 < len(servers) <= 20 + 5  # default_pool_size + reserve_pool_size
            assert pool.get_size() > len(servers)
    finally:
        await pool.close()


async def test_redis_replica_replicates(tier: LocalTier | ExternalTier, redis_clean: str) -> None:
    if not isinstance(tier, LocalTier):
        pytest.skip("Redis replica is only started by the local tier")
    primary = aredis.Redis.from_url(tier.redis_url)
    replica = aredis.Redis.from_url(tier.redis_replica_url)
    try:
        key = f"k:{uuid.uuid4().hex}"
        await primary.set(key, b"v1")
        assert await primary.wait(1, 5000) >= 1  # acknowledged by the replica
        assert await replica.get(key) == b"v1"
        with pytest.raises(redis.ReadOnlyError):
            await replica.set(key, b"v2")
    finally:
        await primary.aclose()
        await replica.aclose()


async def test_kill_and_start_redis(fault_tier: LocalTier) -> None:
    client = aredis.Redis.from_url(fault_tier.redis_url, socket_timeout=1)
    try:
        await client.set("k", b"v")
        fault_tier.kill_redis()
        assert not fault_tier.redis.alive()
        with pytest.raises(redis.ConnectionError):
            await client.get("k")
        await fault_tier.astart_redis()
        assert await client.ping() is True
        assert await client.get("k") is None  # no persistence: a restarted cache is empty
        fault_tier.redis_replica.wait_replica_in_sync()
    finally:
        await client.aclose()


async def test_kill_primary_keeps_committed_rows_and_start_recovers(fault_tier: LocalTier) -> None:
    conn = await asyncpg.connect(fault_tier.primary_dsn)
    await conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    await conn.execute("INSERT INTO t SELECT generate_series(1, 100)")
    fault_tier.kill_primary()
    # Over TLS asyncpg may not have processed the lost connection yet when the next query starts;
    # it then reports InternalClientError ("cannot switch to state ..."), which the data layer
    # treats as a lost connection too (dataaccess/retry.py).
    lost = (
        asyncpg.PostgresConnectionError,
        ConnectionError,
        OSError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,
    )
    with pytest.raises(lost):
        await conn.fetchval("SELECT 1")
    conn.terminate()
    await fault_tier.astart_primary()  # crash recovery; fsync is on, so the commit survived
    conn = await asyncpg.connect(fault_tier.primary_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM t") == 100
    finally:
        await conn.close()


def _process_state(pid: int) -> str | None:
    """The /proc state letter of ``pid`` (``None`` once it is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return None


async def test_kill_takes_the_backends_down_with_the_postmaster(fault_tier: LocalTier) -> None:
    """A crash leaves no backend serving: PostgreSQL's backends leave the postmaster's process
    group (setsid), so killing the group alone left them up until they noticed the postmaster
    had died. The backend is stopped (SIGSTOP) first, so it cannot notice anything by itself."""
    import signal

    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc")
    conn = await asyncpg.connect(fault_tier.standby_dsn)
    backend = await conn.fetchval("SELECT pg_backend_pid()")
    os.kill(backend, signal.SIGSTOP)
    try:
        fault_tier.standby.kill()
        deadline = time.monotonic() + 30
        while _process_state(backend) not in (None, "Z", "X") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _process_state(backend) in (None, "Z", "X"), _process_state(backend)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(backend, signal.SIGKILL)
        conn.terminate()


async def test_promote_standby_makes_it_writable_and_pgbouncer_follows(fault_tier: LocalTier) -> None:
    conn = await asyncpg.connect(fault_tier.primary_dsn)
    await conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    await conn.execute("INSERT INTO t VALUES (1)")
    await conn.close()
    await asyncio.to_thread(fault_tier.wait_for_standby)
    old_port = fault_tier.primary.port
    fault_tier.kill_primary()
    new_writer = await fault_tier.apromote_standby()
    assert fault_tier.primary.port != old_port
    assert not fault_tier.has_standby
    conn = await asyncpg.connect(new_writer)
    try:
        assert await conn.fetchval("SELECT pg_is_in_recovery()") is False
        await conn.execute("INSERT INTO t VALUES (2)")
        assert await conn.fetchval("SELECT count(*) FROM t") == 2
    finally:
        await conn.close()
    # PgBouncer (the RDS Proxy stand-in) now routes to the new primary.
    bouncer = await asyncpg.connect(fault_tier.pgbouncer_dsn, statement_cache_size=0)
    try:
        await bouncer.execute("INSERT INTO t VALUES (3)")
        assert await bouncer.fetchval("SELECT count(*) FROM t") == 3
    finally:
        await bouncer.close()


async def test_restart_pgbouncer_keeps_port_and_serves_again(fault_tier: LocalTier) -> None:
    port = fault_tier.pgbouncer.port
    await fault_tier.arestart_pgbouncer()
    assert fault_tier.pgbouncer.port == port
    conn = await asyncpg.connect(fault_tier.pgbouncer_dsn, statement_cache_size=0)
    try:
        assert await conn.fetchval("SELECT 41 + 1") == 42
    finally:
        await conn.close()


def test_create_database_rejects_bad_name_and_changes_nothing(tier: LocalTier | ExternalTier) -> None:
    with pytest.raises(ValueError, match="must match"):
        tier.create_database('x"; DROP DATABASE app; --')


def test_stop_is_idempotent_and_removes_everything() -> None:
    local = LocalTier(standby=False, redis_replica=False).start()
    pids = [local.primary.proc.pid, local.pgbouncer.proc.pid, local.redis.proc.pid]  # type: ignore[union-attr]
    workdir = local.workdir
    local.stop()
    local.stop()
    assert workdir is not None and not workdir.exists()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(LocalTierError, match="no PostgreSQL standby"):
        _ = local.standby_dsn


def test_missing_binary_error_names_it() -> None:
    with pytest.raises(MissingBinaryError, match="no-such-server-binary") as info:
        _find("no-such-server-binary", "/nonexistent/no-such-server-binary")
    assert info.value.binary == "no-such-server-binary"


def test_servers_of_a_killed_owner_are_reaped() -> None:
    """An owner SIGKILLed (no atexit, no SIGTERM handler) leaves servers behind; the next tier
    start (here: reap_orphans) kills them and removes the dir."""
    tmp_path = Path(tempfile.mkdtemp(prefix="cdb-reap-test-"))
    tmp_path.chmod(0o755)  # pytest's tmp_path is 0700: the postgres user could not traverse it
    script = (
        "import sys, time\n"
        "from commerce_db.localtier import LocalTier\n"
        f"t = LocalTier(standby=False, redis_replica=False, base_dir={str(tmp_path)!r}).start()\n"
        "print(t.workdir, flush=True)\n"
        "time.sleep(600)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        workdir = Path(owner.stdout.readline().strip())
        pids = [int(line.split()[0]) for line in (workdir / "pids").read_text().splitlines()]
        assert len(pids) == 3  # postgres, pgbouncer, redis
    finally:
        owner.kill()
        owner.wait()
    assert all(_running(p) for p in pids)  # orphaned, still serving
    assert reap_orphans(str(tmp_path)) == 1
    for _ in range(100):
        if not any(_running(p) for p in pids):
            break
        time.sleep(0.05)
    assert not any(_running(p) for p in pids)
    assert not workdir.exists()
    tmp_path.rmdir()


def test_untraversable_base_dir_is_a_clear_error(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only matters when PostgreSQL runs as another user")
    tmp_path.parent.chmod(0o700)
    with pytest.raises(LocalTierError, match="not traversable"):
        LocalTier(base_dir=tmp_path).start()


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("how", ["sigterm", "exit"])
def test_owner_exit_or_sigterm_stops_everything(how: str) -> None:
    """SIGTERM (handler) and a plain interpreter exit without stop() (atexit) both stop the tier."""
    script = (
        "import sys, time\n"
        "from commerce_db.localtier import LocalTier\n"
        "t = LocalTier(standby=False, redis_replica=False).start()\n"
        "print(t.workdir, flush=True)\n"
        + ("time.sleep(600)\n" if how == "sigterm" else "sys.stdin.readline()\n")
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True
    )
    assert owner.stdout is not None and owner.stdin is not None
    workdir = Path(owner.stdout.readline().strip())
    pids = [int(line.split()[0]) for line in (workdir / "pids").read_text().splitlines()]
    assert pids and all(_running(p) for p in pids)
    if how == "sigterm":
        owner.terminate()
    else:
        owner.stdin.write("\n")
        owner.stdin.flush()
    owner.wait(timeout=60)
    assert not any(_running(p) for p in pids)
    assert not workdir.exists()


def test_tls_needs_a_postgresql_built_with_openssl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PostgreSQL without OpenSSL (the PyPI wheels of PostgreSQL 18 are such builds) gets a clear
    error naming the directory and the ways out, before anything is started; the real binaries
    here were built with it."""
    assert find_binaries().pg_has_openssl() is True
    fake = tmp_path / "bin"
    fake.mkdir()
    for tool in ("initdb", "postgres", "pg_basebackup", "pg_isready", "psql", "pg_config"):
        script = fake / tool
        script.write_text("#!/bin/sh\necho \"'--prefix=/x' '--without-icu'\"\n")
        script.chmod(0o755)
    monkeypatch.setenv("PG_BINDIR", str(fake))
    with pytest.raises(LocalTierError, match=r"without OpenSSL.*transport='plaintext'") as info:
        LocalTier(standby=False, redis_replica=False, base_dir=tmp_path).start()
    assert str(fake) in str(info.value)
    assert not list(tmp_path.glob("cdb-tier-*"))  # nothing was created
