"""statistics reaction spans: that a reaction was made active, and when and how it ended
(README: Statistics), kept by the statistics' signal handlers.

Written by hand. Reactions that exist already are filled in from what they say: one that is
active, completed or breached was made active (`activated_on` = its `starts_on`); one that is
completed or breached ended on its `ends_on` (else its `starts_on`). A cancelled reaction is
not known to have been active and is left out. An index serves a municipality's cases opened
in a window.

Revision ID: 20261202_0012
Revises: 20261202_0010
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "20261202_0012"
down_revision = "20261202_0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "statistics_reaction_spans",
        sa.Column("reaction_id", sa.String(length=36), nullable=False),
        sa.Column("activated_on", sa.Date(), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.Column("ended_status", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(["reaction_id"], ["reactions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("reaction_id"),
    )
    op.create_index("ix_cases_municipality_opened", "cases", ["municipality", "opened_at"], unique=False)
    op.execute(
        "INSERT INTO statistics_reaction_spans (reaction_id, activated_on, ended_on, ended_status) "
        "SELECT id, starts_on, "
        "CASE WHEN status IN ('completed', 'breached') THEN COALESCE(ends_on, starts_on) END, "
        "CASE WHEN status IN ('completed', 'breached') THEN status END "
        "FROM reactions WHERE status IN ('active', 'completed', 'breached')"
    )


def downgrade():
    op.drop_index("ix_cases_municipality_opened", table_name="cases")
    op.drop_table("statistics_reaction_spans")
