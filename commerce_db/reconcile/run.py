"""One reconcile run: check the inputs, compare the databases, optionally re-place what is missing.

Everything that can be wrong with the input is checked before the first write: both databases
reachable, the commerce schema on both (and ``commerce_place_orders`` on the new writer), two
*different* databases, a new writer that is not a standby, a promotion time that parses, has a
timezone and is not in the future by the new writer's clock, a look-back within bounds and a
window that is not absurdly large. Only then does ``apply=True`` place anything.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta

import asyncpg

from dataaccess import DataAccess, Settings
from dataaccess.errors import DataAccessError
from dataaccess.pools import Pools
from dataaccess.retry import ConnectPhaseError
from dataaccess.settings import mask_url

from . import source
from .apply import apply_missing
from .compare import compare
from .inputs import DEFAULT_LOOKBACK, check_lookback, describe, scrub
from .model import ReconcileError, ReconcileReport

__all__ = ["DEFAULT_MAX_ORDERS", "reconcile"]

DEFAULT_MAX_ORDERS = 200_000
"""Most orders one run compares (a window beyond it is refused: narrow it)."""

_READ_TIMEOUT = 300.0
"""Seconds a read may take: the window's orders and the users/products scans on a restored
snapshot can outlast the application's 4 s ``statement_timeout``."""


async def reconcile(
    old: Settings,
    new: Settings,
    *,
    since: datetime | None = None,
    lookback: timedelta = DEFAULT_LOOKBACK,
    apply: bool = False,
    max_orders: int = DEFAULT_MAX_ORDERS,
    stop: asyncio.Event | None = None,
) -> ReconcileReport:
    """Compare the old database with the new writer and (``apply=True``) re-place the orders
    missing on the new writer through the data layer's order path.

    :param old: settings whose ``writer_dsn`` reaches the old data: the fenced old writer, or its
        final / ``rds:unplanned-global-failover-…`` snapshot restored to a scratch instance. Only
        read.
    :param new: settings of the new writer, as the applications use them (the writes go through
        :class:`~dataaccess.DataAccess` with these settings: cache and stock gate included).
    :param since: the promotion time (timezone-aware). Default: None, the newest order present on
        both databases is taken as the divergence point.
    :param lookback: orders created this long before the divergence point are compared too.
        Default: :data:`~commerce_db.reconcile.inputs.DEFAULT_LOOKBACK` (15 minutes).
    :param apply: re-place the orders that fit. Default: False (dry run: nothing is written).
    :param max_orders: refuse a window with more orders (or users / products changed in it) than
        this. Default: 200,000.
    :param stop: when set (e.g. by a SIGINT/SIGTERM handler), ``--apply`` stops after the order in
        flight; the rest is reported ``not_attempted``. Default: None.
    :raises ReconcileError: bad input or an unusable database; nothing was written.
    """
    check_lookback(lookback)
    if since is not None and (since.tzinfo is None or since.utcoffset() is None):
        raise ReconcileError(f"since {since.isoformat()} has no timezone")
    if max_orders < 1:
        raise ReconcileError(f"--max-orders {max_orders} must be >= 1")
    old_side, new_side = f"old database {describe(old)}", f"new writer {describe(new)}"

    async with _pools(old, old_side, old, new) as old_pools, _pools(new, new_side, old, new) as new_pools:
        try:
            async with old_pools.writer() as oc, new_pools.writer() as nc:
                await source.check_schema(oc, old_side)
                await source.check_schema(nc, new_side, placing=apply)
                if await source.in_recovery(oc):
                    # The fenced old writer or a restored snapshot is never a standby; a standby is
                    # most likely the new writer's own replica, which would report nothing missing.
                    raise ReconcileError(
                        f"{old_side} is a read-only standby (a replica of the new writer, or of the old "
                        "one): give the fenced old writer or its snapshot restored to a scratch instance"
                    )
                if await source.database_identity(oc) == await source.database_identity(nc):
                    raise ReconcileError(
                        f"{old_side} and {new_side} are the same database: the old DSN must reach the "
                        "old writer or its restored snapshot"
                    )
                if apply and await source.in_recovery(nc):
                    raise ReconcileError(f"{new_side} is a read-only standby: --apply needs the writer")
                now = await source.server_now(nc)
                if since is not None and since > now:
                    raise ReconcileError(
                        f"--since {since.isoformat()} is in the future (the new writer's clock says "
                        f"{now.isoformat()}): give the promotion time"
                    )
                # One snapshot of the old database for the whole comparison.
                async with oc.transaction(isolation="repeatable_read", readonly=True):
                    report = await _compare(oc, nc, since, lookback, max_orders, old_side)
                    report = replace(report, old=describe(old), new=describe(new), applied=apply)
        except (
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            OSError,
            DataAccessError,
            ConnectPhaseError,
        ) as exc:
            raise ReconcileError(
                f"reading {old_side} / {new_side} failed: {type(exc).__name__}: {scrub(str(exc), old, new)}"
            ) from None
    if not apply or report.count("to_apply") == 0:
        return report
    try:
        da = await DataAccess.connect(new)
    except Exception as exc:
        raise ReconcileError(
            f"{new_side}: cannot open the data layer for --apply: "
            f"{type(exc).__name__}: {scrub(str(exc), new)}"
        ) from None
    try:
        await _check_redis(da, new)
        result = await apply_missing(da, report.missing, stop=stop)
    finally:
        await da.close()
    return replace(
        report,
        missing=tuple(result.missing),
        conflicts=(*report.conflicts, *result.conflicts),
        error=result.error,
    )


async def _compare(
    oc: asyncpg.Connection,
    nc: asyncpg.Connection,
    since: datetime | None,
    lookback: timedelta,
    max_orders: int,
    old_side: str,
) -> ReconcileReport:
    """The dry-run report (``old``/``new`` names filled in by the caller)."""
    if since is not None:
        divergence, how = since, "the promotion time given (--since)"
    else:
        common = await source.newest_common_order(oc, nc)
        if common is None:
            raise ReconcileError(f"{old_side} has no orders: nothing to reconcile (wrong database?)")
        divergence, how = common[1], f"the newest order on both databases (order {common[0]})"
    try:
        start = divergence - lookback
    except OverflowError:
        raise ReconcileError(
            f"--since {divergence.isoformat()} minus the look-back is before year 1: give the promotion time"
        ) from None
    orders = await source.old_orders_since(oc, start, limit=max_orders)
    keys = await source.keys_on(nc, [o.idempotency_key for o in orders])
    users_changed = await source.users_changed_since(oc, start, limit=max_orders)
    products_changed = await source.products_changed_since(oc, start, limit=max_orders)
    missing = [o for o in orders if o.idempotency_key not in keys]
    user_ids = {o.user_id for o in missing} | set(users_changed)
    product_ids = {ln.product_id for o in missing for ln in o.lines} | set(products_changed)
    users_old = {**await source.users_by_id(oc, user_ids - set(users_changed)), **users_changed}
    products_old = {
        **await source.products_by_id(oc, product_ids - set(products_changed)),
        **products_changed,
    }
    found = compare(
        orders,
        keys,
        users_old=users_old,
        users_new=await source.users_by_id(nc, user_ids),
        products_old=products_old,
        products_new=await source.products_by_id(nc, product_ids),
        changed_users=frozenset(users_changed),
        changed_products=frozenset(products_changed),
        new_user_orders=await source.orders_of_users_since(nc, {o.user_id for o in missing}, start),
    )
    return ReconcileReport(
        old="",
        new="",
        applied=False,
        divergence=divergence,
        divergence_source=how,
        window_start=start,
        orders_compared=len(orders),
        orders_on_both=found.orders_on_both,
        replaced=found.replaced,
        missing=found.missing,
        conflicts=found.conflicts,
        stock=found.stock,
    )


async def _check_redis(da: DataAccess, new: Settings) -> None:
    """With a Redis configured for the new writer, it must answer before anything is placed: the
    re-placed orders invalidate cached products and feed the stock gate through it, and a Redis
    that fails open would leave caches stale without a word."""
    if da.redis is None:
        return
    try:
        await da.redis.ping()
    except Exception as exc:
        raise ReconcileError(
            f"new writer's Redis {mask_url(new.redis_url)}: PING failed ({type(exc).__name__}: "
            f"{scrub(str(exc), new)}): fix COMMERCE_DB_REDIS_URL / the AUTH token, or unset it to apply "
            "without a cache (then flush the cache afterwards)"
        ) from None


@contextlib.asynccontextmanager
async def _pools(settings: Settings, side: str, *all_settings: Settings) -> AsyncIterator[Pools]:
    """A small writer-only pool for reading, with a longer timeout; connect errors name the side."""
    reading = settings.replace(
        reader_dsns=(),
        writer_pool_min=1,
        writer_pool_max=2,
        statement_timeout=_READ_TIMEOUT,
        command_timeout=_READ_TIMEOUT + 10,
        application_name="commerce-db-reconcile",
    )
    try:
        pools = await Pools.create(reading)
    except Exception as exc:
        raise ReconcileError(
            f"{side}: cannot connect: {type(exc).__name__}: {scrub(str(exc), *all_settings)}"
        ) from None
    try:
        yield pools
    finally:
        await pools.close()
