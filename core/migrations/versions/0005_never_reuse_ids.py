"""SQLite: ids that are never reused (AUTOINCREMENT)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 17:30:00.000000

Without AUTOINCREMENT SQLite gives a new row max(id) + 1, so deleting the top rows (an erasure, a
retention purge, a deleted webhook) hands their ids out again: new events land at or below the
rollup watermark and are never folded, new changes at or below a webhook's cursor are never sent.
Each table whose ids are a cursor, a watermark or a key sent out is rebuilt with AUTOINCREMENT
(rows, ids and indexes kept), and its sequence starts above every id known to have been used.
PostgreSQL draws these ids from sequences, which never go back: nothing to do there.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Parents before children: dropping a parent (each rebuild drops the old table) cascades into its
# children, and PRAGMA foreign_keys cannot be switched off inside the migration's transaction.
TABLES = ("events", "bad_rows", "rollup_runs", "erasures", "membership_changes", "webhooks", "webhook_deliveries")
CASCADED = "webhook_deliveries"  # the one child of a rebuilt table (membership_changes, webhooks)
SAVED = "cohortly_0005_deliveries"

# Ids handed out before, possibly of rows already deleted: a sequence must start above them.
USED_ELSEWHERE = {
    "events": ["SELECT max(watermark) FROM rollup_state"],
    "membership_changes": [
        "SELECT max(cursor) FROM webhooks",
        "SELECT max(last_change_id) FROM rollup_runs",
        "SELECT max(change_id) FROM webhook_deliveries",
    ],
    "rollup_runs": ["SELECT max(run_id) FROM membership_changes"],
}


def upgrade():
    if op.get_bind().dialect.name != "sqlite":
        return
    _rebuild(autoincrement=True)
    for table in TABLES:
        floors = [f"SELECT max(id) FROM {table}", *USED_ELSEWHERE.get(table, [])]
        highest = ", ".join(f"coalesce(({sql}), 0)" for sql in floors)
        op.execute(
            sa.text(
                f"INSERT INTO sqlite_sequence (name, seq) SELECT '{table}', 0 "
                f"WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = '{table}')"
            )
        )
        op.execute(sa.text(f"UPDATE sqlite_sequence SET seq = max(seq, {highest}) WHERE name = '{table}'"))


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(autoincrement=False)


def _rebuild(autoincrement):
    columns = ", ".join(f'"{column["name"]}"' for column in sa.inspect(op.get_bind()).get_columns(CASCADED))
    op.execute(sa.text(f"CREATE TEMPORARY TABLE {SAVED} AS SELECT * FROM {CASCADED}"))
    op.execute(sa.text(f"DELETE FROM {CASCADED}"))
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass
    op.execute(sa.text(f"INSERT INTO {CASCADED} ({columns}) SELECT {columns} FROM temp.{SAVED}"))
    op.execute(sa.text(f"DROP TABLE temp.{SAVED}"))
