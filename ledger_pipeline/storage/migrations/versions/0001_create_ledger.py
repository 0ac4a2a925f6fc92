"""Create the ledger: settings, order events, rejected events, ledger entries, code rules.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _money(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger, nullable=False)


def upgrade() -> None:
    op.create_table(
        "ledger_settings",
        sa.Column("id", sa.Integer, autoincrement=False, nullable=False),
        sa.Column("timezone", sa.String, nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_ledger_settings_single_row"),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_settings"),
    )

    op.create_table(
        "order_events",
        sa.Column("event_id", sa.String, nullable=False),
        sa.Column("order_id", sa.String, nullable=False),
        sa.Column("order_version", sa.Integer, nullable=False),
        sa.Column("type", sa.String, nullable=False),
        sa.Column("occurred_at", _utc(), nullable=False),
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("source", sa.String, nullable=True),
        sa.Column("line_number", sa.Integer, nullable=True),
        sa.Column("landed_at", _utc(), nullable=False),
        sa.Column("posted_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name="pk_order_events"),
        sa.UniqueConstraint(
            "order_id", "order_version", name="uq_order_events_order_id_order_version"
        ),
    )
    op.create_index("ix_order_events_date", "order_events", ["date"])
    op.create_index("ix_order_events_posted_at", "order_events", ["posted_at"])

    op.create_table(
        "rejected_events",
        sa.Column("id", sa.Integer, nullable=False),
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
        sa.Column("rejected_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rejected_events"),
    )
    op.create_index(
        "ix_rejected_events_source_line_number", "rejected_events", ["source", "line_number"]
    )
    op.create_index("ix_rejected_events_event_id", "rejected_events", ["event_id"])
    op.create_index("ix_rejected_events_date", "rejected_events", ["date"])

    op.create_table(
        "ledger_entries",
        sa.Column("entry_id", sa.String, nullable=False),
        sa.Column("event_id", sa.String, nullable=False),
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
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("occurred_at", _utc(), nullable=False),
        sa.Column("destination", sa.String, nullable=False),
        sa.Column("test", sa.Boolean, nullable=False),
        sa.Column("deferred", sa.Boolean, nullable=False),
        sa.Column("redeemed", sa.Boolean, nullable=False),
        sa.Column("noshow", sa.Boolean, nullable=False),
        sa.Column("upgraded", sa.Boolean, nullable=False),
        sa.Column("reseller", sa.String, nullable=True),
        sa.Column("reseller_band", sa.String, nullable=True),
        sa.Column("reseller_channel", sa.String, nullable=True),
        sa.Column("reseller_tags", sa.Text, nullable=False),
        sa.Column("unit", sa.String, nullable=False),
        sa.Column("option", sa.String, nullable=False),
        sa.Column("product", sa.String, nullable=False),
        sa.Column("product_tags", sa.Text, nullable=False),
        sa.Column("package_product", sa.String, nullable=True),
        sa.Column("package_option", sa.String, nullable=True),
        sa.Column("promotion", sa.String, nullable=True),
        sa.Column("promotion_tags", sa.Text, nullable=False),
        sa.Column("package_promotion", sa.String, nullable=True),
        sa.Column("package_promotion_tags", sa.Text, nullable=False),
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
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["order_events.event_id"],
            name="fk_ledger_entries_event_id_order_events",
        ),
        sa.PrimaryKeyConstraint("entry_id", name="pk_ledger_entries"),
    )
    op.create_index("ix_ledger_entries_event_id", "ledger_entries", ["event_id"])
    op.create_index("ix_ledger_entries_date", "ledger_entries", ["date"])
    op.create_index("ix_ledger_entries_order_id_key", "ledger_entries", ["order_id", "key"])

    op.create_table(
        "ledger_code_rules",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("code", sa.String, nullable=False),
        sa.Column("account", sa.String, nullable=True),
        sa.Column("product", sa.String, nullable=True),
        sa.Column("option", sa.String, nullable=True),
        sa.Column("unit", sa.String, nullable=True),
        sa.Column("order_channel", sa.String, nullable=True),
        sa.Column("order_source", sa.String, nullable=True),
        sa.Column("destination", sa.String, nullable=True),
        sa.Column("reseller", sa.String, nullable=True),
        sa.Column("sale_type", sa.String, nullable=True),
        sa.Column("currency", sa.String, nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_code_rules"),
    )
    op.create_index("ix_ledger_code_rules_position", "ledger_code_rules", ["position"])


def downgrade() -> None:
    op.drop_table("ledger_code_rules")
    op.drop_table("ledger_entries")
    op.drop_table("rejected_events")
    op.drop_table("order_events")
    op.drop_table("ledger_settings")
