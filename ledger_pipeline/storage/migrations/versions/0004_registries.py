"""Add registries: the subscriptions that receive ledger summaries and reports.

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "registries",
        sa.Column("name", sa.String, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("destinations", sa.Text, nullable=False),
        sa.Column("entry_types", sa.Text, nullable=False),
        sa.Column("group_by", sa.Text, nullable=False),
        sa.Column("totals", sa.Text, nullable=False),
        sa.Column("include_test", sa.Boolean, nullable=False),
        sa.Column("since", _utc(), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("previous_secret", sa.Text, nullable=True),
        sa.Column("previous_secret_expires_at", _utc(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_registries"),
    )


def downgrade() -> None:
    op.drop_table("registries")
