"""The retry schedule of webhook deliveries (LEDGER.md §7): delays, jitter, Retry-After."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from ledger_pipeline.delivery.schedule import (
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    parse_retry_after,
    retry_delay,
)

SECOND = dt.timedelta(seconds=1)
MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
DRAWS = 300


def delays(attempts_made: int, retry_after: dt.timedelta | None = None) -> list[dt.timedelta]:
    """Many draws of the delay, from a seeded source."""
    source = random.Random(20241115)
    return [retry_delay(attempts_made, retry_after, source) for _ in range(DRAWS)]


def test_the_schedule_is_the_ledgers_reference():
    assert RETRY_DELAYS == (
        5 * SECOND,
        5 * MINUTE,
        30 * MINUTE,
        2 * HOUR,
        5 * HOUR,
        10 * HOUR,
        10 * HOUR,
    )
    assert MAX_ATTEMPTS == 8


@pytest.mark.parametrize(
    ("attempts_made", "shortest", "longest"),
    [
        (1, 4.5 * SECOND, 5.5 * SECOND),
        (2, 270 * SECOND, 330 * SECOND),
        (3, 27 * MINUTE, 33 * MINUTE),
        (4, 108 * MINUTE, 132 * MINUTE),
        (5, 4.5 * HOUR, 5.5 * HOUR),
        (6, 9 * HOUR, 11 * HOUR),
        (7, 9 * HOUR, 11 * HOUR),
    ],
)
def test_each_delay_is_the_scheduled_one_within_ten_percent(attempts_made, shortest, longest):
    drawn = delays(attempts_made)

    assert all(shortest <= delay <= longest for delay in drawn)


def test_the_jitter_spreads_delays_over_the_whole_band():
    drawn = delays(1)

    assert min(drawn) < 4.6 * SECOND
    assert max(drawn) > 5.4 * SECOND
    assert len(set(drawn)) > DRAWS // 2


def test_after_the_last_attempt_the_delivery_is_dead():
    assert retry_delay(8, None, random.Random(1)) is None
    assert retry_delay(8, 60 * SECOND, random.Random(1)) is None
    assert retry_delay(9, None, random.Random(1)) is None


def test_a_retry_follows_at_least_one_attempt():
    with pytest.raises(ValueError, match="attempts_made"):
        retry_delay(0, None, random.Random(1))


def test_a_retry_after_longer_than_the_schedule_replaces_it_never_earlier():
    drawn = delays(1, retry_after=60 * SECOND)

    assert all(60 * SECOND <= delay <= 66 * SECOND for delay in drawn)


def test_a_retry_after_shorter_than_the_schedule_is_ignored():
    drawn = delays(3, retry_after=10 * SECOND)

    assert all(27 * MINUTE <= delay <= 33 * MINUTE for delay in drawn)


def test_a_retry_after_of_nothing_keeps_the_schedule():
    drawn = delays(1, retry_after=dt.timedelta(0))

    assert all(4.5 * SECOND <= delay <= 5.5 * SECOND for delay in drawn)


def test_a_retry_after_beyond_a_day_waits_a_day():
    drawn = delays(2, retry_after=dt.timedelta(days=3))

    assert set(drawn) == {24 * HOUR}


NOW = dt.datetime(2015, 10, 21, 7, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120 * SECOND),
        (" 7 ", 7 * SECOND),
        ("0", dt.timedelta(0)),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 28 * MINUTE),  # IMF-fixdate
        ("Wednesday, 21-Oct-15 07:28:00 GMT", 28 * MINUTE),  # RFC 850
        ("Wed Oct 21 07:28:00 2015", 28 * MINUTE),  # asctime
        ("Wed, 21 Oct 2015 06:28:00 GMT", dt.timedelta(0)),  # already past: no delay
    ],
)
def test_retry_after_is_delay_seconds_or_an_http_date(value, expected):
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize(
    "value", [None, "", "soon", "-5", "1.5", "+30", "12abc", "9" * 30, "\u0663", "Wed, 99 Foo"]
)
def test_a_junk_retry_after_is_ignored(value):
    assert parse_retry_after(value, NOW) is None
