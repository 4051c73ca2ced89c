"""``commerce-db failover reconcile [--since TIME] [--apply] [--json]``: writes a failover lost.

Registered under ``failover`` (next to ``promote``) by :mod:`commerce_db.commands.failover`.
The databases come from the environment, as the data layer's own settings do
(:meth:`dataaccess.Settings.from_env`), never from the command line (where ``ps`` and shell
history would show a password):

* the new writer: ``COMMERCE_DB_WRITER_DSN`` and the other ``COMMERCE_DB_*`` variables the
  applications use (``..._PASSWORD``, ``..._SSL_ROOT_CERT``, ``..._REDIS_URL``, ...);
* the old data: the same variables with the prefix ``COMMERCE_DB_OLD_`` (``COMMERCE_DB_OLD_WRITER_DSN``
  = the fenced old writer, or its snapshot restored to a scratch instance).

Exit codes: 0 done, nothing for a human; 3 conflicts for a human (report printed); 1 ``--apply``
stopped part-way (re-run it); 2 bad input or an unusable database (nothing changed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["register"]

_PROG = "commerce-db failover reconcile"


def register(operations: Any) -> None:
    """Add ``reconcile`` to the ``failover`` sub-command's operations."""
    p = operations.add_parser(
        "reconcile",
        help="after a failover: find orders only the old writer has; --apply re-places them",
        description="Compare the old data (the fenced old writer, or its final / unplanned-failover snapshot "
        "restored to a scratch instance) with the new writer: orders missing on the new writer (with their "
        "lines and idempotency keys), the stock they need, and rows that differ. --apply re-places the "
        "missing orders through the data layer's order path (oversell-safe; same idempotency keys, so "
        "re-running is a no-op); an order that no longer fits is left as a conflict. Databases come from "
        "the environment: COMMERCE_DB_OLD_WRITER_DSN (old) and COMMERCE_DB_WRITER_DSN (new), plus any other "
        "COMMERCE_DB_OLD_* / COMMERCE_DB_* settings. Exit codes: 0 nothing for a human, 3 conflicts, "
        "1 --apply stopped part-way, 2 bad input (nothing changed).",
    )
    p.add_argument(
        "--since",
        metavar="TIME",
        help="the promotion time, ISO 8601 with a timezone (e.g. 2026-12-06T07:05:00Z); default: the newest "
        "order present on both databases",
    )
    p.add_argument(
        "--lookback",
        type=_minutes,
        default=15.0,
        metavar="MINUTES",
        help="also compare orders created this long before the divergence point (default: 15)",
    )
    p.add_argument("--apply", action="store_true", help="re-place the missing orders (default: dry run)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--max-orders",
        type=_count,
        default=None,
        metavar="N",
        help="refuse a window with more orders than N (default: 200000)",
    )
    p.add_argument(
        "--old-env-prefix",
        default="COMMERCE_DB_OLD_",
        metavar="PREFIX",
        help="environment prefix of the old database's settings (default: COMMERCE_DB_OLD_)",
    )
    p.add_argument(
        "--new-env-prefix",
        default="COMMERCE_DB_",
        metavar="PREFIX",
        help="environment prefix of the new writer's settings (default: COMMERCE_DB_, what the apps use)",
    )
    p.set_defaults(func=_run)


def _minutes(raw: str) -> float:
    """``--lookback``: a finite number of minutes, 0 .. MAX_LOOKBACK (a day)."""
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of minutes") from None
    from commerce_db.reconcile.inputs import MAX_LOOKBACK  # lazy: keeps `commerce-db --help` light

    limit = MAX_LOOKBACK.total_seconds() / 60
    if not 0 <= value <= limit:  # also false for NaN
        raise argparse.ArgumentTypeError(f"{raw!r} must be between 0 and {limit:g} minutes")
    return value


def _count(raw: str) -> int:
    """``--max-orders``: a whole number >= 1."""
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{raw!r} must be >= 1")
    return value


def _run(args: argparse.Namespace) -> int:
    from commerce_db.reconcile import DEFAULT_MAX_ORDERS, ReconcileError, parse_since, reconcile, render
    from dataaccess import Settings
    from dataaccess.errors import SettingsError

    try:
        since = parse_since(args.since) if args.since is not None else None
        old = _settings(Settings, SettingsError, args.old_env_prefix, "old database")
        new = _settings(Settings, SettingsError, args.new_env_prefix, "new writer")
        report = asyncio.run(
            _interruptible(
                lambda stop: reconcile(
                    old,
                    new,
                    since=since,
                    lookback=timedelta(minutes=args.lookback),
                    apply=args.apply,
                    max_orders=args.max_orders if args.max_orders is not None else DEFAULT_MAX_ORDERS,
                    stop=stop,
                )
            )
        )
    except ReconcileError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr)
        print(f"{_PROG}: nothing was changed", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(render(report))
    if report.error:
        return 1
    return 3 if report.conflicts else 0


async def _interruptible(run: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    """Run with SIGINT/SIGTERM turned into a request to stop: ``--apply`` finishes the order in
    flight, reports the rest ``not_attempted`` and exits 1 with the report printed (a bare
    KeyboardInterrupt would lose the list of what was placed). A second signal aborts."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()

    def on_signal() -> None:
        if stop.is_set() and task is not None:
            task.cancel()
            return
        stop.set()
        print(f"{_PROG}: stopping after the order in flight (signal again to abort)", file=sys.stderr)

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / platform
            pass
    try:
        return await run(stop)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def _settings(settings_cls: Any, error_cls: type[Exception], prefix: str, side: str) -> Any:
    """Settings from ``{prefix}*`` variables; a missing or bad one names the variable."""
    from commerce_db.reconcile import ReconcileError

    try:
        return settings_cls.from_env(prefix=prefix)
    except error_cls as exc:  # SettingsError masks DSN passwords itself
        raise ReconcileError(f"{side}: {exc}") from None
