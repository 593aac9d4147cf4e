"""Per-connection scratch (TEMPORARY) tables of a fold and of judging; emptied before each use."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    event,
)
from sqlalchemy.schema import CreateIndex, CreateTable

from core.schema import PROFILE_ID, ProfileFact

TEMP = MetaData()  # the fold's
ROLLUP_CACHE_KIB = 65_536  # on the rollup's SQLite connections only (API workers keep the default)
JUDGING = MetaData()


def _temp(name, *columns, metadata=TEMP):
    return Table(name, metadata, *columns, prefixes=["TEMPORARY"])


fold_events = _temp(
    "fold_events",
    Column("profile_id", PROFILE_ID),
    Column("message_id", String(200)),
    Column("at", BigInteger),
    Column("type", String(16)),
    Column("event", String(200)),
    Column("activity", Boolean),
    Column("product_id", String(200)),
    Column("product_name", String),
    Column("product_url", String),
    Column("category", String),
    Column("price_cents", BigInteger),
    Column("quantity", Integer),
    Column("revenue_cents", BigInteger),
    Column("traits", JSON),
    Column("email", String),
)
fold_links = _temp(
    "fold_links",
    Column("anonymous_id", String(200)),
    Column("user_id", String(200)),
    Column("linked_at", BigInteger),
    Column("message_id", String(200)),
)
fold_affected = _temp(
    "fold_affected",
    Column("profile_id", PROFILE_ID),
    Column("user_id", String(200)),
    Column("merged_into", PROFILE_ID),
    Column("merged_at", BigInteger),
)
fold_touched = _temp("fold_touched", Column("profile_id", PROFILE_ID, primary_key=True))
fold_new_sessions = _temp(
    "fold_new_sessions",
    Column("profile_id", PROFILE_ID),
    Column("started_at", BigInteger),
    Column("ended_at", BigInteger),
)
fold_old_sessions = _temp(
    "fold_old_sessions",
    Column("profile_id", PROFILE_ID),
    Column("started_at", BigInteger),
    Column("ended_at", BigInteger),
)
fold_merged_sessions = _temp(
    "fold_merged_sessions",
    Column("profile_id", PROFILE_ID),
    Column("started_at", BigInteger),
    Column("ended_at", BigInteger),
)
fold_surplus_views = _temp(
    "fold_surplus_views",
    Column("profile_id", PROFILE_ID),
    Column("message_id", String(200)),
)
fold_derived = _temp(
    "fold_derived",
    Column("profile_id", PROFILE_ID, primary_key=True),
    Column("sessions", Integer),
    Column("cart_items", Integer),
    Column("cart_value_cents", BigInteger),
    Column("top_categories", JSON),
)

# A copy of the facts of the profiles judged in one batch, with the one fact that is a lookup
# (the N-th latest product view) computed once: every rule's statements read this small table
# instead of finding the due profiles, and that view, once per statement.
judge_due = _temp(
    "judge_due",
    *(
        Column(column.name, column.type, primary_key=column.name == "profile_id")
        for column in ProfileFact.__table__.columns
    ),
    Column("nth_product_view_at", BigInteger),
    metadata=JUDGING,
)

INDEXES = [Index("ix_fold_new_sessions", fold_new_sessions.c.profile_id, fold_new_sessions.c.started_at)]


def prepare(conn: Connection, metadata: MetaData = TEMP) -> None:
    """Create the scratch tables of `metadata` on this connection (once) and empty them."""
    info = conn.connection.info  # lives as long as the database connection (and its TEMP tables)
    key = f"cohortly_scratch_{id(metadata)}"
    if not info.get(key):
        # Tables created in a transaction that rolls back (a failed chunk) are gone: make them again.
        event.listen(conn, "rollback", lambda _conn: info.pop(key, None), once=True)
        if conn.dialect.name == "sqlite":  # a rollup walks big indexes: a larger page cache than SQLite's 2 MiB
            conn.exec_driver_sql(f"PRAGMA cache_size=-{ROLLUP_CACHE_KIB}")
        for table in metadata.sorted_tables:
            conn.execute(CreateTable(table, if_not_exists=True))
        for index in INDEXES:
            if index.table.metadata is metadata:
                conn.execute(CreateIndex(index, if_not_exists=True))
        info[key] = True
    for table in metadata.sorted_tables:
        conn.execute(delete(table))
