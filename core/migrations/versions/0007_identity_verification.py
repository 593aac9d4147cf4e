"""identity verification: a per-site identity secret, verified events and verified identity links

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 17:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("sites") as batch:
        batch.add_column(sa.Column("identity_secret", sa.String(length=64), nullable=True))
    # A constant default: PostgreSQL (11+) and SQLite add the column without rewriting the table. Not in batch
    # mode: on SQLite that copies the table and would drop `events`' AUTOINCREMENT (migration 0005).
    op.add_column("events", sa.Column("user_verified", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column("identities", sa.Column("verified", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table("identities") as batch:
        batch.drop_column("verified")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("user_verified")
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("identity_secret")
