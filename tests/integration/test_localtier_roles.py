"""Per-application roles in the local tier (issue 17): the schema owner migrates, the data layer
runs as the writer role (rows only, no DDL) and reads replicas as the read-only role, like a
service in production — not as a superuser or the owner."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from commerce_db.localtier import DatabaseDSNs, LocalTier
from dataaccess import DataAccess
from tests.integration.conftest import StackSettings

pytestmark = [pytest.mark.integration]


def _local(tier: Any) -> LocalTier:
    if not isinstance(tier, LocalTier):
        pytest.skip("per-application roles are created by the local tier")
    return tier


async def test_data_layer_runs_as_writer_and_read_only_roles(
    tier: Any, fresh_db: DatabaseDSNs, stack_settings: StackSettings
) -> None:
    """Settings from the stack outputs + Secrets Manager (the service's wiring): writes through
    PgBouncer as app_writer, replica reads as app_reader; neither may change the schema."""
    local = _local(tier)
    reader = local.dsns(fresh_db.name, role="reader")
    settings = stack_settings()
    assert settings.reader_credentials is not None and settings.reader_dsns
    async with DataAccess.connect(settings) as da:
        user = await da.users.create(email="role@example.com", name="Role")
        p = await da.products.create(sku="ROLE-1", name="Least privilege", price_cents=5, stock=3)
        order = await da.orders.place(user.id, [(p.id, 1)], idempotency_key="role-1")
        assert (await da.orders.get(order.id)) == order
        assert (await da.products.search("privilege"))[0].id == p.id
        async with da.pools.writer() as conn:
            assert await conn.fetchval("SELECT current_user") == "app_writer"
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("CREATE TABLE sneaky (x int)")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("DROP TABLE products")
        await asyncio.to_thread(local.wait_for_standby)
        await da.pools.check_replicas()
        async with da.pools.reader() as (conn, source):
            assert source == "replica"
            assert await conn.fetchval("SELECT current_user") == "app_reader"
            assert await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    conn = await asyncpg.connect(reader.primary)
    try:
        assert await conn.fetchval("SELECT count(*) FROM products") == 1
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE products SET stock = 0")
    finally:
        await conn.close()
