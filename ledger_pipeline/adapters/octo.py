"""OCTO bookings turned into order events.

OCTO (the open standard for tours, activities and attractions) describes a booking as a
snapshot: its status, its `unitItems` (one per ticket) and, with the `octo/pricing`
capability, a `pricing` object on every unit item in integer minor units. The snapshots of
one booking, in the order they were received, become its order events.

Mapping, field by field:

- booking `id`: the order id; `supplierReference` (else `id`): the order reference; event
  ids `octo-<id>-<version>`. Converting the same snapshots again gives the same events, so a
  caller may convert a booking's whole history each time it gets a new snapshot: the events
  already landed come again identical, which the landing rules take as no-ops.
- `testMode`: `test`. The destination, and the reseller (a §1 reseller object, when one sold
  the booking), are given by the caller: OCTO names neither. Channel "OCTO", source "octo";
  the order counts as paid (`paid` true).
- `status`:
  - ON_HOLD, PENDING, EXPIRED, REJECTED: not posted (no sale yet, or none at all).
  - CONFIRMED: `confirmed` at `utcConfirmedAt` for the booking's first posted version, then
    `updated` at `utcUpdatedAt`; `redeemed` instead when a line was redeemed since the
    previous posted version (at the latest `utcRedeemedAt` of those lines).
  - REDEEMED: `redeemed` at the booking's `utcRedeemedAt`; every line that is not cancelled is
    redeemed (at its own `utcRedeemedAt`, else the booking's).
  - CANCELLED: `cancelled` at `cancellation.utcCancelledAt`, refund from
    `cancellation.refund`; lines keep their status. OCTO gives no refund amount, so a PARTIAL
    refund cannot be converted.
  A booking first seen REDEEMED or CANCELLED that has a `utcConfirmedAt` gets a `confirmed`
  version first (at that time, its lines confirmed), so that its order starts as every order
  does; one never confirmed (cancelled while on hold) is not posted. A snapshot that changes
  nothing the ledger keeps is skipped.
- one line per unit item: id = the unit item's `uuid`; product = `product.internalName`
  (else `productId`); option = `option.internalName` (else `optionId`); unit =
  `unit.internalName` (else `unitId`); quantity 1; `pax_per_unit` =
  `unit.restrictions.paxCount` (else 1); `travel_date` = the local date of
  `availability.localDateTimeStart` (else the booking's `localDateTimeStart`); status from
  the unit item's status (CONFIRMED confirmed, REDEEMED or a `utcRedeemedAt` redeemed,
  CANCELLED cancelled); `redeemed_at` = `utcRedeemedAt`.
- a unit item's `pricing`: `original` (else `retail`) is the line's retail, `original -
  retail` its discount, so that the line total is OCTO's `retail`; tax = the sum of
  `includedTaxes[].retail`; commission = `retail - net` when a reseller sold the booking,
  else 0; currency and precision from `currency` and `currencyPrecision` (every unit item in
  the same currency).

Mistakes that stop a snapshot (all of them named in one `AdapterError`): an unknown status; an
ON_HOLD booking with a cancellation; a posted booking with no unit items; a CONFIRMED booking
with an ON_HOLD (or other unposted) unit item; a unit id repeated within the booking's option;
a unit item whose `unitId` is not its unit's `id`; a unit item uuid used twice; a missing or
malformed pricing; a net above retail; an original below retail; unit items in two
currencies; a reseller with no net price; a cancelled booking without a cancellation or with a
PARTIAL refund; a missing or unreadable timestamp or travel date. `check_octo_product` finds
the same id and price mistakes in a product (`GET /products`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from ledger_pipeline.errors import AdapterError

CHANNEL = "OCTO"
SOURCE = "octo"

NOT_POSTED = {"ON_HOLD", "PENDING", "EXPIRED", "REJECTED"}
POSTED = {"CONFIRMED", "REDEEMED", "CANCELLED"}
UNIT_ITEM_STATUSES = {
    "CONFIRMED": "confirmed",
    "REDEEMED": "redeemed",
    "CANCELLED": "cancelled",
}
REFUNDS = {"FULL", "PARTIAL", "NONE"}


def octo_booking_events(
    snapshots: Mapping[str, Any] | Iterable[Mapping[str, Any]],
    *,
    destination: str,
    reseller: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The order events of one OCTO booking, from its snapshots in the order received.

    Args:
        snapshots: one booking object, or the snapshots of one booking, oldest first.
        destination: the order's destination (OCTO has none).
        reseller: the reseller that sold the booking, as an order-event reseller object; its
            commission is `retail - net` per unit item. None when the supplier sold it.

    Raises:
        AdapterError: a snapshot holds a mistake; `reason` names every one found in it.
    """
    if isinstance(snapshots, Mapping):
        snapshots = [snapshots]

    events: list[dict[str, Any]] = []
    booking_id: str | None = None
    previous: dict[str, Any] | None = None
    for booking in snapshots:
        if booking_id is not None and booking.get("id") != booking_id:
            raise AdapterError(
                f"a snapshot of booking {booking.get('id')!r} among those of {booking_id!r}",
                f"OCTO booking {booking_id}",
            )
        booking_id = booking.get("id")

        order = _order(booking, destination=destination, reseller=reseller)
        if order is None:
            continue
        if previous is None and booking["status"] != "CONFIRMED":
            if booking["status"] == "CANCELLED" and not booking.get("utcConfirmedAt"):
                continue  # cancelled while on hold: never sold
            previous = _as_first_confirmed(order)
            events.append(_event(previous, "confirmed", _confirmed_at(booking), version=1))
        if previous == order:
            continue  # nothing the ledger keeps has changed

        event_type, occurred_at = _type_and_time(booking, order, previous)
        version = len(events) + 1
        events.append(_event(order, event_type, occurred_at, version=version))
        previous = order
    return events


def check_octo_product(product: Mapping[str, Any]) -> None:
    """Checks an OCTO product for repeated unit ids and prices whose net is above retail.

    Raises:
        AdapterError: naming every mistake found.
    """
    problems: list[str] = []
    for option_index, option in enumerate(product.get("options") or []):
        option_path = f"options[{option_index}]"
        problems += _repeated_unit_ids(option, option_path)
        for index, price in enumerate(option.get("pricingFrom") or []):
            problems += _price_problems(price, f"{option_path}.pricingFrom[{index}]")
        for unit_index, unit in enumerate(option.get("units") or []):
            for index, price in enumerate(unit.get("pricingFrom") or []):
                path = f"{option_path}.units[{unit_index}].pricingFrom[{index}]"
                problems += _price_problems(price, path)
    if problems:
        raise AdapterError("; ".join(problems), f"OCTO product {product.get('id')}")


# One snapshot


def _order(
    booking: Mapping[str, Any], *, destination: str, reseller: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The order as the snapshot states it, or None when the snapshot is not posted."""
    source = f"OCTO booking {booking.get('id')}"
    status = booking.get("status")
    cancellation = booking.get("cancellation")

    if status in NOT_POSTED:
        if cancellation is not None:
            raise AdapterError(f"a booking that is {status} cannot carry a cancellation", source)
        return None
    if status not in POSTED:
        raise AdapterError(f"status {status!r} is not an OCTO booking status", source)

    problems: list[str] = []
    booking_id = booking.get("id")
    if not isinstance(booking_id, str) or not booking_id.strip():
        problems.append(f"the booking id must be a non-empty string, got {booking_id!r}")
    unit_items = booking.get("unitItems") or []
    if not unit_items:
        problems.append(f"a {status} booking has no unitItems: its lines are unknown")
    problems += _repeated_unit_ids(booking.get("option") or {}, "option")
    problems += _repeated_unit_item_uuids(unit_items)

    lines: list[dict[str, Any]] = []
    currencies: set[tuple[Any, Any]] = set()
    for index, unit_item in enumerate(unit_items):
        line, currency, line_problems = _line(booking, index, unit_item, reseller)
        problems += line_problems
        if line is not None:
            lines.append(line)
            currencies.add(currency)
    if len(currencies) > 1:
        listed = ", ".join(sorted(f"{code} ({precision})" for code, precision in currencies))
        problems.append(f"unit items are priced in more than one currency: {listed}")

    order_cancellation = None
    if status == "CANCELLED":
        order_cancellation, cancellation_problems = _cancellation(cancellation)
        problems += cancellation_problems
    elif cancellation is not None:
        problems.append(f"a booking that is {status} cannot carry a cancellation")

    if problems:
        raise AdapterError("; ".join(problems), source)

    currency, precision = currencies.pop()
    return {
        "id": booking["id"],
        "version": None,  # set per event
        "reference": booking.get("supplierReference") or booking["id"],
        "destination": destination,
        "test": bool(booking.get("testMode", False)),
        "channel": CHANNEL,
        "source": SOURCE,
        "currency": currency,
        "currency_precision": precision,
        "paid": True,
        "reseller": dict(reseller) if reseller else None,
        "promotion": None,
        "cancellation": order_cancellation,
        "items": lines,
    }


def _line(
    booking: Mapping[str, Any],
    index: int,
    unit_item: Mapping[str, Any],
    reseller: Mapping[str, Any] | None,
) -> tuple[dict[str, Any] | None, tuple[Any, Any], list[str]]:
    """One unit item as a line, its (currency, precision), and the mistakes found in it."""
    path = f"unitItems[{index}]"
    problems: list[str] = []
    unit = unit_item.get("unit") or {}
    unit_id = unit_item.get("unitId")
    if unit and unit.get("id") != unit_id:
        problems.append(f"{path}.unitId {unit_id!r} is not its unit's id {unit.get('id')!r}")

    status, redeemed_at, status_problems = _line_status(booking, path, unit_item)
    problems += status_problems

    travel_date = _travel_date(booking)
    if isinstance(travel_date, _Problem):
        problems.append(travel_date.text)

    amounts, currency, price_problems = _amounts(unit_item.get("pricing"), path, reseller)
    problems += price_problems
    if problems:
        return None, currency, problems

    line = {
        "id": unit_item.get("uuid"),
        "product": _name(booking.get("product"), booking.get("productId")),
        "product_tags": [],
        "option": _name(booking.get("option"), booking.get("optionId")),
        "unit": _name(unit, unit_id),
        "sale_type": None,
        "package_product": None,
        "package_option": None,
        "quantity": 1,
        "pax_per_unit": (unit.get("restrictions") or {}).get("paxCount", 1),
        "travel_date": travel_date,
        "status": status,
        "redeemed_at": redeemed_at,
        **amounts,
        "adjustment": 0,
        "commission_adjustment": 0,
    }
    return line, currency, []


def _line_status(
    booking: Mapping[str, Any], path: str, unit_item: Mapping[str, Any]
) -> tuple[str | None, str | None, list[str]]:
    """The line's status and `redeemed_at`, and the mistakes found in them."""
    item_status = unit_item.get("status")
    status = UNIT_ITEM_STATUSES.get(item_status)
    if status is None:
        expected = ", ".join(UNIT_ITEM_STATUSES)
        booking_status = booking.get("status")
        reason = f"{path} is {item_status} in a {booking_status} booking (expected {expected})"
        return None, None, [reason]

    redeemed_at = _optional_timestamp(unit_item.get("utcRedeemedAt"), f"{path}.utcRedeemedAt")
    if isinstance(redeemed_at, _Problem):
        return None, None, [redeemed_at.text]
    if status == "cancelled":
        return status, None, []
    if redeemed_at is not None or booking.get("status") == "REDEEMED":
        status = "redeemed"
    if status != "redeemed":
        return status, None, []

    if redeemed_at is None:
        redeemed_at = _optional_timestamp(booking.get("utcRedeemedAt"), "utcRedeemedAt")
    if redeemed_at is None:
        return None, None, [f"{path} is redeemed, and no utcRedeemedAt says when"]
    if isinstance(redeemed_at, _Problem):
        return None, None, [redeemed_at.text]
    return status, redeemed_at, []


def _amounts(
    pricing: Any, path: str, reseller: Mapping[str, Any] | None
) -> tuple[dict[str, int], tuple[Any, Any], list[str]]:
    """retail, discount, tax and commission of a unit item's pricing, and its currency."""
    if not isinstance(pricing, Mapping):
        reason = f"{path} has no pricing: ask for bookings with the octo/pricing capability"
        return {}, (None, None), [reason]

    problems = _price_problems(pricing, f"{path}.pricing")
    currency = (pricing.get("currency"), pricing.get("currencyPrecision"))
    if problems:
        return {}, currency, problems

    retail = pricing["retail"]
    original = pricing.get("original")
    original = retail if original is None else original
    net = pricing.get("net")
    if reseller is not None and net is None:
        return {}, currency, [f"{path}.pricing has no net, so the reseller's commission is unknown"]

    amounts = {
        "retail": original,
        "discount": original - retail,
        "tax": sum(tax["retail"] for tax in pricing.get("includedTaxes") or []),
        "commission": retail - net if reseller is not None else 0,
    }
    return amounts, currency, []


def _price_problems(price: Mapping[str, Any], path: str) -> list[str]:
    """Mistakes in an OCTO pricing object: types, a net above retail, an original below it."""
    problems: list[str] = []
    for key in ("retail", "currencyPrecision"):
        if not _is_integer(price.get(key)):
            problems.append(f"{path}.{key} must be an integer, got {price.get(key)!r}")
    for key in ("original", "net"):
        if price.get(key) is not None and not _is_integer(price.get(key)):
            problems.append(f"{path}.{key} must be an integer or null, got {price.get(key)!r}")
    if not isinstance(price.get("currency"), str):
        problems.append(f"{path}.currency must be a string, got {price.get('currency')!r}")
    taxes = price.get("includedTaxes") or []
    for index, tax in enumerate(taxes):
        if not isinstance(tax, Mapping) or not _is_integer(tax.get("retail")):
            problems.append(f"{path}.includedTaxes[{index}].retail must be an integer")
    if problems:
        return problems

    retail, original, net = price["retail"], price.get("original"), price.get("net")
    if net is not None and net > retail:
        problems.append(f"{path} net {net} is above retail {retail}")
    if original is not None and original < retail:
        problems.append(f"{path} original {original} is below retail {retail}")
    return problems


def _repeated_unit_ids(option: Mapping[str, Any], path: str) -> list[str]:
    names_of_id: dict[Any, list[str]] = {}
    for unit in option.get("units") or []:
        names_of_id.setdefault(unit.get("id"), []).append(str(unit.get("internalName")))
    return [
        f"unit id {unit_id!r} is repeated in {path} {option.get('id')} ({', '.join(names)})"
        for unit_id, names in names_of_id.items()
        if len(names) > 1
    ]


def _repeated_unit_item_uuids(unit_items: list[Mapping[str, Any]]) -> list[str]:
    indexes_of_uuid: dict[Any, list[int]] = {}
    for index, unit_item in enumerate(unit_items):
        indexes_of_uuid.setdefault(unit_item.get("uuid"), []).append(index)
    problems = []
    for uuid, indexes in indexes_of_uuid.items():
        if not isinstance(uuid, str) or not uuid.strip():
            problems.append(f"unitItems {indexes} have no uuid")
        elif len(indexes) > 1:
            problems.append(f"unit item uuid {uuid!r} is used by unitItems {indexes}")
    return problems


def _cancellation(cancellation: Any) -> tuple[dict[str, Any] | None, list[str]]:
    if not isinstance(cancellation, Mapping):
        return None, ["a CANCELLED booking has no cancellation"]
    refund = cancellation.get("refund")
    if refund not in REFUNDS:
        return None, [f"cancellation.refund {refund!r} is not one of FULL, PARTIAL, NONE"]
    if refund == "PARTIAL":
        return None, ["cancellation.refund is PARTIAL, and OCTO gives no refund amount"]
    return {"refund": refund, "refund_amount": None}, []


def _travel_date(booking: Mapping[str, Any]) -> str | _Problem:
    start = (booking.get("availability") or {}).get("localDateTimeStart")
    start = start or booking.get("localDateTimeStart")
    if not isinstance(start, str):
        return _Problem("no availability.localDateTimeStart: the travel date is unknown")
    try:
        return dt.datetime.fromisoformat(start).date().isoformat()
    except ValueError:
        return _Problem(f"availability.localDateTimeStart {start!r} is not a date-time")


# Versions of the order


def _as_first_confirmed(order: dict[str, Any]) -> dict[str, Any]:
    """The order as it was confirmed, for a booking first seen redeemed or cancelled."""
    lines = [
        {**line, "status": "confirmed", "redeemed_at": None}
        if line["status"] == "redeemed"
        else dict(line)
        for line in order["items"]
    ]
    return {**order, "cancellation": None, "items": lines}


def _type_and_time(
    booking: Mapping[str, Any], order: Mapping[str, Any], previous: Mapping[str, Any] | None
) -> tuple[str, str]:
    source = f"OCTO booking {booking.get('id')}"
    status = booking["status"]
    if status == "CANCELLED":
        cancelled_at = booking["cancellation"].get("utcCancelledAt") or booking.get("utcUpdatedAt")
        return "cancelled", _timestamp(cancelled_at, "cancellation.utcCancelledAt", source)

    if previous is None:
        return "confirmed", _confirmed_at(booking)

    newly_redeemed = [
        line["redeemed_at"]
        for line in order["items"]
        if line["status"] == "redeemed" and not _was_redeemed(previous, line["id"])
    ]
    if newly_redeemed:
        return "redeemed", max(newly_redeemed, key=dt.datetime.fromisoformat)
    if status == "REDEEMED":
        return "redeemed", _timestamp(booking.get("utcRedeemedAt"), "utcRedeemedAt", source)
    return "updated", _timestamp(booking.get("utcUpdatedAt"), "utcUpdatedAt", source)


def _was_redeemed(previous: Mapping[str, Any] | None, line_id: str) -> bool:
    if previous is None:
        return False
    return any(line["id"] == line_id and line["status"] == "redeemed" for line in previous["items"])


def _confirmed_at(booking: Mapping[str, Any]) -> str:
    source = f"OCTO booking {booking.get('id')}"
    return _timestamp(booking.get("utcConfirmedAt"), "utcConfirmedAt", source)


def _event(order: dict[str, Any], event_type: str, occurred_at: str, *, version: int) -> dict:
    reseller = order["reseller"]
    body = {
        **order,
        "version": version,
        "reseller": {**reseller, "tags": list(reseller.get("tags", []))} if reseller else None,
        "cancellation": dict(order["cancellation"]) if order["cancellation"] else None,
        "items": [{**line, "product_tags": []} for line in order["items"]],
    }
    return {
        "event_id": f"octo-{order['id']}-{version}",
        "type": event_type,
        "occurred_at": occurred_at,
        "order": body,
    }


# Small readers


class _Problem:
    """A mistake found while reading a value, kept to be reported with the others."""

    def __init__(self, text: str):
        self.text = text


def _optional_timestamp(value: Any, path: str) -> str | _Problem | None:
    if value is None:
        return None
    try:
        return _normalised_timestamp(value)
    except ValueError:
        return _Problem(f"{path} {value!r} is not a UTC timestamp")


def _timestamp(value: Any, path: str, source: str) -> str:
    if value is None:
        raise AdapterError(f"{path} is missing", source)
    try:
        return _normalised_timestamp(value)
    except ValueError:
        raise AdapterError(f"{path} {value!r} is not a UTC timestamp", source) from None


def _normalised_timestamp(value: Any) -> str:
    """An OCTO UTC time ("2022-05-25T11:00:22Z", some vendors put a space for the T) as
    ISO 8601 with its offset written out."""
    if not isinstance(value, str):
        raise ValueError(value)
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(value)
    return moment.isoformat()


def _name(described: Any, fallback: Any) -> Any:
    if isinstance(described, Mapping) and described.get("internalName"):
        return described["internalName"]
    return fallback


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
