"""privacy duties: consent refusals, emergency access with its review, and the audit event's
`basis`.

Written by hand. `consents.decision` is `given` for every consent recorded before (a refusal
could not be recorded then). ADD COLUMN only, so no table is rebuilt: SQLite would cascade a
rebuild of `consents` into `consent_agencies`.

Revision ID: 20261202_0009
Revises: 20261202_0011
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "20261202_0009"
down_revision = "20261202_0011"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("consents", sa.Column("decision", sa.String(10), nullable=False, server_default="given"))
    op.create_table(
        "emergency_accesses",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("case_id", sa.String(36), sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("agency_code", sa.String(32), sa.ForeignKey("agencies.code"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_emergency_accesses_case_user", "emergency_accesses", ["case_id", "user_id", "expires_at"])
    op.create_index("ix_emergency_accesses_started", "emergency_accesses", ["started_at", "id"])
    op.create_table(
        "emergency_access_reviews",
        sa.Column(
            "access_id", sa.String(36), sa.ForeignKey("emergency_accesses.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("finding", sa.String(12), nullable=False),
        sa.Column("comment", sa.Text()),
        sa.Column("reviewed_by", sa.String(64), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(), nullable=False),
    )
    # ADD COLUMN touches no row: the append-only triggers of audit_events do not fire
    op.add_column("audit_inbox", sa.Column("basis", sa.String(16)))
    op.add_column("audit_events", sa.Column("basis", sa.String(16)))


def downgrade():
    for table in ("audit_events", "audit_inbox"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("basis")
    op.drop_table("emergency_access_reviews")
    op.drop_index("ix_emergency_accesses_started", table_name="emergency_accesses")
    op.drop_index("ix_emergency_accesses_case_user", table_name="emergency_accesses")
    op.drop_table("emergency_accesses")
    with op.batch_alter_table("consents") as batch:
        batch.drop_column("decision")
