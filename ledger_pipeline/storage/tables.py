"""The ledger's tables, in SQLAlchemy Core. Alembic migrations create them; a test checks that
the migrated schema matches this metadata on SQLite and PostgreSQL.

Conventions: times are stored in UTC and read back as aware UTC datetimes; money and measures
are integers of minor units (BIGINT); tags are the JSON text of a sorted list of strings.
Nothing here holds a raw input line: documents are the allow-listed `event_document`.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Alembic's own table is renamed so that it cannot meet another tool's (Dagster's storage
# keeps an `alembic_version` table too) when both share a database.
VERSION_TABLE = "ledger_schema_version"

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """An aware datetime stored in UTC and read back as an aware UTC datetime.

    SQLite has no time zones, so the UTC wall time is stored there without an offset.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"a naive datetime cannot be stored as UTC: {value.isoformat()}")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Tags(sa.TypeDecorator[tuple[str, ...]]):
    """A tuple of tags stored as the JSON text of their sorted list."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return json.dumps(sorted(value), ensure_ascii=False)

    def process_result_value(self, value: str | None, dialect: Any) -> tuple[str, ...] | None:
        if value is None:
            return None
        return tuple(json.loads(value))


def _money(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger, nullable=False)


ledger_settings = sa.Table(
    "ledger_settings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("timezone", sa.String, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("id = 1", name="single_row"),
)
"""One row: what was fixed when the ledger was created."""


order_events = sa.Table(
    "order_events",
    metadata,
    sa.Column("event_id", sa.String, primary_key=True),
    sa.Column("order_id", sa.String, nullable=False),
    sa.Column("order_version", sa.Integer, nullable=False),
    sa.Column("type", sa.String, nullable=False),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("source", sa.String, nullable=True),
    sa.Column("line_number", sa.Integer, nullable=True),
    sa.Column("landed_at", UTCDateTime, nullable=False),
    sa.Column("posted_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("order_id", "order_version"),
    sa.Index(None, "date"),
    sa.Index(None, "posted_at"),
)
"""Every accepted order event. `date` is the accounting date: the local date of `occurred_at`
in the ledger's time zone. `posted_at` is null until the event's entries are in the ledger."""


rejected_events = sa.Table(
    "rejected_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("outcome", sa.String, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("source", sa.String, nullable=False),
    sa.Column("line_number", sa.Integer, nullable=False),
    sa.Column("event_id", sa.String, nullable=True),
    sa.Column("order_id", sa.String, nullable=True),
    sa.Column("order_version", sa.Integer, nullable=True),
    sa.Column("document", sa.Text, nullable=True),
    sa.Column("content_hash", sa.String(64), nullable=True),
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("rejected_at", UTCDateTime, nullable=False),
    sa.Index(None, "source", "line_number"),
    sa.Index(None, "event_id"),
    sa.Index(None, "date"),
)
"""Stale and quarantined events, kept for inspection and never posted. `document` is set when
the line parsed; the raw line is never kept, as it may hold personal data. `date` is the
event's accounting date when it parsed, else the local date of the import that rejected it."""


ledger_entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("entry_id", sa.String, primary_key=True),
    sa.Column(
        "event_id", sa.String, sa.ForeignKey("order_events.event_id"), nullable=False, index=True
    ),
    sa.Column("event_type", sa.String, nullable=False),
    sa.Column("order_id", sa.String, nullable=False),
    sa.Column("order_version", sa.Integer, nullable=False),
    sa.Column("line_id", sa.String, nullable=False),
    sa.Column("account", sa.String, nullable=False),
    sa.Column("account_type", sa.String, nullable=False),
    _money("debit"),
    _money("credit"),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("currency_precision", sa.Integer, nullable=False),
    sa.Column("ledger_code", sa.String, nullable=True),
    sa.Column("description", sa.String, nullable=False),
    sa.Column("key", sa.String, nullable=False),
    sa.Column("date", sa.Date, nullable=False, index=True),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("destination", sa.String, nullable=False),
    sa.Column("test", sa.Boolean, nullable=False),
    sa.Column("deferred", sa.Boolean, nullable=False),
    sa.Column("redeemed", sa.Boolean, nullable=False),
    sa.Column("noshow", sa.Boolean, nullable=False),
    sa.Column("upgraded", sa.Boolean, nullable=False),
    sa.Column("reseller", sa.String, nullable=True),
    sa.Column("reseller_band", sa.String, nullable=True),
    sa.Column("reseller_channel", sa.String, nullable=True),
    sa.Column("reseller_tags", Tags, nullable=False),
    sa.Column("unit", sa.String, nullable=False),
    sa.Column("option", sa.String, nullable=False),
    sa.Column("product", sa.String, nullable=False),
    sa.Column("product_tags", Tags, nullable=False),
    sa.Column("package_product", sa.String, nullable=True),
    sa.Column("package_option", sa.String, nullable=True),
    sa.Column("promotion", sa.String, nullable=True),
    sa.Column("promotion_tags", Tags, nullable=False),
    sa.Column("package_promotion", sa.String, nullable=True),
    sa.Column("package_promotion_tags", Tags, nullable=False),
    sa.Column("ledger_code_account_type", sa.String, nullable=False),
    sa.Column("travel_date", sa.Date, nullable=False),
    sa.Column("redemption_date", sa.Date, nullable=True),
    sa.Column("order", sa.String, nullable=False),
    sa.Column("order_channel", sa.String, nullable=True),
    sa.Column("order_source", sa.String, nullable=True),
    sa.Column("sale_type", sa.String, nullable=True),
    _money("quantity"),
    _money("size"),
    _money("revenue_total"),
    _money("discount_total"),
    _money("adjustment_total"),
    _money("commission_adjustment_total"),
    _money("total"),
    _money("commission_total"),
    _money("wholesale_total"),
    _money("tax_total"),
    sa.Index(None, "order_id", "key"),
)
"""One row per `LedgerEntry`, one column per field of the same name. Rows are never updated."""


CODE_RULE_FIELDS = (
    "account",
    "product",
    "option",
    "unit",
    "order_channel",
    "order_source",
    "destination",
    "reseller",
    "sale_type",
    "currency",
)
"""The entry attributes a ledger-code rule can match on; a null field matches anything."""

ledger_code_rules = sa.Table(
    "ledger_code_rules",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("position", sa.Integer, nullable=False, index=True),
    sa.Column("code", sa.String, nullable=False),
    *(sa.Column(name, sa.String, nullable=True) for name in CODE_RULE_FIELDS),
    sa.Column("created_at", UTCDateTime, nullable=False),
)
"""The ordered rules that give a new ledger entry its code: the first match by position wins."""

daily_ledger_totals = sa.Table(
    "daily_ledger_totals",
    metadata,
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("account", sa.String, nullable=False),
    sa.Column("account_type", sa.String, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("entries", sa.BigInteger, nullable=False),
    sa.Column("debit", sa.BigInteger, nullable=False),
    sa.Column("credit", sa.BigInteger, nullable=False),
    sa.PrimaryKeyConstraint("date", "account", "currency"),
)
"""Debit and credit per accounting date, account and currency: the `agg_daily_ledger_totals`
model, materialized for the dates of each run."""


class NameList(sa.TypeDecorator[tuple[str, ...]]):
    """A tuple of names stored as the JSON text of a list, in the order given."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return json.dumps(list(value), ensure_ascii=False)

    def process_result_value(self, value: str | None, dialect: Any) -> tuple[str, ...] | None:
        if value is None:
            return None
        return tuple(json.loads(value))


registries = sa.Table(
    "registries",
    metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("destinations", NameList, nullable=False),
    sa.Column("entry_types", NameList, nullable=False),
    sa.Column("group_by", NameList, nullable=False),
    sa.Column("totals", NameList, nullable=False),
    sa.Column("include_test", sa.Boolean, nullable=False),
    sa.Column("since", UTCDateTime, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("previous_secret", sa.Text, nullable=True),
    sa.Column("previous_secret_expires_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)
"""One row per `Registry`, one column per field of the same name; lists are JSON text in the
registry's order. `previous_secret` stays valid until `previous_secret_expires_at`, so that a
receiver can switch to a rotated secret."""


# Registry aggregates (migration 0005)

# Every total a registry can sum (`ledger_pipeline.core.posting.TOTALS`, spelled out here as
# migration 0005 spells them, so that a new total needs a migration, not a silent mismatch).
REGISTRY_TOTAL_COLUMNS = (
    "quantity",
    "size",
    "debit",
    "credit",
    "revenue_total",
    "discount_total",
    "adjustment_total",
    "commission_adjustment_total",
    "total",
    "commission_total",
    "wholesale_total",
    "tax_total",
)

registry_totals = sa.Table(
    "registry_totals",
    metadata,
    sa.Column(
        "registry",
        sa.String,
        sa.ForeignKey("registries.name", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("group_values", sa.Text, nullable=False),
    sa.Column("currency_precision", sa.Integer, nullable=False),
    sa.Column("entries", sa.BigInteger, nullable=False),
    *(_money(name) for name in REGISTRY_TOTAL_COLUMNS),
    sa.PrimaryKeyConstraint("registry", "date", "currency", "group_values"),
)
"""A registry's totals per accounting date and group: one row per (registry, date, currency,
group). `group_values` is the canonical JSON (keys sorted, no spaces) of an object holding the
value of each of the registry's group-by columns but `currency`, which has its own column: text,
null, true or false, a date as ISO text, and for a tag column one tag (or null for entries
without tags), since a tag column gives one row per tag. Canonical text keeps every value exact
and makes the group one comparable key. Every total of `REGISTRY_TOTAL_COLUMNS` is stored as
BIGINT minor units (counts for quantity and size), whichever the registry reports, so that
changing a registry's totals needs no backfill; `entries` counts the entries summed. Deleting a
registry deletes its rows."""


# Deliveries (migration 0006)

DELIVERY_STATUSES = ("pending", "succeeded", "dead", "skipped")

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "registry",
        sa.String,
        sa.ForeignKey("registries.name", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("event_id", sa.String, sa.ForeignKey("order_events.event_id"), nullable=False),
    sa.Column("order_id", sa.String, nullable=False),
    sa.Column("order_version", sa.Integer, nullable=False),
    sa.Column("idempotency_key", sa.String(36), nullable=False),
    sa.Column("webhook_id", sa.String, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("lease_owner", sa.String, nullable=True),
    sa.Column("lease_expires_at", UTCDateTime, nullable=True),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("registry", "event_id"),
    sa.CheckConstraint(
        "status in ('pending', 'succeeded', 'dead', 'skipped')", name="known_status"
    ),
    # The claim query: due pending deliveries, then the earlier versions of their order.
    sa.Index(None, "status", "next_attempt_at"),
    sa.Index(None, "registry", "order_id", "order_version"),
    sa.Index(None, "event_id"),
)
"""The transactional outbox: one `ledger_summary` per registry and order event, queued in the
transaction that posts the event. `body` is the summary's bytes, built once and sent as they are
on every attempt. A pending delivery is due at `next_attempt_at`; a worker that claims it holds
it until `lease_expires_at` (`lease_owner` names the worker)."""

delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "delivery_id",
        sa.Integer,
        sa.ForeignKey("deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("latency_ms", sa.Integer, nullable=False),
    sa.Column("response_excerpt", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("worker", sa.String, nullable=False),
    sa.Index(None, "delivery_id", "number"),
)
"""Every POST of a delivery: the HTTP status (null when none came back), how long it took, the
start of the response (cut to a few KB) and the error, if any."""


# API keys (migration 0007)

API_KEY_SCOPES = ("read", "manage")
"""What a key may do: `read` asks for summaries and reports; `manage` also changes registries
and deliveries."""

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Column("last_used_at", UTCDateTime, nullable=True),
    sa.CheckConstraint("scope in ('read', 'manage')", name="scope"),
)
"""The reporting API's keys. `id` is the key's visible part (`lpk_<id>_...`); the key itself
is never stored, only the SHA-256 of the whole key in `token_hash`. A revoked key stays, so
that `api-key list` can say when it stopped working."""
