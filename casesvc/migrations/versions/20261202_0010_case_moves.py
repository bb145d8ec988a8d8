"""case moves: the history of handovers of the lead and transfers to another municipality.

Written by hand. One row per move; the reason is free text kept here, outside the audit chain.
Served newest first by a (case_id, created_at, id) index for keyset pagination; a case's moves
go with the case when retention deletes it.

Revision ID: 20261202_0010
Revises: 20261122_0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "20261202_0010"
down_revision = "20261122_0008"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "case_moves",
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("actor_agency", sa.String(length=32), nullable=False),
        sa.Column("from_agency", sa.String(length=32), nullable=False),
        sa.Column("to_agency", sa.String(length=32), nullable=False),
        sa.Column("from_municipality", sa.String(length=4), nullable=False),
        sa.Column("to_municipality", sa.String(length=4), nullable=False),
        sa.Column("consent_id", sa.String(length=36), nullable=True),
        sa.Column("departed", sa.String(length=2000), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["actor_agency"],
            ["agencies.code"],
        ),
        sa.ForeignKeyConstraint(
            ["from_agency"],
            ["agencies.code"],
        ),
        sa.ForeignKeyConstraint(
            ["to_agency"],
            ["agencies.code"],
        ),
        sa.ForeignKeyConstraint(["consent_id"], ["consents.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("case_moves", schema=None) as batch_op:
        batch_op.create_index("ix_case_moves_case_created", ["case_id", "created_at", "id"], unique=False)


def downgrade():
    with op.batch_alter_table("case_moves", schema=None) as batch_op:
        batch_op.drop_index("ix_case_moves_case_created")
    op.drop_table("case_moves")
