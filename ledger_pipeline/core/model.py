"""The order event as the ledger sees it: only the fields that are posted, nothing personal.

Amounts are integers in minor units of the order's currency. These classes are built by
`ledger_pipeline.core.events.parse_event`, which checks every rule; code that builds them by
hand (tests, adapters) is trusted to respect the same rules.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum


class EventType(StrEnum):
    CONFIRMED = "confirmed"
    UPDATED = "updated"
    CANCELLED = "cancelled"
    REDEEMED = "redeemed"
    NOSHOW = "noshow"


class LineStatus(StrEnum):
    CONFIRMED = "confirmed"
    REDEEMED = "redeemed"
    NOSHOW = "noshow"
    CANCELLED = "cancelled"


class Refund(StrEnum):
    FULL = "FULL"
    PARTIAL = "PARTIAL"
    NONE = "NONE"


@dataclass(frozen=True)
class Reseller:
    id: str
    name: str
    band: str | None = None
    channel: str | None = None
    tags: tuple[str, ...] = ()
    collects_payment: bool = False


@dataclass(frozen=True)
class Promotion:
    name: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cancellation:
    """A cancellation of the whole order; `refund_amount` is set for PARTIAL only."""

    refund: Refund
    refund_amount: int | None = None


@dataclass(frozen=True)
class LineItem:
    id: str
    product: str
    option: str
    unit: str
    quantity: int
    travel_date: dt.date
    retail: int
    product_tags: tuple[str, ...] = ()
    sale_type: str | None = None
    package_product: str | None = None
    package_option: str | None = None
    pax_per_unit: int = 1
    status: LineStatus = LineStatus.CONFIRMED
    redeemed_at: dt.datetime | None = None
    discount: int = 0
    adjustment: int = 0
    tax: int = 0
    commission: int = 0
    commission_adjustment: int = 0

    @property
    def total(self) -> int:
        """What the customer pays for the line, tax included."""
        return self.retail - self.discount + self.adjustment

    @property
    def wholesale(self) -> int:
        return self.total - self.commission


@dataclass(frozen=True)
class Order:
    id: str
    version: int
    reference: str
    destination: str
    currency: str
    currency_precision: int
    items: tuple[LineItem, ...]
    test: bool = False
    channel: str | None = None
    source: str | None = None
    paid: bool = True
    reseller: Reseller | None = None
    promotion: Promotion | None = None
    cancellation: Cancellation | None = None

    @property
    def total(self) -> int:
        """The sum of the totals of the lines that are not cancelled on their own."""
        return sum(item.total for item in self.items if item.status != LineStatus.CANCELLED)


@dataclass(frozen=True)
class OrderEvent:
    event_id: str
    type: EventType
    occurred_at: dt.datetime
    order: Order
