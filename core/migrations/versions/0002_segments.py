"""segmenter: identities, profile facts, sessions, views, cart lines, memberships, changes, rollups

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 22:50:25.016035
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "cart_lines",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.String(length=210), nullable=False),
        sa.Column("product_id", sa.String(length=200), nullable=False),
        sa.Column("added", sa.Boolean(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("category", sa.Text(), nullable=True),
        sa.Column("price_cents", sa.BigInteger(), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("site_id", "profile_id", "product_id"),
    )
    op.create_table(
        "identities",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("anonymous_id", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("linked_at", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("site_id", "anonymous_id"),
    )
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.create_index("ix_identities_user", ["site_id", "user_id", "anonymous_id"], unique=False)

    op.create_table(
        "membership_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("segment", sa.String(length=64), nullable=False),
        sa.Column("profile_id", sa.String(length=210), nullable=False),
        sa.Column("change", sa.String(length=8), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("detected_at", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("context", sa.JSON(), nullable=True),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("membership_changes", schema=None) as batch_op:
        batch_op.create_index("ix_membership_changes_profile", ["site_id", "profile_id"], unique=False)
        batch_op.create_index("ix_membership_changes_site", ["site_id", "id"], unique=False)

    op.create_table(
        "memberships",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("segment", sa.String(length=64), nullable=False),
        sa.Column("profile_id", sa.String(length=210), nullable=False),
        sa.Column("entered_at", sa.BigInteger(), nullable=False),
        sa.Column("context", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("site_id", "segment", "profile_id"),
    )
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.create_index("ix_memberships_profile", ["site_id", "profile_id"], unique=False)

    op.create_table(
        "profile_facts",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.String(length=210), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=True),
        sa.Column("first_seen_at", sa.BigInteger(), nullable=True),
        sa.Column("last_seen_at", sa.BigInteger(), nullable=True),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("sessions", sa.Integer(), nullable=False),
        sa.Column("page_views", sa.Integer(), nullable=False),
        sa.Column("product_views", sa.Integer(), nullable=False),
        sa.Column("last_product_viewed_at", sa.BigInteger(), nullable=True),
        sa.Column("last_product_message_id", sa.String(length=200), nullable=True),
        sa.Column("last_product_id", sa.Text(), nullable=True),
        sa.Column("last_product_name", sa.Text(), nullable=True),
        sa.Column("last_product_url", sa.Text(), nullable=True),
        sa.Column("last_product_category", sa.Text(), nullable=True),
        sa.Column("last_product_price_cents", sa.BigInteger(), nullable=True),
        sa.Column("top_categories", sa.JSON(), nullable=True),
        sa.Column("cart_items", sa.Integer(), nullable=False),
        sa.Column("cart_value_cents", sa.BigInteger(), nullable=False),
        sa.Column("last_cart_add_at", sa.BigInteger(), nullable=True),
        sa.Column("last_checkout_at", sa.BigInteger(), nullable=True),
        sa.Column("first_order_at", sa.BigInteger(), nullable=True),
        sa.Column("last_order_at", sa.BigInteger(), nullable=True),
        sa.Column("order_count", sa.Integer(), nullable=False),
        sa.Column("revenue_cents", sa.BigInteger(), nullable=False),
        sa.Column("email_opens", sa.Integer(), nullable=False),
        sa.Column("email_clicks", sa.Integer(), nullable=False),
        sa.Column("first_email_at", sa.BigInteger(), nullable=True),
        sa.Column("last_email_engaged_at", sa.BigInteger(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("email_at", sa.BigInteger(), nullable=True),
        sa.Column("email_message_id", sa.String(length=200), nullable=True),
        sa.Column("traits", sa.JSON(), nullable=True),
        sa.Column("traits_at", sa.BigInteger(), nullable=True),
        sa.Column("traits_message_id", sa.String(length=200), nullable=True),
        sa.Column("next_check_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("site_id", "profile_id"),
    )
    with op.batch_alter_table("profile_facts", schema=None) as batch_op:
        batch_op.create_index("ix_profile_facts_due", ["site_id", "next_check_at"], unique=False)

    op.create_table(
        "profile_sessions",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.String(length=210), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("site_id", "profile_id", "started_at"),
    )
    op.create_table(
        "profile_views",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.String(length=210), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("product_id", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("category", sa.Text(), nullable=True),
        sa.Column("price_cents", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("site_id", "profile_id", "message_id"),
    )
    with op.batch_alter_table("profile_views", schema=None) as batch_op:
        batch_op.create_index("ix_profile_views_time", ["site_id", "profile_id", "at"], unique=False)

    op.create_table(
        "rollup_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.Column("now", sa.BigInteger(), nullable=True),
        sa.Column("watermark_from", sa.BigInteger(), nullable=False),
        sa.Column("watermark_to", sa.BigInteger(), nullable=False),
        sa.Column("events_folded", sa.BigInteger(), nullable=False),
        sa.Column("events_read", sa.BigInteger(), nullable=False),
        sa.Column("profiles_evaluated", sa.BigInteger(), nullable=False),
        sa.Column("enters", sa.Integer(), nullable=False),
        sa.Column("exits", sa.Integer(), nullable=False),
        sa.Column("first_change_id", sa.BigInteger(), nullable=True),
        sa.Column("last_change_id", sa.BigInteger(), nullable=True),
        sa.Column("segments", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rollup_runs", schema=None) as batch_op:
        batch_op.create_index("ix_rollup_runs_site", ["site_id", "id"], unique=False)

    op.create_table(
        "rollup_state",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("watermark", sa.BigInteger(), nullable=False),
        sa.Column("settings_hash", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("site_id"),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_site_id", ["site_id", "id"], unique=False)


def downgrade():
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_site_id")

    op.drop_table("rollup_state")
    with op.batch_alter_table("rollup_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_rollup_runs_site")

    op.drop_table("rollup_runs")
    with op.batch_alter_table("profile_views", schema=None) as batch_op:
        batch_op.drop_index("ix_profile_views_time")

    op.drop_table("profile_views")
    op.drop_table("profile_sessions")
    with op.batch_alter_table("profile_facts", schema=None) as batch_op:
        batch_op.drop_index("ix_profile_facts_due")

    op.drop_table("profile_facts")
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.drop_index("ix_memberships_profile")

    op.drop_table("memberships")
    with op.batch_alter_table("membership_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_membership_changes_site")
        batch_op.drop_index("ix_membership_changes_profile")

    op.drop_table("membership_changes")
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.drop_index("ix_identities_user")

    op.drop_table("identities")
    op.drop_table("cart_lines")
