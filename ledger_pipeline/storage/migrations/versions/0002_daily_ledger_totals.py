"""Add daily_ledger_totals, the materialized daily roll-up.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "daily_ledger_totals",
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("account", sa.String, nullable=False),
        sa.Column("account_type", sa.String, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("entries", sa.BigInteger, nullable=False),
        sa.Column("debit", sa.BigInteger, nullable=False),
        sa.Column("credit", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("date", "account", "currency", name="pk_daily_ledger_totals"),
    )


def downgrade() -> None:
    op.drop_table("daily_ledger_totals")
