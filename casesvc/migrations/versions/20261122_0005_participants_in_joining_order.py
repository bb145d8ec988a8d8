"""case participants in joining order: a covering index on (case_id, added_at, agency_code).

Written by hand. Every case read (one case, or a page of cases) fetches its participants in the
order they joined; with this index PostgreSQL finds them by an index-only lookup per case
instead of scanning the whole table for a page of cases.

Revision ID: 20261122_0005
Revises: 20261122_0004
Create Date: 2026-11-22
"""

from alembic import op

revision = "20261122_0005"
down_revision = "20261122_0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        "ix_case_participants_case_order", "case_participants", ["case_id", "added_at", "agency_code"], unique=False
    )


def downgrade():
    op.drop_index("ix_case_participants_case_order", table_name="case_participants")
