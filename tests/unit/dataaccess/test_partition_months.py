"""Which monthly partitions a clock reading asks for: month ends, year ends, time zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from dataaccess.migrations import partition_months


def test_year_end_rolls_into_next_year() -> None:
    at = datetime(2030, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert partition_months(at, months_ahead=2, months_back=1) == [
        date(2030, 11, 1),
        date(2030, 12, 1),
        date(2031, 1, 1),
        date(2031, 2, 1),
    ]


def test_january_looks_back_into_previous_year() -> None:
    at = datetime(2031, 1, 1, tzinfo=UTC)
    assert partition_months(at, months_ahead=0, months_back=2) == [
        date(2030, 11, 1),
        date(2030, 12, 1),
        date(2031, 1, 1),
    ]


def test_months_are_utc_months_whatever_the_clock_zone() -> None:
    west = timezone(timedelta(hours=-8))  # 31 Jan 20:00 at -08:00 is 1 Feb 04:00 UTC
    assert partition_months(datetime(2031, 1, 31, 20, tzinfo=west), months_ahead=0) == [date(2031, 2, 1)]
    east = timezone(timedelta(hours=14))  # 1 Mar 09:00 at +14:00 is 28 Feb 19:00 UTC
    assert partition_months(datetime(2031, 3, 1, 9, tzinfo=east), months_ahead=0) == [date(2031, 2, 1)]


def test_leap_february_and_long_horizon() -> None:
    months = partition_months(datetime(2032, 2, 29, 12, tzinfo=UTC), months_ahead=24)
    assert months[0] == date(2032, 2, 1) and months[-1] == date(2034, 2, 1) and len(months) == 25
    assert len(set(months)) == 25


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"at": datetime(2031, 1, 1)}, "timezone-aware"),
        ({"at": datetime(2031, 1, 1, tzinfo=UTC), "months_ahead": -1}, "months_ahead=-1"),
        ({"at": datetime(2031, 1, 1, tzinfo=UTC), "months_back": -2}, "months_back=-2"),
    ],
)
def test_bad_input_names_what_was_wrong(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        partition_months(**kwargs)
