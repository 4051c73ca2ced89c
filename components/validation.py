"""AWS rules shared by several components' Args, each written once.

Every Args class validates in ``__post_init__`` what AWS would reject, so a team composing the
components directly gets the error at construction, naming the argument and what is allowed.
Rules that belong to one component live in its module (storage in :mod:`.postgres_cluster`,
node types in :mod:`.cache_layer`); the ones several components apply (regions, maintenance and
backup windows, Performance Insights retention, CloudWatch Logs retention, identifiers) live
here. The stack config (:mod:`.config`) parses its keys and then builds the Args, so it reports
the same rule under the config key (:class:`ArgumentError` carries the field).

Sources (AWS documentation, checked 2026-12-06): RDS ``CreateDBInstance`` constraints
(``PreferredBackupWindow`` hh24:mi-hh24:mi, >= 30 minutes, not overlapping the maintenance
window; ``PreferredMaintenanceWindow`` ddd:hh24:mi-ddd:hh24:mi, >= 30 minutes;
``PerformanceInsightsRetentionPeriod`` 7, month * 31 for 1-23 months, or 731;
``MonitoringInterval`` 0, 1, 5, 10, 15, 30, 60; ``Port`` 1150-65535), "Considerations for
Database Insights" (Advanced mode needs Performance Insights retention of at least 465 days),
CloudWatch Logs ``PutRetentionPolicy`` (the retention values below), ElastiCache
``ModifyReplicationGroup`` (maintenance and snapshot windows of at least 60 minutes).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = [
    "KNOWN_REGIONS",
    "LOG_RETENTION_DAYS",
    "MONITORING_INTERVALS",
    "PERFORMANCE_INSIGHTS_RETENTION_DAYS",
    "ArgumentError",
    "check_choice",
    "check_daily_window",
    "check_database_insights",
    "check_log_retention",
    "check_performance_insights_retention",
    "check_postgres_identifier",
    "check_region",
    "check_unique_label",
    "check_weekly_window",
    "coerce_args",
    "stack_scoped",
    "windows_overlap",
]

# Commercial-partition regions only: every ARN the components build uses the ``aws`` partition.
KNOWN_REGIONS: frozenset[str] = frozenset(
    {
        "us-east-1", "us-east-2", "us-west-1", "us-west-2",
        "ca-central-1", "ca-west-1", "mx-central-1", "sa-east-1",
        "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-central-2",
        "eu-north-1", "eu-south-1", "eu-south-2",
        "af-south-1", "il-central-1", "me-south-1", "me-central-1",
        "ap-east-1", "ap-east-2", "ap-south-1", "ap-south-2",
        "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
        "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4",
        "ap-southeast-5", "ap-southeast-7",
    }
)  # fmt: skip
"""AWS commercial regions the components accept."""

LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
"""Retention values CloudWatch Logs accepts (days)."""

PERFORMANCE_INSIGHTS_RETENTION_DAYS: tuple[int, ...] = (7, *(31 * m for m in range(1, 24)), 731)
"""7 (free tier), month * 31 for 1-23 months, or 731 (two years)."""

ADVANCED_INSIGHTS_MIN_RETENTION_DAYS = 465
"""Database Insights' Advanced mode needs Performance Insights kept at least this long (15 months)."""

MONITORING_INTERVALS: tuple[int, ...] = (0, 1, 5, 10, 15, 30, 60)
"""Enhanced monitoring intervals RDS accepts (seconds; 0 disables)."""

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = r"([01]\d|2[0-3]):([0-5]\d)"
_DAILY_RE = re.compile(rf"{_HHMM}-{_HHMM}")
_WEEKLY_RE = re.compile(rf"({'|'.join(_DAYS)}):{_HHMM}-({'|'.join(_DAYS)}):{_HHMM}")
_WEEK = 7 * 1440


class ArgumentError(ValueError):
    """An argument AWS would refuse. ``field`` is the Args field (``maintenance_window``...),
    ``value`` the rejected value and ``allowed`` what would be accepted; the message starts with
    the field name, so it reads ``maintenance_window 'sunday 4am' is invalid; allowed: ...``."""

    def __init__(self, field: str, value: Any, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field} {value!r} is invalid; {allowed}")


def check_choice(field: str, value: Any, choices: Iterable[Any]) -> None:
    """``value`` must be one of ``choices`` (listed in the error)."""
    options = tuple(choices)
    if value not in options:
        raise ArgumentError(field, value, "allowed: " + ", ".join(str(c) for c in options))


def check_region(field: str, region: Any) -> None:
    """A real AWS commercial region, with a did-you-mean for typos (``eu-centrall-1``)."""
    if isinstance(region, str) and region in KNOWN_REGIONS:
        return
    distances = {r: _edits(str(region), r) for r in KNOWN_REGIONS}
    best = min(distances.values())
    close = sorted(r for r, d in distances.items() if d == best) if best <= 2 else []
    hint = f" (did you mean {' or '.join(repr(r) for r in close)}?)" if close else ""
    raise ArgumentError(
        field, region, f"allowed: an AWS commercial region such as us-east-1, eu-central-1{hint}"
    )


def _edits(a: str, b: str) -> int:
    """Levenshtein distance (typos in region names are one or two keystrokes)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def _daily_minutes(window: str) -> tuple[int, int]:
    m = _DAILY_RE.fullmatch(window)
    assert m is not None
    h1, m1, h2, m2 = (int(x) for x in m.groups())
    return h1 * 60 + m1, h2 * 60 + m2


def _weekly_minutes(window: str) -> tuple[int, int]:
    """``ddd:hh:mm-ddd:hh:mm`` as (start, end) minutes since Monday 00:00."""
    m = _WEEKLY_RE.fullmatch(window)
    assert m is not None
    d1, h1, m1, d2, h2, m2 = m.groups()
    return (
        _DAYS.index(d1) * 1440 + int(h1) * 60 + int(m1),
        _DAYS.index(d2) * 1440 + int(h2) * 60 + int(m2),
    )


def check_daily_window(field: str, window: Any, *, min_minutes: int) -> None:
    """A daily UTC window ``hh:mm-hh:mm`` (may cross midnight) of at least ``min_minutes``."""
    if not isinstance(window, str) or not _DAILY_RE.fullmatch(window):
        raise ArgumentError(field, window, "allowed: a daily UTC window 'hh:mm-hh:mm' such as '03:00-04:00'")
    start, end = _daily_minutes(window)
    if (end - start) % 1440 < min_minutes:
        raise ArgumentError(field, window, f"allowed: a window of at least {min_minutes} minutes")


def check_weekly_window(field: str, window: Any, *, min_minutes: int) -> None:
    """A weekly UTC window ``ddd:hh:mm-ddd:hh:mm`` (days mon..sun) of at least ``min_minutes``."""
    if not isinstance(window, str) or not _WEEKLY_RE.fullmatch(window):
        raise ArgumentError(
            field,
            window,
            "allowed: a weekly UTC window 'ddd:hh:mm-ddd:hh:mm' with days mon..sun, such as "
            "'sun:04:30-sun:05:30'",
        )
    start, end = _weekly_minutes(window)
    if (end - start) % _WEEK < min_minutes:
        raise ArgumentError(field, window, f"allowed: a window of at least {min_minutes} minutes")


def windows_overlap(weekly: str, daily: str) -> bool:
    """True when a (valid) weekly window and a (valid) daily window share any minute."""
    w_start, w_end = _weekly_minutes(weekly)
    if w_end <= w_start:
        w_end += _WEEK  # wraps Sunday -> Monday
    d_start, d_end = _daily_minutes(daily)
    if d_end <= d_start:
        d_end += 1440  # crosses midnight
    for day in range(-1, 8):
        s, e = day * 1440 + d_start, day * 1440 + d_end
        for shift in (-_WEEK, 0, _WEEK):
            if s < w_end + shift and w_start + shift < e:
                return True
    return False


def check_performance_insights_retention(field: str, days: Any) -> None:
    """7, month * 31 (1-23 months) or 731 days."""
    if days not in PERFORMANCE_INSIGHTS_RETENTION_DAYS or isinstance(days, bool):
        raise ArgumentError(
            field, days, "allowed: 7, a multiple of 31 from 31 to 713 (month * 31, 1-23 months), or 731"
        )


def check_database_insights(mode: Any, retention_days: int, *, field: str = "database_insights_mode") -> None:
    """``standard`` or ``advanced``; advanced needs Performance Insights retention >= 465 days."""
    check_choice(field, mode, ("standard", "advanced"))
    if mode == "advanced" and retention_days < ADVANCED_INSIGHTS_MIN_RETENTION_DAYS:
        raise ArgumentError(
            field,
            mode,
            f"advanced needs performance_insights_retention_days >= {ADVANCED_INSIGHTS_MIN_RETENTION_DAYS} "
            f"(is {retention_days}); use 465 (15 months), or the standard mode",
        )


def check_log_retention(field: str, days: Any) -> None:
    """A retention CloudWatch Logs accepts."""
    check_choice(field, days, LOG_RETENTION_DAYS)


RESERVED_USERNAMES = frozenset({"postgres", "rdsadmin", "admin", "rdsrepladmin", "root", "rds_superuser"})
"""Master user names refused: RDS's own roles, and well-known names a password guesser tries first."""


def check_postgres_identifier(
    field: str, value: Any, *, reserved: Iterable[str] = (), max_length: int = 63
) -> None:
    """An RDS database name (1-63) or master user name (``max_length=16``, RDS's limit): a letter,
    then letters, digits or ``_``, not one of ``reserved``."""
    pattern = rf"[A-Za-z][A-Za-z0-9_]{{0,{max_length - 1}}}"
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        raise ArgumentError(
            field, value, f"allowed: 1-{max_length} letters, digits and underscores, starting with a letter"
        )
    if value.lower() in set(reserved):
        raise ArgumentError(field, value, "allowed: a name other than " + ", ".join(sorted(reserved)))


_LABEL = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")


def check_unique_label(label: Any, used: set[str], *, owner: str) -> None:
    """A capability method's label (``allow_from``): 1-40 lowercase letters, digits and hyphens,
    not used before on ``owner`` (it names a child resource). Adds it to ``used``."""
    if not isinstance(label, str) or not _LABEL.fullmatch(label):
        raise ArgumentError(
            "label",
            label,
            "allowed: 1-40 lowercase letters, digits and hyphens, starting with a letter or digit",
        )
    if label in used:
        raise ArgumentError("label", label, f"already used on {owner}; allowed: a label unique per component")
    used.add(label)


def coerce_args(args: Any, cls: type[T], *, field: str = "args") -> T:
    """``args`` as ``cls``: an instance passes, a ``dict`` of the same fields is converted (so it is
    validated the same way), anything else is a ``TypeError`` naming the class expected. ``field``
    names the argument in the error (nested Args: ``parameters``, ``thresholds``)."""
    if isinstance(args, cls):
        return args
    if isinstance(args, dict):
        try:
            return cls(**args)
        except TypeError as exc:  # an unknown or missing field
            raise TypeError(f"{field}: {exc}; expected the fields of {cls.__name__}") from None
    raise TypeError(
        f"{field} is a {type(args).__name__}; expected {cls.__name__} (or a dict of its fields), e.g. "
        f"{cls.__name__}(...)"
    )


def stack_hash(stack: str) -> str:
    """Six hex characters of sha256(stack): a stable tag that keeps physical names of stacks apart
    when sanitising or truncation would merge them (``team.dev``/``team_dev``)."""
    return hashlib.sha256(stack.encode()).hexdigest()[:6]


def scoped_name(
    name: str,
    stack: str,
    *,
    alphabet: str = r"A-Za-z0-9-",
    sep: str = "-",
    max_length: int = 255,
    lower: bool = False,
) -> str:
    """``<name><sep><stack>`` in a physical-name alphabet, cut to ``max_length``.

    Characters outside ``alphabet`` become ``sep``. When that changes the stack part (or
    lower-casing does), or the cut reaches into it, ``<sep><stack_hash(stack)>`` ends the name, so
    distinct stacks never share one; ordinary stack names (``prod``, ``staging``) are unchanged."""
    clean_stack = re.sub(rf"[^{alphabet}]", sep, stack.lower() if lower else stack)
    raw = f"{name}{sep}{stack}"
    out = re.sub(rf"[^{alphabet}]", sep, raw.lower() if lower else raw)
    if clean_stack == stack and len(out) <= max_length:
        return out
    tag = f"{sep}{stack_hash(stack)}"
    # Runs of the separator and a dangling one are collapsed: several AWS names refuse "--".
    head = re.sub(rf"{re.escape(sep)}+", sep, out)[: max_length - len(tag)].rstrip(sep)
    return head + tag


def stack_scoped(
    name: str, *, alphabet: str = r"A-Za-z0-9-", sep: str = "-", max_length: int = 255, lower: bool = False
) -> str:
    """``<name><sep><stack>`` in a physical-name alphabet: the default of every physical name a
    component sets, so two stacks of one program in one account never share one (see
    :func:`scoped_name`: a stack name that sanitising changes or the cut reaches gets a hash)."""
    import pulumi  # the runtime's stack; imported here so the rules above stay runtime-free

    return scoped_name(
        name, pulumi.get_stack(), alphabet=alphabet, sep=sep, max_length=max_length, lower=lower
    )
