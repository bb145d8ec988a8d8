"""audit log: the inbox requests write to, the sealed hash chain, and triggers that make the
chain append-only in the database itself.

Reviewed by hand. `audit_events` refuses UPDATE and DELETE (and TRUNCATE on PostgreSQL) through
triggers; `audit_inbox` is emptied by the sealer and so allows DELETE. Instants are naive UTC.

Revision ID: 20261122_0002
Revises: 20261122_0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "20261122_0002"
down_revision = "20261122_0001"
branch_labels = None
depends_on = None

APPEND_ONLY_MESSAGE = "audit_events is append-only"


def _event_columns():
    return [
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(64)),
        sa.Column("actor_role", sa.String(20)),
        sa.Column("actor_agency", sa.String(32)),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("resource_type", sa.String(32)),
        sa.Column("resource_id", sa.String(64)),
        sa.Column("case_id", sa.String(36)),
        sa.Column("youth_id", sa.String(36)),
        sa.Column("ids", sa.JSON()),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("status", sa.Integer()),
        sa.Column("request_id", sa.String(64)),
        sa.Column("ip", sa.String(45)),
    ]


def upgrade():
    op.create_table(
        "audit_inbox",
        sa.Column("n", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        *_event_columns(),
    )
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        *_event_columns(),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index("ix_audit_events_case", "audit_events", ["case_id", "seq"])
    op.create_index("ix_audit_events_youth", "audit_events", ["youth_id", "seq"])
    op.create_index("ix_audit_events_actor", "audit_events", ["actor", "seq"])

    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}' USING ERRCODE = 'insufficient_privilege';
            END $$""")
        op.execute("""CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events
                      FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()""")
        op.execute("""CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
                      FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()""")
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"""CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events
                           BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END""")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update_delete ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
    op.drop_table("audit_events")
    op.drop_table("audit_inbox")
