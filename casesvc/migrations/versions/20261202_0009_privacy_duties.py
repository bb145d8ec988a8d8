"""privacy duties: consent refusals, emergency access with its review, and the audit event's
`basis`.

Written by hand. `consents.decision` is `given` for every consent recorded before (a refusal
could not be recorded then). ADD COLUMN only, so no table is rebuilt: SQLite would cascade a
rebuild of `consents` into `consent_agencies`.

Revision ID: 20261202_0009
Revises: 20261122_0008
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = "20261202_0009"
down_revision = "20261122_0008"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("consents", sa.Column("decision", sa.String(10), nullable=False, server_default="given"))


def downgrade():
    with op.batch_alter_table("consents") as batch:
        batch.drop_column("decision")
