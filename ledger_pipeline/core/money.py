"""Currencies and money: integer minor units inside, exact decimal strings at the edge."""

from __future__ import annotations

from decimal import Decimal

from iso4217 import Currency

from ledger_pipeline.errors import UnknownCurrency


def currency_precision(code: str) -> int:
    """The number of decimals of an ISO 4217 currency (EUR 2, JPY 0, KWD 3).

    Raises:
        UnknownCurrency: the code is not an ISO 4217 currency of money (XXX, XAU and
            the like have no minor unit).
    """
    try:
        exponent = Currency(code).exponent
    except ValueError:
        raise UnknownCurrency(f"unknown currency {code!r}") from None
    if exponent is None:
        raise UnknownCurrency(f"currency {code!r} has no minor unit")
    return exponent


def format_minor(amount: int, precision: int) -> str:
    """Formats minor units as a decimal string with exactly `precision` decimals."""
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise TypeError(f"money must be an int of minor units, got {type(amount).__name__}")
    return str(Decimal(amount).scaleb(-precision).quantize(Decimal(1).scaleb(-precision)))


def parse_decimal(text: str, precision: int) -> int:
    """Parses a decimal string into minor units; more decimals than allowed is an error."""
    value = Decimal(text)
    minor = value.scaleb(precision)
    if minor != minor.to_integral_value():
        raise ValueError(f"{text!r} has more than {precision} decimals")
    return int(minor)
