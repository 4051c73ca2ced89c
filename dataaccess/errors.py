"""Error hierarchy of the data-access layer, mapped from PostgreSQL SQLSTATEs.

Callers catch these, never asyncpg or redis exceptions::

    DataAccessError
    ├── NotFound            the entity does not exist
    ├── Conflict            unique / idempotency-key clash, FK still referenced
    ├── OutOfStock          a reservation would make stock negative (names the products)
    ├── Unavailable         database unreachable, failing over, timed out (retries exhausted)
    │   └── OutcomeUnknown  connection lost during a non-idempotent write: it may have committed
    └── InvalidInput        bad arguments, nothing changed (also a ``ValueError``)
        └── UnknownReference  refers to a missing user/product (also a ``NotFound``)

Messages never contain DSNs, passwords or parameter values beyond ids the caller passed in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import asyncpg

__all__ = [
    "Conflict",
    "DataAccessError",
    "InvalidInput",
    "NotFound",
    "OutOfStock",
    "OutcomeUnknown",
    "SettingsError",
    "Unavailable",
    "UnknownReference",
    "ValidationError",
    "from_postgres",
]


class DataAccessError(Exception):
    """Root of every error raised by :mod:`dataaccess`."""


class NotFound(DataAccessError):  # noqa: N818 (public API names from issue 3)
    """The requested entity does not exist."""

    def __init__(self, entity: str, key: object) -> None:
        Exception.__init__(self, f"{entity} {key!r} not found")  # not super(): see UnknownReference MRO
        self.entity = entity
        self.key = key


class Conflict(DataAccessError):  # noqa: N818 (public API names from issue 3)
    """The write clashes with existing data (unique key, reused idempotency key, ...)."""

    def __init__(self, message: str, *, constraint: str | None = None) -> None:
        super().__init__(message)
        self.constraint = constraint


class OutOfStock(DataAccessError):  # noqa: N818 (public API names from issue 3)
    """Not enough stock for one or more order lines; nothing was reserved.

    ``product_ids`` lists every product that was short, ``shortages`` maps
    product id -> (requested, available at the time of the check).
    """

    def __init__(self, shortages: dict[int, tuple[int, int]]) -> None:
        self.shortages = dict(sorted(shortages.items()))
        self.product_ids = tuple(self.shortages)
        detail = ", ".join(
            f"product {pid}: requested {req}, available {avail}"
            for pid, (req, avail) in self.shortages.items()
        )
        super().__init__(f"out of stock: {detail}")


class Unavailable(DataAccessError):  # noqa: N818 (public API names from issue 3)
    """The database could not serve the request (down, failing over, overloaded, timed out)."""


class PoolExhausted(Unavailable):
    """Every connection of a pool stayed busy for ``acquire_timeout``: back-pressure, raised
    without retrying and without recycling the pool (the database is fine, the load is not)."""


class QueueFull(Unavailable):
    """A queue holds ``maxlen`` unfinished messages: nothing was enqueued (back-pressure; retry
    later, or run more workers). Never raised for work already accepted."""


class OutcomeUnknown(Unavailable):
    """The connection dropped after a non-idempotent write was sent; it may or may not have committed.

    Re-read before retrying. ``orders.place`` never raises this: it is idempotent by key and retried.
    """


class InvalidInput(DataAccessError, ValueError):  # noqa: N818 (public API names from issue 3)
    """Bad arguments (wrong type, out of range, too long, malformed). Nothing was changed.

    ``field`` names the offending argument.
    """

    def __init__(self, field: str, message: str) -> None:
        Exception.__init__(self, f"{field}: {message}")
        self.field = field


ValidationError = InvalidInput
"""Alias of :class:`InvalidInput`."""


class SettingsError(InvalidInput):
    """A setting is missing or invalid. ``field`` names it."""


class UnknownReference(InvalidInput, NotFound):
    """The input refers to entities that do not exist (e.g. an order line for an unknown product)."""

    def __init__(self, field: str, entity: str, keys: Iterable[object]) -> None:
        keys = tuple(keys)
        InvalidInput.__init__(self, field, f"unknown {entity} id(s): {', '.join(map(str, keys))}")
        self.entity = entity
        self.key = keys[0] if len(keys) == 1 else keys
        self.keys = keys


# SQLSTATE classes/codes -> our error. Checked most specific first.
_UNAVAILABLE_CLASSES = ("08", "53", "57", "58")  # connection, resources, operator intervention, system
_INVALID_INPUT_CLASSES = ("22",)  # data exception (value too long, out of range, bad text repr)


def from_postgres(exc: BaseException, *, context: str = "database operation") -> DataAccessError:
    """Translate an asyncpg / OS error into the :class:`DataAccessError` hierarchy.

    The original error is expected to be chained by the caller (``raise from_postgres(e) from e``).
    Mapping (by SQLSTATE): 23505 unique / 23P01 exclusion -> Conflict; 23503 FK -> Conflict (on
    delete) ; 23514 check / 23502 not-null / class 22 -> InvalidInput; 40001/40P01 -> Conflict
    (retries exhausted); class 08/53/57/58, 25006 read-only, timeouts, OSError -> Unavailable;
    anything else -> DataAccessError.
    """
    if isinstance(exc, DataAccessError):
        return exc
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return Unavailable(f"{context}: timed out")
    if isinstance(exc, OSError):
        return Unavailable(f"{context}: cannot reach the database ({type(exc).__name__})")
    sqlstate = getattr(exc, "sqlstate", None) or ""
    constraint = getattr(exc, "constraint_name", None)
    name = type(exc).__name__
    if sqlstate in ("23505", "23P01"):
        return Conflict(
            f"{context}: duplicate value violates {constraint or 'a unique constraint'}",
            constraint=constraint,
        )
    if sqlstate == "23503":
        return Conflict(
            f"{context}: foreign key {constraint or ''} violated".replace("  ", " "), constraint=constraint
        )
    if sqlstate in ("23514", "23502"):
        return InvalidInput(constraint or "value", f"{context}: check {constraint or sqlstate} failed")
    if sqlstate.startswith(_INVALID_INPUT_CLASSES):
        # The server's words ("bigint out of range"), not the driver's class name; callers that
        # know which argument caused it re-raise with that field.
        detail = str(getattr(exc, "message", "") or "").strip() or name
        if sqlstate == "22003" and context == "orders.place":
            # price x quantity summed over the lines: the only number place() computes.
            return InvalidInput(
                "lines", f"the order total (unit price x quantity) exceeds the supported range ({detail})"
            )
        return InvalidInput("value", f"{context}: {detail} (SQLSTATE {sqlstate})")
    if sqlstate in ("40001", "40P01"):
        return Conflict(f"{context}: concurrent update conflict ({name}) persisted after retries")
    if sqlstate == "57014":
        return Unavailable(f"{context}: statement timeout or cancelled")
    if sqlstate == "25006" or sqlstate.startswith(_UNAVAILABLE_CLASSES):
        return Unavailable(f"{context}: database unavailable ({name}, SQLSTATE {sqlstate})")
    if isinstance(exc, asyncpg.InterfaceError | asyncpg.exceptions.ConnectionDoesNotExistError):
        return Unavailable(f"{context}: connection problem ({name})")
    if sqlstate == "28P01" or sqlstate.startswith("28"):
        return Unavailable(f"{context}: authentication failed ({name})")
    return DataAccessError(f"{context}: {name} (SQLSTATE {sqlstate or 'n/a'})")
