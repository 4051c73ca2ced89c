"""Per-application roles in the local tier (issue 17): the schema owner migrates, the data layer
runs as the writer role (rows only, no DDL) and reads replicas as the read-only role, like a
service in production — not as a superuser or the owner."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from commerce_db.localtier import DatabaseDSNs, LocalTier
from dataaccess import DataAccess, Settings

pytestmark = [pytest.mark.integration]


def _local(tier: Any) -> LocalTier:
    if not isinstance(tier, LocalTier):
        pytest.skip("per-application roles are created by the local tier")
    return tier


async def test_data_layer_runs_as_writer_and_read_only_roles(
    tier: Any, fresh_db: DatabaseDSNs, redis_clean: str
) -> None:
    local = _local(tier)
    writer, reader = local.dsns(fresh_db.name, role="writer"), local.dsns(fresh_db.name, role="reader")
    assert writer.pgbouncer is not None and reader.standby is not None
    async with DataAccess.connect(Settings(writer_dsn=fresh_db.primary)) as owner:
        await owner.migrate()  # DDL: the owner only
    await asyncio.to_thread(local.wait_for_standby)
    settings = Settings(
        writer_dsn=writer.pgbouncer,
        reader_dsns=(reader.standby,),
        redis_url=redis_clean,
        proxy_mode="pgbouncer",
    )
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
    conn = await asyncpg.connect(reader.primary)
    try:
        assert await conn.fetchval("SELECT count(*) FROM products") == 1
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE products SET stock = 0")
    finally:
        await conn.close()
