"""webhook secrets encrypted at rest: room for the encrypted form in webhooks.secret.

Written by hand. A webhook's secret is now stored as "enc1:" + a Fernet token (see
casesvc/common/crypto.py), up to about 430 characters for the longest secret allowed (255).
Secrets stored before stay readable as they are and are encrypted when the webhook is set again.

Revision ID: 20261122_0006
Revises: 20261122_0005
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "20261122_0006"
down_revision = "20261122_0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("webhooks") as batch:
        batch.alter_column(
            "secret", existing_type=sa.String(length=255), type_=sa.String(length=512), existing_nullable=False
        )


def downgrade():
    with op.batch_alter_table("webhooks") as batch:
        batch.alter_column(
            "secret", existing_type=sa.String(length=512), type_=sa.String(length=255), existing_nullable=False
        )
