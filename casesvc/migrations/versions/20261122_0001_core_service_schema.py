"""core service schema: agencies, users, youths and guardians, cases and participants,
reactions with conditions and signatures, events, notes, consents, idempotency keys.

Reviewed by hand: timestamps are plain DateTime columns holding naive UTC (the application's
UTCDateTime type adds the zone on read); agency codes are the keys agencies are referred to by;
every list is served by a (parent, created_at, id) index for keyset pagination.

Revision ID: 20261122_0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "20261122_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():

    op.create_table(
        "agencies",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("municipalities", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index("ux_idempotency_owner_key", ["owner", "key"], unique=True)

    op.create_table(
        "users",
        sa.Column("username", sa.String(length=150), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("agency_code", sa.String(length=32), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_code"],
            ["agencies.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "youths",
        sa.Column("national_id", sa.String(length=11), nullable=False),
        sa.Column("given_name", sa.String(length=200), nullable=False),
        sa.Column("family_name", sa.String(length=200), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("municipality", sa.String(length=4), nullable=False),
        sa.Column("school", sa.String(length=200), nullable=True),
        sa.Column("created_by_agency", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_agency"],
            ["agencies.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("national_id"),
    )
    op.create_table(
        "cases",
        sa.Column("youth_id", sa.String(length=36), nullable=False),
        sa.Column("municipality", sa.String(length=4), nullable=False),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("lead_agency", sa.String(length=32), nullable=False),
        sa.Column("coordinator", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("legal_hold", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["coordinator"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["lead_agency"],
            ["agencies.code"],
        ),
        sa.ForeignKeyConstraint(["youth_id"], ["youths.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index("ix_cases_created", ["created_at", "id"], unique=False)
        batch_op.create_index("ix_cases_municipality_created", ["municipality", "created_at", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_youth_id"), ["youth_id"], unique=False)

    op.create_table(
        "guardians",
        sa.Column("youth_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("relation", sa.String(length=20), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["youth_id"], ["youths.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("guardians", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_guardians_youth_id"), ["youth_id"], unique=False)

    op.create_table(
        "case_participants",
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("agency_code", sa.String(length=32), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_code"],
            ["agencies.code"],
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("case_id", "agency_code"),
    )
    with op.batch_alter_table("case_participants", schema=None) as batch_op:
        batch_op.create_index("ix_case_participants_agency", ["agency_code", "case_id"], unique=False)

    op.create_table(
        "consents",
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("given_by", sa.String(length=10), nullable=False),
        sa.Column("given_on", sa.Date(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("covers_general", sa.Boolean(), nullable=False),
        sa.Column("covers_health", sa.Boolean(), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(), nullable=True),
        sa.Column("recorded_by_agency", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["recorded_by_agency"],
            ["agencies.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.create_index("ix_consents_case_created", ["case_id", "created_at", "id"], unique=False)

    op.create_table(
        "notes",
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("corrects", sa.String(length=36), nullable=True),
        sa.Column("category", sa.String(length=10), nullable=False),
        sa.Column("visibility", sa.String(length=10), nullable=False),
        sa.Column("author_agency", sa.String(length=32), nullable=False),
        sa.Column("author_user", sa.String(length=36), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_agency"],
            ["agencies.code"],
        ),
        sa.ForeignKeyConstraint(
            ["author_user"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["corrects"], ["notes.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("notes", schema=None) as batch_op:
        batch_op.create_index("ix_notes_case_created", ["case_id", "created_at", "id"], unique=False)

    op.create_table(
        "reactions",
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=30), nullable=False),
        sa.Column("legal_basis", sa.String(length=30), nullable=False),
        sa.Column("police_reference", sa.String(length=100), nullable=True),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("probation_ends_on", sa.Date(), nullable=True),
        sa.Column("scheduled_at", sa.DateTime(), nullable=True),
        sa.Column("held_at", sa.DateTime(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("created_by_agency", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["created_by_agency"],
            ["agencies.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("reactions", schema=None) as batch_op:
        batch_op.create_index("ix_reactions_case_created", ["case_id", "created_at", "id"], unique=False)

    op.create_table(
        "conditions",
        sa.Column("reaction_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("every_days", sa.Integer(), nullable=True),
        sa.Column("responsible_agency", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["reaction_id"], ["reactions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["responsible_agency"],
            ["agencies.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("conditions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conditions_reaction_id"), ["reaction_id"], unique=False)

    op.create_table(
        "consent_agencies",
        sa.Column("consent_id", sa.String(length=36), nullable=False),
        sa.Column("agency_code", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_code"],
            ["agencies.code"],
        ),
        sa.ForeignKeyConstraint(["consent_id"], ["consents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("consent_id", "agency_code"),
    )
    with op.batch_alter_table("consent_agencies", schema=None) as batch_op:
        batch_op.create_index("ix_consent_agencies_agency", ["agency_code", "consent_id"], unique=False)

    op.create_table(
        "signatures",
        sa.Column("reaction_id", sa.String(length=36), nullable=False),
        sa.Column("party", sa.String(length=30), nullable=False),
        sa.Column("signed_on", sa.Date(), nullable=False),
        sa.Column("recorded_by_agency", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["reaction_id"], ["reactions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["recorded_by_agency"],
            ["agencies.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signatures_reaction_id"), ["reaction_id"], unique=False)

    op.create_table(
        "events",
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("reaction_id", sa.String(length=36), nullable=True),
        sa.Column("condition_id", sa.String(length=36), nullable=True),
        sa.Column("condition_agency", sa.String(length=32), nullable=True),
        sa.Column("result", sa.String(length=10), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("corrects", sa.String(length=36), nullable=True),
        sa.Column("category", sa.String(length=10), nullable=False),
        sa.Column("visibility", sa.String(length=10), nullable=False),
        sa.Column("author_agency", sa.String(length=32), nullable=False),
        sa.Column("author_user", sa.String(length=36), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_agency"],
            ["agencies.code"],
        ),
        sa.ForeignKeyConstraint(
            ["author_user"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["condition_id"], ["conditions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["corrects"], ["events.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["reaction_id"], ["reactions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_case_created", ["case_id", "created_at", "id"], unique=False)


def downgrade():

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_case_created")

    op.drop_table("events")
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signatures_reaction_id"))

    op.drop_table("signatures")
    with op.batch_alter_table("consent_agencies", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_agencies_agency")

    op.drop_table("consent_agencies")
    with op.batch_alter_table("conditions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conditions_reaction_id"))

    op.drop_table("conditions")
    with op.batch_alter_table("reactions", schema=None) as batch_op:
        batch_op.drop_index("ix_reactions_case_created")

    op.drop_table("reactions")
    with op.batch_alter_table("notes", schema=None) as batch_op:
        batch_op.drop_index("ix_notes_case_created")

    op.drop_table("notes")
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_index("ix_consents_case_created")

    op.drop_table("consents")
    with op.batch_alter_table("case_participants", schema=None) as batch_op:
        batch_op.drop_index("ix_case_participants_agency")

    op.drop_table("case_participants")
    with op.batch_alter_table("guardians", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guardians_youth_id"))

    op.drop_table("guardians")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_youth_id"))
        batch_op.drop_index("ix_cases_municipality_created")
        batch_op.drop_index("ix_cases_created")

    op.drop_table("cases")
    op.drop_table("youths")
    op.drop_table("users")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index("ux_idempotency_owner_key")

    op.drop_table("idempotency_keys")
    op.drop_table("agencies")
