"""site-defined segments: their versions, the behaviours they count, and the hourly counts per profile

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 20:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        "segment_versions",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("rule", sa.JSON(), nullable=True),
        sa.Column("requires", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("judged_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ux_segment_versions_name", "segment_versions", ["site_id", "name", "version"], unique=True)
    op.create_table(
        "behaviours",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("event", sa.String(length=200), nullable=False),
        sa.Column("where", sa.JSON(), nullable=False),
        sa.Column("property", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("counted_to", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ux_behaviours_key", "behaviours", ["site_id", "key"], unique=True)
    op.create_table(
        "behaviour_counts",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("behaviour_id", BIG_ID, nullable=False),
        sa.Column("profile_id", sa.String(length=210), nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("sum_hundredths", sa.BigInteger(), nullable=True),
        sa.Column("min_value", sa.Float(), nullable=True),
        sa.Column("max_value", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["behaviour_id"], ["behaviours.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("site_id", "behaviour_id", "profile_id", "hour"),
    )
    op.create_index("ix_behaviour_counts_profile", "behaviour_counts", ["site_id", "profile_id"], unique=False)


def downgrade():
    op.drop_index("ix_behaviour_counts_profile", table_name="behaviour_counts")
    op.drop_table("behaviour_counts")
    op.drop_index("ux_behaviours_key", table_name="behaviours")
    op.drop_table("behaviours")
    op.drop_index("ux_segment_versions_name", table_name="segment_versions")
    op.drop_table("segment_versions")
