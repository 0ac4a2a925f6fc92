"""When a failed webhook attempt is tried again (pure: the caller gives the clock and the
random source).

After the n-th failed attempt the next one waits `RETRY_DELAYS[n - 1]`, give or take 10 %
(jitter, so that deliveries failed together do not all come back at the same moment). A
`Retry-After` longer than that delay replaces it, plus up to 10 % of jitter upwards (never
earlier than the receiver asked), and at most `MAX_RETRY_AFTER`. A `Retry-After` shorter than
the scheduled delay is ignored: it would spend the few attempts within moments, while the
schedule is there to ride out an outage of a day and a half. After `MAX_ATTEMPTS` failed
attempts the delivery is dead.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import random as random_module

RETRY_DELAYS: tuple[dt.timedelta, ...] = (
    dt.timedelta(seconds=5),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
    dt.timedelta(hours=5),
    dt.timedelta(hours=10),
    dt.timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1

# Each scheduled delay is multiplied by a factor drawn from [1 - JITTER, 1 + JITTER].
JITTER = 0.1
# The bounds of a delay a Retry-After asks for.
MIN_RETRY_AFTER = dt.timedelta(seconds=1)
MAX_RETRY_AFTER = dt.timedelta(hours=24)


def retry_delay(
    attempts_made: int, retry_after: dt.timedelta | None, random: random_module.Random
) -> dt.timedelta | None:
    """How long to wait before the next attempt, after `attempts_made` failed attempts, or
    None when that was the last one and the delivery is dead.

    Args:
        attempts_made: failed attempts so far, 1 after the first.
        retry_after: the delay the receiver's `Retry-After` asked for, if any.
        random: the source of jitter (seed it in tests).
    """
    if attempts_made < 1:
        raise ValueError(f"attempts_made is {attempts_made}: a retry follows at least one attempt")
    if attempts_made >= MAX_ATTEMPTS:
        return None

    scheduled = RETRY_DELAYS[attempts_made - 1] * random.uniform(1 - JITTER, 1 + JITTER)
    if retry_after is None:
        return scheduled

    asked = min(max(retry_after, MIN_RETRY_AFTER), MAX_RETRY_AFTER)
    asked = min(asked * random.uniform(1, 1 + JITTER), MAX_RETRY_AFTER)
    return max(scheduled, asked)


def parse_retry_after(value: str | None, now: dt.datetime) -> dt.timedelta | None:
    """The delay a `Retry-After` header asks for: delay-seconds (`120`) or an HTTP-date
    (`Wed, 21 Oct 2015 07:28:00 GMT`, a moment in the past meaning no delay). None when the
    header is missing or is neither (junk is ignored, the schedule applies).

    Args:
        value: the header's value.
        now: the moment the response arrived (with a time zone), for an HTTP-date.
    """
    if value is None:
        return None
    value = value.strip()

    if value.isascii() and value.isdigit():
        try:
            return dt.timedelta(seconds=int(value))
        except OverflowError:  # more days than a timedelta holds: junk
            return None

    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # asctime dates and "-0000" carry no zone: HTTP-dates are GMT
        moment = moment.replace(tzinfo=dt.UTC)
    return max(moment - now, dt.timedelta(0))
