"""The reporting API's request and response bodies, as pydantic models: they validate what comes
in and describe, in the OpenAPI schema, what goes out.

Payloads (summaries, report rows) are built by `ledger_pipeline.core.payloads` and sent as they
are; their models here describe them for the schema and for clients, they do not rebuild them.
Money is a decimal string with exactly the currency's decimals, never a JSON number.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

from ledger_pipeline.core.model import EventType
from ledger_pipeline.core.posting import ACCOUNTS, COLUMNS, TOTALS
from ledger_pipeline.core.registry import NAME_PATTERN, Registry
from ledger_pipeline.storage.deliveries import Delivery

_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")


def _date_text(value: object) -> object:
    """Only `YYYY-MM-DD` is a date here (pydantic alone would take `0` or a date and time)."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not _DATE_TEXT.fullmatch(value):
        raise ValueError("use a date as YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError as error:
        raise ValueError(f"{value} is not a date ({error}): use a date as YYYY-MM-DD") from None


IsoDate = Annotated[
    dt.date,
    BeforeValidator(_date_text),
    Field(description="A date as YYYY-MM-DD.", examples=["2024-11-01"]),
]
RegistryName = Annotated[
    str,
    Field(
        pattern=f"^{NAME_PATTERN.pattern}$",
        description="A registry's name: 1 to 63 of a-z, 0-9, '_' and '-', starting with a "
        "letter or a digit.",
        examples=["books"],
    ),
]
Money = Annotated[
    str,
    Field(
        pattern=r"^-?[0-9]+(\.[0-9]+)?$",
        description="An exact amount: a decimal string with exactly the currency's decimals.",
        examples=["38.00"],
    ),
]
Account = Literal[tuple(ACCOUNTS)]  # type: ignore[valid-type]
Column = Literal[COLUMNS]  # type: ignore[valid-type]
Total = Literal[TOTALS]  # type: ignore[valid-type]
Event = Literal[tuple(str(member) for member in EventType)]  # type: ignore[valid-type]
ReportFormat = Literal["json", "csv"]


# Errors


class ErrorDetail(BaseModel):
    code: str = Field(description="What went wrong, for a program.", examples=["unknown_registry"])
    message: str = Field(
        description="What went wrong and what to do about it, for a person.",
        examples=["unknown registry 'bokos': check the name"],
    )


class ErrorBody(BaseModel):
    """Every error response: 4xx and 5xx alike."""

    error: ErrorDetail


# Payloads


class RangeQuery(BaseModel):
    """A registry and a range of accounting dates, both included."""

    model_config = ConfigDict(extra="forbid", populate_by_name=False)

    registry: RegistryName
    date_from: IsoDate = Field(alias="from", description="The first accounting date.")
    date_to: IsoDate = Field(alias="to", description="The last accounting date, included.")


class ReportQuery(RangeQuery):
    format: ReportFormat = Field(
        "json", description="json: an array of rows; csv: text/csv with a header row."
    )


class SummaryEntry(BaseModel):
    """One group of an event's ledger entries. The registry's group-by columns are added as
    fields of their own names (dates as ISO text, tag columns as sorted lists)."""

    model_config = ConfigDict(extra="allow")

    ledger_code: str | None
    account: Account
    currency: str = Field(examples=["EUR"])
    quantity: int = Field(description="Net units: positive on a credit, negative on a debit.")
    debit: Money
    credit: Money
    description: str = Field(examples=["Museum General Admission"])


class LedgerSummary(BaseModel):
    """The ledger entries one order event posted, as a registry takes them."""

    order_id: str
    idempotency_key: str = Field(
        description="The same for every retry, replay or re-derivation of this summary.",
        examples=["5ffd8c8c-0000-5000-8000-000000000000"],
    )
    event: Event
    order_version: int
    occurred_at: str = Field(
        description="The event's moment in UTC (ISO 8601, Z).", examples=["2024-11-15T08:24:00Z"]
    )
    ledger_entries: list[SummaryEntry]


class ReportRow(BaseModel):
    """One group of a report: the registry's group-by columns and currency, then its totals
    (money totals as decimal strings, quantity and size as integers)."""

    model_config = ConfigDict(extra="allow")

    currency: str = Field(examples=["EUR"])


# Registries


class RegistryView(BaseModel):
    """A registry as stored; never its secret."""

    name: RegistryName
    url: str
    destinations: list[str] = Field(description="Empty: every destination.")
    entry_types: list[Account] = Field(description="Empty: every account.")
    group_by: list[Column]
    totals: list[Total]
    include_test: bool
    since: dt.datetime = Field(description="Deliveries cover events posted from this moment.")
    enabled: bool
    secret_rotated_at: dt.datetime | None = Field(
        description="When the secret was last replaced; null if it never was."
    )
    previous_secret_valid_until: dt.datetime | None = Field(
        description="Until when the secret before the last rotation still signs deliveries."
    )
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, registry: Registry) -> RegistryView:
        return cls(
            name=registry.name,
            url=registry.url,
            destinations=list(registry.destinations),
            entry_types=list(registry.entry_types),
            group_by=list(registry.group_by),
            totals=list(registry.totals),
            include_test=registry.include_test,
            since=registry.since,
            enabled=registry.enabled,
            secret_rotated_at=registry.secret_rotated_at,
            previous_secret_valid_until=registry.previous_secret_expires_at,
            created_at=registry.created_at,
            updated_at=registry.updated_at,
        )


class RegistryCreated(RegistryView):
    secret: str | None = Field(
        description="The generated signing secret, shown this once: keep it where the receiver "
        "verifies signatures. Null when the request gave the secret."
    )


class SecretRotated(BaseModel):
    name: RegistryName
    secret: str = Field(description="The new signing secret, shown this once.")
    previous_secret_valid_until: dt.datetime = Field(
        description="The previous secret signs deliveries too until then."
    )


# The patterns of `url` and `since` are for the schema's readers; the registry's own checks,
# stricter and with messages that say what to fix, refuse what they do not match.
_SINCE = Field(
    None,
    description="Deliver events posted from this moment: a date (YYYY-MM-DD, its midnight in "
    "the ledger's time zone) or an ISO 8601 date and time. Default: the registry's creation.",
    examples=["2024-11-01"],
    json_schema_extra={"pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.]+([+-][0-9:]+|Z)?)?$"},
)
_URL_SCHEMA = {"format": "uri", "pattern": "^https?://"}
_SECRET = Field(
    None,
    description="A signing secret: whsec_ and the base64 of at least 24 random bytes. Default: "
    "generated.",
)


class RegistryDefinition(BaseModel):
    """A new registry. Fields left out take their defaults."""

    model_config = ConfigDict(extra="forbid")

    name: RegistryName
    url: str = Field(
        description="An http or https URL with a host.",
        examples=["https://books.example/hooks"],
        json_schema_extra=_URL_SCHEMA,
    )
    destinations: list[str] = Field([], description="Empty: every destination.")
    entry_types: list[Account] = Field([], description="Empty: every account.")
    group_by: list[Column] = Field([], description="In this order; it orders a report's rows.")
    totals: list[Total] = Field([], description="Empty: debit and credit.")
    # Strict: "yes" or 1 for a flag is a mistake to report, as a registry file reports it.
    include_test: StrictBool = False
    since: str | None = _SINCE
    enabled: StrictBool = True
    secret: str | None = _SECRET


class RegistryChanges(BaseModel):
    """Changes to a registry: a field given replaces the stored value (a list given as [] goes
    back to its default), a field left out or null stays as it is. A new secret is a rotation:
    the old one stays valid for 24 hours."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, json_schema_extra=_URL_SCHEMA)
    destinations: list[str] | None = None
    entry_types: list[Account] | None = None
    group_by: list[Column] | None = None
    totals: list[Total] | None = None
    include_test: StrictBool | None = None
    since: str | None = _SINCE
    secret: str | None = _SECRET


class RegistryFile(BaseModel):
    """Registries to create or update so that they equal these definitions, all or none. A
    field left out takes its default, except enabled and secret, which stay as they are."""

    model_config = ConfigDict(extra="forbid")

    registries: list[RegistryDefinition] = Field(
        description="Registry definitions, with the fields of a new registry."
    )


class RegistryApplied(BaseModel):
    name: RegistryName
    action: Literal["created", "updated", "unchanged"]
    fields: list[str] = Field(description="The fields an update changed.")
    secret: str | None = Field(
        description="The generated secret of a created registry that was given none, shown "
        "this once."
    )


# Deliveries

DeliveryStatus = Literal["pending", "succeeded", "dead", "skipped"]
MAX_DELIVERIES_LISTED = 1000


class DeliveryQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["pending", "failing", "succeeded", "dead", "skipped"] | None = Field(
        None, description="Only these; failing: pending with a failed attempt."
    )
    registry: RegistryName | None = Field(None, description="Only this registry's.")
    limit: int = Field(100, ge=1, le=MAX_DELIVERIES_LISTED, description="At most this many.")


class DeliveryView(BaseModel):
    """A webhook delivery: one ledger_summary for one registry and order event. Never its
    body."""

    id: int
    registry: RegistryName
    event_id: str
    order_id: str
    order_version: int
    idempotency_key: str
    webhook_id: str
    status: DeliveryStatus
    attempts: int = Field(description="Attempts since it was queued or last replayed.")
    next_attempt_at: dt.datetime
    last_status_code: int | None
    last_error: str | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    body_bytes: int

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryView:
        return cls(
            **{name: getattr(delivery, name) for name in cls.model_fields},
        )


class AttemptView(BaseModel):
    """One POST of a delivery, as recorded."""

    number: int
    started_at: dt.datetime
    status_code: int | None = Field(description="Null when no answer came (a network error).")
    latency_ms: int
    response_excerpt: str | None = Field(description="The start of the receiver's answer.")
    error: str | None
    worker: str


class DeliveryDetailView(DeliveryView):
    attempts_made: list[AttemptView] = Field(description="Every attempt, oldest first.")
