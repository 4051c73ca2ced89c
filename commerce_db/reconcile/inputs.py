"""Checking reconcile's inputs: the promotion time, the look-back, and how a database is named.

Every message names the input and never a password: a database is shown as ``host:port/db``
(:func:`describe`), and driver messages pass through :func:`scrub` before they are shown.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit

from dataaccess.settings import Settings, endpoint, mask_url

from .model import ReconcileError

__all__ = ["DEFAULT_LOOKBACK", "MAX_LOOKBACK", "describe", "parse_since", "scrub"]

DEFAULT_LOOKBACK = timedelta(minutes=15)
"""How far before the divergence point orders are compared. Why not zero: an order's
``created_at`` is its transaction's start, and a transaction that started earlier can commit (and
fail to replicate) later; and the unreplicated tail *precedes* the promotion by the replica lag
(RPO ≤ 60 s for RDS). Orders present on both databases cost one key lookup each."""

MAX_LOOKBACK = timedelta(days=1)


def parse_since(text: str) -> datetime:
    """The promotion time from ISO 8601 text with a timezone (``2026-12-06T07:05:00Z``,
    ``2026-12-06 08:05:00+01:00``).

    :raises ReconcileError: unparseable, or no timezone (a naive time would silently mean the
        operator's or the server's zone).
    """
    raw = text.strip()
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ReconcileError(
            f"--since {text!r} is not an ISO 8601 time; give e.g. 2026-12-06T07:05:00Z"
        ) from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ReconcileError(f"--since {text!r} has no timezone; give UTC, e.g. {raw}Z")
    return value


def check_lookback(lookback: timedelta) -> timedelta:
    """``lookback`` if it is within ``0 .. MAX_LOOKBACK``.

    :raises ReconcileError: negative or longer than a day."""
    if lookback < timedelta(0) or lookback > MAX_LOOKBACK:
        raise ReconcileError(
            f"--lookback {lookback.total_seconds() / 60:g} minutes must be between 0 and "
            f"{MAX_LOOKBACK.total_seconds() / 60:g}"
        )
    return lookback


def describe(settings: Settings) -> str:
    """``host:port/db`` of the settings' writer DSN (never the user or password)."""
    db = unquote(urlsplit(settings.writer_dsn).path.lstrip("/")) or "?"
    return f"{endpoint(settings.writer_dsn)}/{db}"


_URL = re.compile(r"postgres(?:ql)?://\S+")


def scrub(text: str, *settings: Settings) -> str:
    """``text`` with every password the settings carry replaced by ``***`` and any DSN in it
    masked: driver and OS error messages are shown to the operator through this."""
    secrets: set[str] = set()
    for s in settings:
        if s.password:
            secrets.add(s.password)
        for dsn in (s.writer_dsn, *s.reader_dsns):
            try:
                parts = urlsplit(dsn)
            except ValueError:
                continue
            if parts.password:
                secrets.update({parts.password, unquote(parts.password)})
            for key, values in parse_qs(parts.query).items():
                if "password" in key.lower():
                    secrets.update(values)
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
    return _URL.sub(lambda m: mask_url(m.group(0)) or "", text)
