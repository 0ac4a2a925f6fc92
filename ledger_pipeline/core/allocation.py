"""Exact splits of integer minor units."""

from __future__ import annotations

from collections.abc import Sequence


def largest_remainder(amount: int, weights: Sequence[int]) -> list[int]:
    """Splits `amount` over parts in proportion to `weights`, so that the parts add up exactly.

    Every part first gets the floor of its exact share; the units left over go one each to
    the parts with the largest remainders, ties to the earlier part.

    >>> largest_remainder(100, [1, 1, 1])
    [34, 33, 33]
    """
    if amount < 0 or any(weight < 0 for weight in weights):
        raise ValueError("largest_remainder splits non-negative amounts by non-negative weights")
    whole = sum(weights)
    if whole == 0:
        if amount:
            raise ValueError(f"cannot split {amount} over parts that are all zero")
        return [0] * len(weights)

    shares = [amount * weight // whole for weight in weights]
    remainders = [amount * weight % whole for weight in weights]
    left_over = amount - sum(shares)
    by_remainder = sorted(range(len(weights)), key=lambda index: (-remainders[index], index))
    for index in by_remainder[:left_over]:
        shares[index] += 1
    return shares


def scale_half_even(amount: int, numerator: int, denominator: int) -> int:
    """`amount * numerator / denominator` rounded half to even, in integers only."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(amount * numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient
