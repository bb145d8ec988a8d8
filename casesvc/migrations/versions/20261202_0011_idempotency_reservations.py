"""idempotency keys reserved per user, key and endpoint: a creating POST inserts its key's row
before the work (in flight, status_code 0) so that a simultaneous second request with the same
key meets it instead of doing the work again (README: Idempotency-Key).

Written by hand. Existing rows get the empty endpoint; they expire within 24 hours.

Revision ID: 20261202_0011
Revises: 20261202_0012
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "20261202_0011"
down_revision = "20261202_0012"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("endpoint", sa.String(length=128), nullable=False, server_default=""))
        batch_op.drop_index("ux_idempotency_owner_key")
        batch_op.create_index("ux_idempotency_owner_key_endpoint", ["owner", "key", "endpoint"], unique=True)


def downgrade():
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index("ux_idempotency_owner_key_endpoint")
    op.execute(
        "DELETE FROM idempotency_keys WHERE id NOT IN (SELECT min(id) FROM idempotency_keys GROUP BY owner, key)"
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index("ux_idempotency_owner_key", ["owner", "key"], unique=True)
        batch_op.drop_column("endpoint")
