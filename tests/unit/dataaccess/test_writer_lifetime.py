"""``writer_max_connection_lifetime``: the setting, and how the writer pool stamps connections
(no server needed; the behaviour against real servers is in tests/integration/test_writer_fence.py)."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from dataaccess import Settings, SettingsError
from dataaccess.pools import Pools

DSN = "postgresql://u@127.0.0.1/db"


def test_default_is_60_seconds_and_0_turns_it_off() -> None:
    assert Settings(writer_dsn=DSN).writer_max_connection_lifetime == 60.0
    assert Settings(writer_dsn=DSN, writer_max_connection_lifetime=0).writer_max_connection_lifetime == 0


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), True, "60", None])
def test_bad_lifetimes_name_the_field(bad: object) -> None:
    with pytest.raises(SettingsError) as info:
        Settings(writer_dsn=DSN, writer_max_connection_lifetime=bad)  # type: ignore[arg-type]
    assert info.value.field == "writer_max_connection_lifetime"


def test_from_env_reads_the_lifetime() -> None:
    env = {"COMMERCE_DB_WRITER_DSN": DSN, "COMMERCE_DB_WRITER_MAX_CONNECTION_LIFETIME": "45"}
    assert Settings.from_env(environ=env).writer_max_connection_lifetime == 45.0
    env["COMMERCE_DB_WRITER_MAX_CONNECTION_LIFETIME"] = "-5"
    with pytest.raises(SettingsError) as info:
        Settings.from_env(environ=env)
    assert info.value.field == "COMMERCE_DB_WRITER_MAX_CONNECTION_LIFETIME"


def test_pool_only_arguments_stay_out_of_connect_arguments() -> None:
    """``set_connect_args`` (PgBouncer switch, credential refresh) must not get the pool's ``init``
    / ``connection_class`` (asyncpg would pass them on to ``connect``)."""
    pools = Pools(Settings(writer_dsn=DSN), None)
    assert {"init", "connection_class"} <= pools._kwargs(DSN, "writer").keys()
    assert not {"init", "connection_class"} & pools._kwargs(DSN, "reader").keys()
    connect = pools._connect_kwargs(DSN, "writer")
    assert not {"init", "connection_class", "min_size", "max_size", "dsn", "reset"} & connect.keys()
    off = Pools(Settings(writer_dsn=DSN, writer_max_connection_lifetime=0), None)
    assert not {"init", "connection_class"} & off._kwargs(DSN, "writer").keys()


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999])
async def test_each_connection_lives_between_90_and_100_percent_of_the_lifetime(draw: float) -> None:
    now = [500.0]
    rng = random.Random()
    rng.random = lambda: draw  # type: ignore[method-assign]
    pools = Pools(
        Settings(writer_dsn=DSN, writer_max_connection_lifetime=60), None, clock=lambda: now[0], rng=rng
    )
    conn = SimpleNamespace()
    await pools._date_connection(conn)  # type: ignore[arg-type]
    assert conn.retire_at == pytest.approx(500.0 + 60 * (1 - 0.1 * draw))
    now[0] = 500.0 + 54 - 1e-6
    assert not pools._outlived(conn)  # type: ignore[arg-type]  # never before 90 %
    now[0] = 560.0
    assert pools._outlived(conn)  # type: ignore[arg-type]  # always by 100 %
    assert not pools._outlived(SimpleNamespace())  # type: ignore[arg-type]  # unstamped: lifetime off
