"""Order events in: one JSON Lines record parsed into the model, and its canonical form.

`parse_event` enforces every rule of the input contract and raises `MalformedEvent` with a
reason that names the field at fault. Only the fields the ledger posts are read (an allow-list):
every other key, personal data included, is ignored and never reaches the model.

Choices the contract leaves open, fixed here:

- A field that is absent takes its default (`paid` true, `test` false, tags empty,
  `pax_per_unit` 1, amounts other than `retail` 0). A field given as `null` is null: that is
  allowed only where the model allows None (`reseller`, `promotion`, `cancellation`, `channel`,
  `source`, `sale_type`, `package_*`, `redeemed_at`, the reseller's `band` and `channel`).
- Identifying and describing strings (event id, order id, reference, destination, line id,
  product, option, unit, reseller id and name, promotion name) may not be empty or blank.
- `cancellation` is `null` or `{"refund": "FULL"|"PARTIAL"|"NONE", "refund_amount": <int>}`;
  the amount is required for PARTIAL and must be absent or null otherwise. A `cancelled` event
  needs one; any other event type must not carry one. What was paid, for the PARTIAL check, is
  the order's total (the lines that are not cancelled on their own).
- Timestamps are ISO 8601 / RFC 3339 with seconds and a UTC offset (`Z` or `+01:00`); dates are
  `YYYY-MM-DD`. A JSON object with the same key twice, and NaN or Infinity, are bad JSON.
- Tags are kept as sorted tuples of unique strings.
- Amounts, counts, versions, dates and timestamps have bounds (`MAX_AMOUNT`, `MAX_COUNT`,
  `MAX_VERSION`, the years 1900 to 2199 in UTC): past them the ledger's sums, a moment put in
  the ledger's time zone, or a date in a pandas frame would overflow and stop later events from
  posting or summaries from being built.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from ledger_pipeline.core.model import (
    Cancellation,
    EventType,
    LineItem,
    LineStatus,
    Order,
    OrderEvent,
    Promotion,
    Refund,
    Reseller,
)
from ledger_pipeline.core.money import currency_precision
from ledger_pipeline.errors import MalformedEvent, UnknownCurrency


class Reason:
    """The wording of every reason `parse_event` gives, in one place: reasons are stored with
    quarantined events and asserted by tests, so change them here and on purpose only."""

    BAD_JSON = "bad JSON: {detail}"
    NOT_AN_OBJECT = "the event must be a JSON object, got {got}"
    MISSING = "missing field {path}"
    WRONG_TYPE = "{path} must be {expected}, got {got}"
    FLOAT_AMOUNT = "{path} is a float ({value}): amounts are integers in minor units"
    EMPTY = "{path} is empty or blank"
    NEGATIVE = "{path} is negative ({value})"
    TOO_LARGE = "{path} is beyond {limit} ({value})"
    VERSION_BELOW_ONE = "{path} must be at least 1, got {value}"
    VERSION_TOO_LARGE = "{path} must be at most {limit}, got {value}"
    NOT_ONE_OF = "{path} {value} is not one of {choices}"
    NO_UTC_OFFSET = "{path} has no UTC offset: {value}"
    OUT_OF_RANGE = "{path} {value} is out of range: dates from 1900 to 2199 are taken"
    UNKNOWN_CURRENCY = "{path} {value} is not an ISO 4217 currency with a minor unit"
    PRECISION_MISMATCH = "{path} {value} does not match {currency} ({expected})"
    NEGATIVE_TOTAL = (
        "{path} total is negative ({total}): "
        "retail {retail} - discount {discount} + adjustment {adjustment}"
    )
    ABOVE_LINE_TOTAL = "{path} {value} is above the line total {total}"
    REPEATED_LINE_ID = "{path} {value} repeats {first}"
    CANCELLATION_REQUIRED = "{path} is required when the event type is cancelled"
    CANCELLATION_FORBIDDEN = "{path} must be null unless the event type is cancelled"
    REFUND_AMOUNT_REQUIRED = "{path} is required for a PARTIAL refund"
    REFUND_AMOUNT_FORBIDDEN = "{path} must be null for a {refund} refund, got {value}"
    REFUND_ABOVE_TOTAL = "{path} {value} is above the order total {total}"


_MISSING: Any = object()

# The largest money amount (minor units, either sign) and count (quantity, pax per unit) a line
# may hold: 10 trillion in a currency of two decimals, a million units. The ledger's sums are
# 64-bit integers in the database; amounts past these would overflow them and stop posting.
MAX_AMOUNT = 10**15
MAX_COUNT = 10**6
# Versions are 32-bit integers in the database.
MAX_VERSION = 2**31 - 1
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(Z|[+-]\d{2}:\d{2})?")
_SHOWN_TEXT_LENGTH = 40


def parse_event(raw: str | bytes | Mapping[str, Any]) -> OrderEvent:
    """Parses one JSON Lines record (or an already decoded object) into an order event.

    Raises:
        MalformedEvent: the record breaks the input contract; `reason` names the field and
            the rule, `event_id` is set when the record has a readable one.
    """
    document = _decode(raw)
    event = _read_well_formed_event(document)
    if event is not None:
        return event

    event_id = document.get("event_id")
    try:
        return _read_event(_Fields(document, ""))
    except MalformedEvent as error:
        if isinstance(event_id, str) and event_id.strip():
            error.event_id = event_id
        raise


def parse_stored_event(document: str) -> OrderEvent:
    """Parses a document of a landed event (`event_document` written as JSON): as
    `parse_event`, but decoded without the check for repeated keys, which a document this
    module wrote cannot hold.

    Raises:
        MalformedEvent: as `parse_event`, if the document was changed since.
    """
    try:
        decoded = json.loads(document)
    except ValueError:
        decoded = document  # `parse_event` names what is wrong with it
    return parse_event(decoded)


def event_document(event: OrderEvent) -> dict[str, Any]:
    """The canonical, allow-listed, JSON-serialisable form of an event, shaped like the input.

    Every field is written out, defaults included. `parse_event(event_document(e)) == e` holds
    for every event `parse_event` returns.
    """
    order = event.order
    return {
        "event_id": event.event_id,
        "type": str(event.type),
        "occurred_at": event.occurred_at.isoformat(),
        "order": {
            "id": order.id,
            "version": order.version,
            "reference": order.reference,
            "destination": order.destination,
            "test": order.test,
            "channel": order.channel,
            "source": order.source,
            "currency": order.currency,
            "currency_precision": order.currency_precision,
            "paid": order.paid,
            "reseller": _reseller_document(order.reseller),
            "promotion": _promotion_document(order.promotion),
            "cancellation": _cancellation_document(order.cancellation),
            "items": [_line_document(item) for item in order.items],
        },
    }


def content_hash(event: OrderEvent) -> str:
    """The sha256 hex digest of the event's canonical JSON (sorted keys, no spaces, UTF-8)."""
    return canonical_json_hash(canonical_json(event))


def canonical_json(event: OrderEvent) -> str:
    """The event's canonical JSON: `event_document` with sorted keys, no spaces, and characters
    outside ASCII written as they are (not escaped)."""
    return _CANONICAL_ENCODER.encode(event_document(event))


# What `json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` builds
# for each call, built once.
_CANONICAL_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json_hash(canonical: str) -> str:
    """`content_hash` of the event whose `canonical_json` is given."""
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# Decoding


def _decode(raw: str | bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(raw, Mapping):
        return raw

    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            detail = f"not UTF-8 (byte {error.start})"
            raise MalformedEvent(Reason.BAD_JSON.format(detail=detail)) from None

    try:
        document = _decoded_json(raw)
    except json.JSONDecodeError as error:
        where = f"column {error.colno}"
        if error.lineno != 1:
            where = f"line {error.lineno} {where}"
        raise MalformedEvent(Reason.BAD_JSON.format(detail=f"{error.msg} at {where}")) from None
    except RecursionError:
        raise MalformedEvent(Reason.BAD_JSON.format(detail="nested too deeply")) from None

    if not isinstance(document, dict):
        raise MalformedEvent(Reason.NOT_AN_OBJECT.format(got=_kind(document)))
    return document


def _decoded_json(raw: Any) -> Any:
    """`json.loads(raw)` with the contract's rules: no repeated keys, no NaN or Infinity."""
    if type(raw) is not str:
        return json.loads(
            raw, object_pairs_hook=_object_without_repeated_keys, parse_constant=_no_constant
        )
    # What `json.loads` does with a text before it builds a decoder for the call; the one
    # decoder made below serves every call instead.
    if raw.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", raw, 0)
    return _DECODER.decode(raw)


def _object_without_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) == len(pairs):
        return document

    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            detail = f"key {_shown(key)} appears twice in one object"
            raise MalformedEvent(Reason.BAD_JSON.format(detail=detail))
        seen.add(key)
    raise AssertionError("unreachable: a shorter dict means a repeated key")


def _no_constant(name: str) -> Any:
    raise MalformedEvent(Reason.BAD_JSON.format(detail=f"{name} is not a JSON number"))


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_without_repeated_keys, parse_constant=_no_constant
)


# Reading a well-formed event in one pass
#
# Most events break no rule, and reading them field by field, each check a call that knows the
# field's path for its reason, costs more than the rest of landing an event. The functions below
# read such an event at once and give None at the first value they are not sure of: a JSON type
# other than the plain one (an object that is not a dict, a str or int subclass), a missing
# field, a value out of range. `parse_event` then reads the document field by field, which
# accepts it after all or names what is wrong. They must accept nothing `_read_event` rejects,
# and build the very same event from what they accept.

_EVENT_TYPES = {str(member): member for member in EventType}
_LINE_STATUSES = {str(member): member for member in LineStatus}
_REFUNDS = {str(member): member for member in Refund}


def _read_well_formed_event(document: Mapping[str, Any]) -> OrderEvent | None:
    if type(document) is not dict:
        return None
    event_id = document.get("event_id")
    event_type = _member(_EVENT_TYPES, document.get("type"))
    occurred_at = _well_formed_timestamp(document.get("occurred_at"))
    order_document = document.get("order")
    if not (
        _is_text(event_id)
        and event_type is not None
        and occurred_at is not None
        and type(order_document) is dict
    ):
        return None

    order = _read_well_formed_order(order_document, event_type)
    if order is None:
        return None
    return OrderEvent(event_id=event_id, type=event_type, occurred_at=occurred_at, order=order)


def _read_well_formed_order(document: dict[str, Any], event_type: EventType) -> Order | None:
    get = document.get
    order_id = get("id")
    version = get("version")
    reference = get("reference")
    destination = get("destination")
    test = get("test", False)
    channel = get("channel")
    source = get("source")
    currency = get("currency")
    precision = get("currency_precision")
    paid = get("paid", True)
    if not (
        _is_text(order_id)
        and type(version) is int
        and 1 <= version <= MAX_VERSION
        and _is_text(reference)
        and _is_text(destination)
        and type(test) is bool
        and _is_optional_text(channel)
        and _is_optional_text(source)
        and _is_text(currency)
        and type(precision) is int
        and precision == _known_precision(currency)
        and type(paid) is bool
    ):
        return None

    reseller = get("reseller")
    if reseller is not None:
        reseller = _read_well_formed_reseller(reseller)
        if reseller is None:
            return None
    promotion = get("promotion")
    if promotion is not None:
        promotion = _read_well_formed_promotion(promotion)
        if promotion is None:
            return None
    cancellation = get("cancellation")
    if cancellation is not None:
        cancellation = _read_well_formed_cancellation(cancellation)
        if cancellation is None:
            return None
    items = _read_well_formed_items(get("items"))
    if items is None:
        return None

    order = Order(
        id=order_id,
        version=version,
        reference=reference,
        destination=destination,
        currency=currency,
        currency_precision=precision,
        items=items,
        test=test,
        channel=channel,
        source=source,
        paid=paid,
        reseller=reseller,
        promotion=promotion,
        cancellation=cancellation,
    )

    if (event_type is EventType.CANCELLED) != (cancellation is not None):
        return None
    refund_amount = cancellation.refund_amount if cancellation is not None else None
    if refund_amount is not None and refund_amount > order.total:
        return None
    return order


def _read_well_formed_reseller(document: Any) -> Reseller | None:
    if type(document) is not dict:
        return None
    get = document.get
    reseller_id = get("id")
    name = get("name")
    band = get("band")
    channel = get("channel")
    tags = _well_formed_tags(get("tags", []))
    collects_payment = get("collects_payment", False)
    if not (
        _is_text(reseller_id)
        and _is_text(name)
        and _is_optional_text(band)
        and _is_optional_text(channel)
        and tags is not None
        and type(collects_payment) is bool
    ):
        return None
    return Reseller(
        id=reseller_id,
        name=name,
        band=band,
        channel=channel,
        tags=tags,
        collects_payment=collects_payment,
    )


def _read_well_formed_promotion(document: Any) -> Promotion | None:
    if type(document) is not dict:
        return None
    name = document.get("name")
    tags = _well_formed_tags(document.get("tags", []))
    if not (_is_text(name) and tags is not None):
        return None
    return Promotion(name=name, tags=tags)


def _read_well_formed_cancellation(document: Any) -> Cancellation | None:
    if type(document) is not dict:
        return None
    refund = _member(_REFUNDS, document.get("refund"))
    refund_amount = document.get("refund_amount")
    if refund is None:
        return None
    if refund_amount is not None and not _is_amount(refund_amount):
        return None
    if (refund is Refund.PARTIAL) != (refund_amount is not None):
        return None
    return Cancellation(refund=refund, refund_amount=refund_amount)


def _read_well_formed_items(documents: Any) -> tuple[LineItem, ...] | None:
    if type(documents) is not list:
        return None
    items = []
    line_ids = set()
    for document in documents:
        item = _read_well_formed_line(document)
        if item is None or item.id in line_ids:
            return None
        line_ids.add(item.id)
        items.append(item)
    return tuple(items)


def _read_well_formed_line(document: Any) -> LineItem | None:
    if type(document) is not dict:
        return None
    get = document.get
    line_id = get("id")
    product = get("product")
    product_tags = _well_formed_tags(get("product_tags", []))
    option = get("option")
    unit = get("unit")
    sale_type = get("sale_type")
    package_product = get("package_product")
    package_option = get("package_option")
    quantity = get("quantity")
    pax_per_unit = get("pax_per_unit", 1)
    travel_date = get("travel_date")
    travel_date = _parsed_date(travel_date) if type(travel_date) is str else None
    if travel_date is _OUT_OF_RANGE:
        return None
    status = _member(_LINE_STATUSES, get("status"))
    redeemed_at = get("redeemed_at")
    retail = get("retail")
    discount = get("discount", 0)
    adjustment = get("adjustment", 0)
    tax = get("tax", 0)
    commission = get("commission", 0)
    commission_adjustment = get("commission_adjustment", 0)
    if redeemed_at is not None:
        redeemed_at = _well_formed_timestamp(redeemed_at)
        if redeemed_at is None:
            return None
    if not (
        _is_text(line_id)
        and _is_text(product)
        and product_tags is not None
        and _is_text(option)
        and _is_text(unit)
        and _is_optional_text(sale_type)
        and _is_optional_text(package_product)
        and _is_optional_text(package_option)
        and _is_count(quantity)
        and _is_count(pax_per_unit)
        and travel_date is not None
        and status is not None
        and _is_amount(retail)
        and _is_amount(discount)
        and _is_amount(adjustment, may_be_negative=True)
        and _is_amount(tax)
        and _is_amount(commission)
        and _is_amount(commission_adjustment, may_be_negative=True)
    ):
        return None

    total = retail - discount + adjustment
    if total < 0 or tax > total or commission > total:
        return None
    return LineItem(
        id=line_id,
        product=product,
        product_tags=product_tags,
        option=option,
        unit=unit,
        sale_type=sale_type,
        package_product=package_product,
        package_option=package_option,
        quantity=quantity,
        pax_per_unit=pax_per_unit,
        travel_date=travel_date,
        status=status,
        redeemed_at=redeemed_at,
        retail=retail,
        discount=discount,
        adjustment=adjustment,
        tax=tax,
        commission=commission,
        commission_adjustment=commission_adjustment,
    )


def _member(members: Mapping[str, Any], value: Any) -> Any:
    """The enum member named by a value, or None."""
    return members.get(value) if type(value) is str else None


def _is_text(value: Any) -> bool:
    return type(value) is str and bool(value.strip())


def _is_optional_text(value: Any) -> bool:
    return value is None or type(value) is str


def _is_count(value: Any) -> bool:
    """An int, not a bool, from 0 to `MAX_COUNT`."""
    return type(value) is int and 0 <= value <= MAX_COUNT


def _is_amount(value: Any, *, may_be_negative: bool = False) -> bool:
    """Money in minor units: an int, not a bool, within `MAX_AMOUNT` (and not negative
    unless allowed)."""
    if type(value) is not int:
        return False
    return -MAX_AMOUNT <= value <= MAX_AMOUNT if may_be_negative else 0 <= value <= MAX_AMOUNT


def _well_formed_timestamp(value: Any) -> dt.datetime | None:
    parsed = _parsed_timestamp(value) if type(value) is str else None
    return None if parsed is _NO_UTC_OFFSET or parsed is _OUT_OF_RANGE else parsed


def _well_formed_tags(value: Any) -> tuple[str, ...] | None:
    if type(value) is not list:
        return None
    for tag in value:
        if type(tag) is not str:
            return None
    return tuple(sorted(set(value)))


@functools.lru_cache(maxsize=256)
def _known_precision(currency: str) -> int | None:
    """The currency's number of decimals; None when it is no ISO 4217 currency of money."""
    try:
        return currency_precision(currency)
    except UnknownCurrency:
        return None


# Reading the allow-listed fields, each with the reason it breaks a rule


def _read_event(fields: _Fields) -> OrderEvent:
    event_id = fields.text("event_id")
    event_type = EventType(fields.choice("type", EventType))
    occurred_at = fields.timestamp("occurred_at")
    order = _read_order(fields.object("order"), event_type)
    return OrderEvent(event_id=event_id, type=event_type, occurred_at=occurred_at, order=order)


def _read_order(fields: _Fields, event_type: EventType) -> Order:
    order_id = fields.text("id")
    version = fields.integer("version")
    if version < 1:
        raise fields.malformed(Reason.VERSION_BELOW_ONE, "version", value=version)
    if version > MAX_VERSION:
        raise fields.malformed(
            Reason.VERSION_TOO_LARGE, "version", limit=MAX_VERSION, value=_shown(version)
        )
    reference = fields.text("reference")
    destination = fields.text("destination")
    test = fields.boolean("test", default=False)
    channel = fields.optional_text("channel")
    source = fields.optional_text("source")
    currency, precision = _read_currency(fields)
    paid = fields.boolean("paid", default=True)
    reseller = _read_reseller(fields.optional_object("reseller"))
    promotion = _read_promotion(fields.optional_object("promotion"))
    cancellation = _read_cancellation(fields.optional_object("cancellation"))
    items = _read_items(fields)

    order = Order(
        id=order_id,
        version=version,
        reference=reference,
        destination=destination,
        currency=currency,
        currency_precision=precision,
        items=items,
        test=test,
        channel=channel,
        source=source,
        paid=paid,
        reseller=reseller,
        promotion=promotion,
        cancellation=cancellation,
    )

    _check_cancellation(fields, event_type, order)
    return order


def _read_currency(fields: _Fields) -> tuple[str, int]:
    currency = fields.text("currency")
    try:
        expected = currency_precision(currency)
    except UnknownCurrency:
        raise fields.malformed(
            Reason.UNKNOWN_CURRENCY, "currency", value=_shown(currency)
        ) from None

    precision = fields.integer("currency_precision")
    if precision != expected:
        raise fields.malformed(
            Reason.PRECISION_MISMATCH,
            "currency_precision",
            value=precision,
            currency=currency,
            expected=expected,
        )
    return currency, precision


def _read_reseller(fields: _Fields | None) -> Reseller | None:
    if fields is None:
        return None
    return Reseller(
        id=fields.text("id"),
        name=fields.text("name"),
        band=fields.optional_text("band"),
        channel=fields.optional_text("channel"),
        tags=fields.tags("tags"),
        collects_payment=fields.boolean("collects_payment", default=False),
    )


def _read_promotion(fields: _Fields | None) -> Promotion | None:
    if fields is None:
        return None
    return Promotion(name=fields.text("name"), tags=fields.tags("tags"))


def _read_cancellation(fields: _Fields | None) -> Cancellation | None:
    if fields is None:
        return None
    refund = Refund(fields.choice("refund", Refund))

    refund_amount = fields.optional_amount("refund_amount")
    if refund is Refund.PARTIAL and refund_amount is None:
        raise fields.malformed(Reason.REFUND_AMOUNT_REQUIRED, "refund_amount")
    if refund is not Refund.PARTIAL and refund_amount is not None:
        raise fields.malformed(
            Reason.REFUND_AMOUNT_FORBIDDEN, "refund_amount", refund=refund, value=refund_amount
        )
    return Cancellation(refund=refund, refund_amount=refund_amount)


def _read_items(fields: _Fields) -> tuple[LineItem, ...]:
    items: list[LineItem] = []
    first_path_of_id: dict[str, str] = {}
    for item_fields in fields.objects("items"):
        item = _read_line(item_fields)
        id_path = item_fields.path_of("id")
        if item.id in first_path_of_id:
            raise item_fields.malformed(
                Reason.REPEATED_LINE_ID,
                "id",
                value=_shown(item.id),
                first=first_path_of_id[item.id],
            )
        first_path_of_id[item.id] = id_path
        items.append(item)
    return tuple(items)


def _read_line(fields: _Fields) -> LineItem:
    item = LineItem(
        id=fields.text("id"),
        product=fields.text("product"),
        product_tags=fields.tags("product_tags"),
        option=fields.text("option"),
        unit=fields.text("unit"),
        sale_type=fields.optional_text("sale_type"),
        package_product=fields.optional_text("package_product"),
        package_option=fields.optional_text("package_option"),
        quantity=fields.count("quantity"),
        pax_per_unit=fields.count("pax_per_unit", default=1),
        travel_date=fields.date("travel_date"),
        status=LineStatus(fields.choice("status", LineStatus)),
        redeemed_at=fields.optional_timestamp("redeemed_at"),
        retail=fields.amount("retail"),
        discount=fields.amount("discount", default=0),
        adjustment=fields.amount("adjustment", default=0, may_be_negative=True),
        tax=fields.amount("tax", default=0),
        commission=fields.amount("commission", default=0),
        commission_adjustment=fields.amount(
            "commission_adjustment", default=0, may_be_negative=True
        ),
    )

    if item.total < 0:
        raise fields.malformed(
            Reason.NEGATIVE_TOTAL,
            None,
            total=item.total,
            retail=item.retail,
            discount=item.discount,
            adjustment=item.adjustment,
        )
    if item.tax > item.total:
        raise fields.malformed(Reason.ABOVE_LINE_TOTAL, "tax", value=item.tax, total=item.total)
    if item.commission > item.total:
        raise fields.malformed(
            Reason.ABOVE_LINE_TOTAL, "commission", value=item.commission, total=item.total
        )
    return item


def _check_cancellation(fields: _Fields, event_type: EventType, order: Order) -> None:
    cancellation = order.cancellation
    if event_type is EventType.CANCELLED and cancellation is None:
        raise fields.malformed(Reason.CANCELLATION_REQUIRED, "cancellation")
    if event_type is not EventType.CANCELLED and cancellation is not None:
        raise fields.malformed(Reason.CANCELLATION_FORBIDDEN, "cancellation")

    refund_amount = cancellation.refund_amount if cancellation is not None else None
    if refund_amount is not None and refund_amount > order.total:
        raise fields.malformed(
            Reason.REFUND_ABOVE_TOTAL,
            "cancellation.refund_amount",
            value=refund_amount,
            total=order.total,
        )


class _Fields:
    """The fields of one JSON object, each read with its type checked and named by its path."""

    def __init__(self, document: Mapping[str, Any], path: str):
        self.document = document
        self.path = path

    def path_of(self, key: str | None) -> str:
        if key is None:
            return self.path
        return f"{self.path}.{key}" if self.path else key

    def malformed(self, template: str, key: str | None, **values: Any) -> MalformedEvent:
        return MalformedEvent(template.format(path=self.path_of(key), **values))

    def _value(self, key: str, default: Any = _MISSING) -> Any:
        value = self.document.get(key, _MISSING)
        if value is not _MISSING:
            return value
        if default is _MISSING:
            raise self.malformed(Reason.MISSING, key)
        return default

    def _wrong_type(self, key: str, expected: str, value: Any) -> MalformedEvent:
        return self.malformed(Reason.WRONG_TYPE, key, expected=expected, got=_kind(value))

    def text(self, key: str) -> str:
        """A required string that is not empty or blank."""
        value = self._value(key)
        if not isinstance(value, str):
            raise self._wrong_type(key, "a string", value)
        if not value.strip():
            raise self.malformed(Reason.EMPTY, key)
        return value

    def optional_text(self, key: str) -> str | None:
        value = self._value(key, default=None)
        if value is not None and not isinstance(value, str):
            raise self._wrong_type(key, "a string or null", value)
        return value

    def choice(self, key: str, choices: type[StrEnum]) -> str:
        value = self._value(key)
        if not isinstance(value, str):
            raise self._wrong_type(key, "a string", value)
        if value not in _choice_values(choices):
            names = ", ".join(str(choice) for choice in choices)
            raise self.malformed(Reason.NOT_ONE_OF, key, value=_shown(value), choices=names)
        return value

    def boolean(self, key: str, *, default: bool) -> bool:
        value = self._value(key, default=default)
        if not isinstance(value, bool):
            raise self._wrong_type(key, "a boolean", value)
        return value

    def integer(self, key: str, default: int = _MISSING) -> int:
        value = self._value(key, default=default)
        if not _is_integer(value):
            raise self._wrong_type(key, "an integer", value)
        return value

    def count(self, key: str, default: int = _MISSING) -> int:
        """A number of units or people: an integer that is not negative."""
        value = self.integer(key, default=default)
        if value < 0:
            raise self.malformed(Reason.NEGATIVE, key, value=_shown(value))
        if value > MAX_COUNT:
            raise self.malformed(Reason.TOO_LARGE, key, limit=MAX_COUNT, value=_shown(value))
        return value

    def amount(self, key: str, *, default: int = _MISSING, may_be_negative: bool = False) -> int:
        """Money in minor units: an integer, never a float, negative only where allowed."""
        value = self._value(key, default=default)
        if isinstance(value, float):
            raise self.malformed(Reason.FLOAT_AMOUNT, key, value=_shown(value))
        if not _is_integer(value):
            raise self._wrong_type(key, "an integer", value)
        if value < 0 and not may_be_negative:
            raise self.malformed(Reason.NEGATIVE, key, value=_shown(value))
        if abs(value) > MAX_AMOUNT:
            limit = f"-{MAX_AMOUNT}..{MAX_AMOUNT}" if may_be_negative else MAX_AMOUNT
            raise self.malformed(Reason.TOO_LARGE, key, limit=limit, value=_shown(value))
        return value

    def optional_amount(self, key: str) -> int | None:
        if self._value(key, default=None) is None:
            return None
        return self.amount(key)

    def date(self, key: str) -> dt.date:
        value = self._value(key)
        parsed = _parsed_date(value) if isinstance(value, str) else None
        if parsed is _OUT_OF_RANGE:
            raise self.malformed(Reason.OUT_OF_RANGE, key, value=_shown(value))
        if parsed is None:
            raise self._wrong_type(key, "a date as YYYY-MM-DD", value)
        return parsed

    def timestamp(self, key: str) -> dt.datetime:
        value = self._value(key)
        parsed = _parsed_timestamp(value) if isinstance(value, str) else None
        if parsed is _NO_UTC_OFFSET:
            raise self.malformed(Reason.NO_UTC_OFFSET, key, value=_shown(value))
        if parsed is _OUT_OF_RANGE:
            raise self.malformed(Reason.OUT_OF_RANGE, key, value=_shown(value))
        if parsed is None:
            raise self._wrong_type(key, "an ISO 8601 timestamp with a UTC offset", value)
        return parsed

    def optional_timestamp(self, key: str) -> dt.datetime | None:
        if self._value(key, default=None) is None:
            return None
        return self.timestamp(key)

    def tags(self, key: str) -> tuple[str, ...]:
        """A list of strings, kept sorted and without repeats."""
        value = self._value(key, default=[])
        if not isinstance(value, list):
            raise self._wrong_type(key, "a list of strings", value)
        for index, tag in enumerate(value):
            if not isinstance(tag, str):
                raise self._wrong_type(f"{key}[{index}]", "a string", tag)
        return tuple(sorted(set(value)))

    def object(self, key: str) -> _Fields:
        value = self._value(key)
        if not isinstance(value, Mapping):
            raise self._wrong_type(key, "an object", value)
        return _Fields(value, self.path_of(key))

    def optional_object(self, key: str) -> _Fields | None:
        value = self._value(key, default=None)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self._wrong_type(key, "an object or null", value)
        return _Fields(value, self.path_of(key))

    def objects(self, key: str) -> list[_Fields]:
        """A required list of objects (it may be empty)."""
        value = self._value(key)
        if not isinstance(value, list):
            raise self._wrong_type(key, "a list", value)
        fields = []
        for index, element in enumerate(value):
            element_key = f"{key}[{index}]"
            if not isinstance(element, Mapping):
                raise self._wrong_type(element_key, "an object", element)
            fields.append(_Fields(element, self.path_of(element_key)))
        return fields


# Dates and times repeat across the events of a file, so each text is parsed once.
_PARSED_CACHE_SIZE = 65536
_NO_UTC_OFFSET: Any = object()
_OUT_OF_RANGE: Any = object()
# The dates and moments taken: wide for bookings, and within what every part of the pipeline
# can hold (pandas' timestamps end in 1677 and 2262; a time zone moves a moment by a day).
_FIRST_DATE = dt.date(1900, 1, 1)
_LAST_DATE = dt.date(2199, 12, 31)
_EARLIEST = dt.datetime.combine(_FIRST_DATE, dt.time(), tzinfo=dt.UTC)
_LATEST = dt.datetime.combine(_LAST_DATE, dt.time.max, tzinfo=dt.UTC)


@functools.lru_cache(maxsize=_PARSED_CACHE_SIZE)
def _parsed_date(value: str) -> dt.date | None:
    """The date a `YYYY-MM-DD` text names; `_OUT_OF_RANGE` when it is outside the dates
    taken, None when it is not one."""
    if not _DATE.fullmatch(value):
        return None
    try:
        date = dt.date.fromisoformat(value)
    except ValueError:
        return None
    return date if _FIRST_DATE <= date <= _LAST_DATE else _OUT_OF_RANGE


@functools.lru_cache(maxsize=_PARSED_CACHE_SIZE)
def _parsed_timestamp(value: str) -> dt.datetime | None:
    """The moment an ISO 8601 text with a UTC offset names; `_NO_UTC_OFFSET` when it has no
    offset, `_OUT_OF_RANGE` when it is outside the moments taken, None when it is not a
    timestamp."""
    match = _TIMESTAMP.fullmatch(value)
    if match is None:
        return None
    if match.group(1) is None:
        return _NO_UTC_OFFSET
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if _EARLIEST <= moment <= _LATEST else _OUT_OF_RANGE


@functools.cache
def _choice_values(choices: type[StrEnum]) -> frozenset[str]:
    return frozenset(str(choice) for choice in choices)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    """How a value is named in a reason: its JSON kind, and the value itself when it is short
    (strings are cut, lists and objects are never shown, so no personal data leaks)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {_shown(value)}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"float {_shown(value)}"
    if isinstance(value, str):
        return f"string {_shown(value)}"
    if isinstance(value, list):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if len(value) > _SHOWN_TEXT_LENGTH:
            return repr(value[:_SHOWN_TEXT_LENGTH] + "...")
        return repr(value)
    if isinstance(value, int) and abs(value) >= 10**_SHOWN_TEXT_LENGTH:
        return f"an integer of {len(str(abs(value)))} digits"
    return repr(value)


# Writing the canonical document


def _reseller_document(reseller: Reseller | None) -> dict[str, Any] | None:
    if reseller is None:
        return None
    return {
        "id": reseller.id,
        "name": reseller.name,
        "band": reseller.band,
        "channel": reseller.channel,
        "tags": sorted(set(reseller.tags)),
        "collects_payment": reseller.collects_payment,
    }


def _promotion_document(promotion: Promotion | None) -> dict[str, Any] | None:
    if promotion is None:
        return None
    return {"name": promotion.name, "tags": sorted(set(promotion.tags))}


def _cancellation_document(cancellation: Cancellation | None) -> dict[str, Any] | None:
    if cancellation is None:
        return None
    return {"refund": str(cancellation.refund), "refund_amount": cancellation.refund_amount}


def _line_document(item: LineItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "product": item.product,
        "product_tags": sorted(set(item.product_tags)),
        "option": item.option,
        "unit": item.unit,
        "sale_type": item.sale_type,
        "package_product": item.package_product,
        "package_option": item.package_option,
        "quantity": item.quantity,
        "pax_per_unit": item.pax_per_unit,
        "travel_date": item.travel_date.isoformat(),
        "status": str(item.status),
        "redeemed_at": item.redeemed_at.isoformat() if item.redeemed_at is not None else None,
        "retail": item.retail,
        "discount": item.discount,
        "adjustment": item.adjustment,
        "tax": item.tax,
        "commission": item.commission,
        "commission_adjustment": item.commission_adjustment,
    }
