"""The planned switchover's database fence, executed as printed (second review N1/N4).

The fence, LSN read, replay wait and unfence commands are taken from the runbook object and run
by bash + psql against the local tier (a TLS primary and its streaming standby), with only the
connection swapped: the ``psql "host=$(aws rds ...) ..."`` conninfo becomes the tier's superuser
URL. Sessions a real switchover meets are open while it runs: another superuser's (RDS's
rdsadmin: terminating it would raise) and an application writer's (the proxy's pool)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from commerce_db import failover as fo
from commerce_db.localtier import LocalTier
from commerce_db.localtier.postgres import APP_DB, SUPERUSER

pytestmark = [pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
_CONNINFO = re.compile(r'psql "host=\$\(aws rds describe-db-instances[^"]*"')
_LSN = re.compile(r"^[0-9A-F]{1,8}/[0-9A-F]{1,8}$")
_GONE = (asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError, OSError)


def _planned_runbook(tmp_path: Path) -> fo.FailoverPlan:
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml", "Pulumi.staging.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    return fo.plan_failover(
        "prod", "us-west-2", project_dir=tmp_path, keep_old_primary=True, planned=True, runner=fo._program_run
    )


def _step(plan: fo.FailoverPlan, title_start: str) -> tuple[str, ...]:
    (step,) = [s for s in plan.steps if s.phase == fo.PLANNED and s.title.startswith(title_start)]
    return step.commands


def _local(conn: str, dsn: str) -> str:
    """The printed command with the RDS endpoint lookup replaced by a local URL."""
    local, n = _CONNINFO.subn(f'psql "{dsn}"', conn)
    assert n == 1, conn
    return local


def _bash(command: str, env: dict[str, str], timeout: float = 60.0) -> str:
    res = subprocess.run(
        ["bash", "-c", command], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert res.returncode == 0, (command[:200], res.returncode, res.stderr)
    return res.stdout


def _wait_for(what: str, check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


async def test_printed_planned_fence_lsn_replay_and_unfence_work(
    fault_tier: LocalTier, tmp_path: Path
) -> None:
    local = fault_tier
    plan = _planned_runbook(tmp_path)
    fence_step = _step(plan, f"Fence {plan.identifiers.old_writer} inside the database")
    (fence,) = [c for c in fence_step if "NOLOGIN" in c]
    (read_lsn,) = [c for c in fence_step if c.startswith("LSN=$(")]
    (replay,) = _step(plan, "Wait until")
    (unfence,) = [c for c in _step(plan, "Lift the replicated database fence") if "psql" in c]

    old, standby = local.primary, local.standby
    env = {**os.environ, "PATH": f"{Path(old.bins.pg('psql')).parent}:{os.environ['PATH']}"}
    env.pop("PGOPTIONS", None)
    old_admin = old.dsn(APP_DB, user=SUPERUSER)
    writer, reader = local.dsns(APP_DB, role="writer"), local.dsns(APP_DB, role="reader")
    old.psql(
        "CREATE TABLE fence_probe (x int); GRANT SELECT, INSERT ON fence_probe TO app_writer; "
        "GRANT SELECT ON fence_probe TO app_reader",
        db=APP_DB,
    )

    other_superuser = await asyncpg.connect(old_admin)
    app_session = await asyncpg.connect(writer.primary)
    await app_session.execute("INSERT INTO fence_probe VALUES (1)")
    try:
        _bash(_local(fence, old_admin), env)
        # the writer's open session is gone, and the writer cannot log in again
        assert old.psql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'app_writer'") == "0"
        with pytest.raises(_GONE):
            await app_session.execute("INSERT INTO fence_probe VALUES (2)")
        with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError):
            await asyncpg.connect(writer.primary)
        # the other superuser's session survived (the terminate skipped it, and did not abort)
        assert await other_superuser.fetchval("SELECT 1") == 1
        # a new session (even a superuser's) is read-only by default
        late = await asyncpg.connect(old_admin)
        try:
            with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                await late.execute("INSERT INTO fence_probe VALUES (3)")
        finally:
            await late.close()

        lsn = _bash(_local(read_lsn, old_admin), env).strip()
        assert _LSN.match(lsn), repr(lsn)  # one valid pg_lsn, nothing else

        replay_cmd = _local(replay, standby.dsn(APP_DB, user=SUPERUSER))
        _wait_for("the standby to replay $LSN", lambda: _bash(replay_cmd, {**env, "LSN": lsn}).strip() == "t")
        # readers keep LOGIN on the replica throughout (N4)
        r = await asyncpg.connect(reader.standby)
        try:
            assert await r.fetchval("SELECT count(*) FROM fence_probe") == 1
        finally:
            await r.close()

        local.promote_standby(repoint_pgbouncer=False)
        # the promoted server replayed the fence: no writer login until it is lifted
        with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError):
            await asyncpg.connect(writer.standby)
        _bash(_local(unfence, standby.dsn(APP_DB, user=SUPERUSER)), env)
        promoted = await asyncpg.connect(writer.standby)
        try:
            await promoted.execute("INSERT INTO fence_probe VALUES (4)")
            assert await promoted.fetchval("SELECT array_agg(x ORDER BY x) FROM fence_probe") == [1, 4]
        finally:
            await promoted.close()
        r = await asyncpg.connect(reader.standby)
        try:
            assert await r.fetchval("SELECT count(*) FROM fence_probe") == 2
        finally:
            await r.close()
    finally:
        await other_superuser.close()
        app_session.terminate()
