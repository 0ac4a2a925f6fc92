"""A plain vectorised pandas pass over the hotel bookings: the ledger's expected debit and credit
totals, computed from the posting rules without the product's code.

Per booking with a positive stay total T (adr x nights; tax and commission are 0), the ledger
debits, over its two events:
- confirmation: T (cash or customer receivable);
- Check-Out: T (deferred revenue or revenue released), plus T more when the booking was unpaid
  (No Deposit: the receivable is paid in cash);
- No-Show: T (revenue recognised);
- Canceled with a refund (FULL): T (everything reversed);
- Canceled without refund (Non Refund, NONE): T when it was deferred (booked before arrival),
  nothing when it was revenue from the start.
Credits equal debits. A total of 0 posts nothing; the one negative adr is quarantined.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

COLUMNS = [
    "adr",
    "stays_in_weekend_nights",
    "stays_in_week_nights",
    "lead_time",
    "deposit_type",
    "reservation_status",
]


def adr_cents(adr: pd.Series) -> pd.Series:
    """Exact cents of decimal strings with at most two decimals, without floats."""
    text = adr.str.strip()
    negative = text.str.startswith("-")
    whole, _, fraction = text.str.lstrip("-").str.partition(".").T.values
    fraction = pd.Series(fraction, index=adr.index)
    if (fraction.str.len() > 2).any():
        raise ValueError("an adr has more than two decimals")
    cents = pd.Series(whole, index=adr.index).astype("int64") * 100 + fraction.str.ljust(
        2, "0"
    ).astype("int64")
    return cents.where(~negative, -cents)


def expected_totals(path: Path) -> dict[str, int]:
    """{'EUR': total debit (= total credit)} in cents."""
    bookings = pd.read_csv(path, usecols=COLUMNS, dtype={"adr": "string"})
    nights = bookings["stays_in_weekend_nights"] + bookings["stays_in_week_nights"]
    total = adr_cents(bookings["adr"]) * nights
    posted = total > 0

    status = bookings["reservation_status"]
    unpaid = bookings["deposit_type"] == "No Deposit"
    no_refund = bookings["deposit_type"] == "Non Refund"
    deferred = bookings["lead_time"] > 0
    second_event = (
        (status == "Check-Out").astype("int64") * (1 + unpaid.astype("int64"))
        + (status == "No-Show").astype("int64")
        + ((status == "Canceled") & ~no_refund).astype("int64")
        + ((status == "Canceled") & no_refund & deferred).astype("int64")
    )
    debit = int((total * (1 + second_event))[posted].sum())
    return {"EUR": debit}
