"""webhook claims: a delivery pass leases a webhook before it POSTs, so two passes never send the same change

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 17:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("webhooks", sa.Column("claimed_by", sa.String(length=32), nullable=True))
    op.add_column("webhooks", sa.Column("claimed_until", sa.BigInteger(), nullable=True))
    # The log held exceptions' text (a port oracle): keep only a short class, as deliveries now write.
    op.execute(
        "UPDATE webhook_deliveries SET last_error = CASE WHEN last_status IS NOT NULL "
        "THEN 'http_' || CAST(last_status AS VARCHAR(12)) ELSE 'delivery_error' END "
        "WHERE status <> 'skipped' AND last_error IS NOT NULL"
    )


def downgrade():
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("claimed_by")
