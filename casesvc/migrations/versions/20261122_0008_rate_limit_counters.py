"""rate limit counters: the token endpoint's failed-login counts, kept in the service's own
database so that every worker and host shares them.

Written by hand. One row per limit and key (`key`, the primary key, is what the upsert
conflicts on); `expires_at` is Unix time in seconds, indexed for the cleanup of expired rows.

Revision ID: 20261122_0008
Revises: 20261122_0007
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "20261122_0008"
down_revision = "20261122_0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "rate_limit_counters",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_rate_limit_counters_expires_at", "rate_limit_counters", ["expires_at"], unique=False)


def downgrade():
    op.drop_index("ix_rate_limit_counters_expires_at", table_name="rate_limit_counters")
    op.drop_table("rate_limit_counters")
