"""Add the per-registry daily totals (registry aggregates).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Spelled out, not imported: a migration must not change when the code does.
TOTALS = (
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


def upgrade() -> None:
    op.create_table(
        "registry_totals",
        sa.Column("registry", sa.String, nullable=False),
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("group_values", sa.Text, nullable=False),
        sa.Column("currency_precision", sa.Integer, nullable=False),
        sa.Column("entries", sa.BigInteger, nullable=False),
        *(sa.Column(name, sa.BigInteger, nullable=False) for name in TOTALS),
        sa.PrimaryKeyConstraint(
            "registry", "date", "currency", "group_values", name="pk_registry_totals"
        ),
        sa.ForeignKeyConstraint(
            ["registry"],
            ["registries.name"],
            name="fk_registry_totals_registry_registries",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("registry_totals")
