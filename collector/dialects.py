"""The few statements that differ between SQLite and PostgreSQL."""
import fcntl
import json
import os
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import JSON, BigInteger, Numeric, case, cast, func, literal, select, text
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignoring_duplicates(conn, table, index_elements):
    """INSERT ... ON CONFLICT (index_elements) DO NOTHING for the connection's dialect (or a dialect name)."""
    module = postgresql if (conn if isinstance(conn, str) else conn.dialect.name) == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing(index_elements=index_elements)


def insert_rows_ignoring_duplicates(conn, table, rows, index_elements):
    """Insert `rows` (dicts with the same keys) skipping those that clash on `index_elements`; returns how many
    were new.

    For an events batch SQLAlchemy's per-row parameter processing (and psycopg's per-row pipeline) costs more
    than the insert itself, so this serialises the JSON columns once (None as JSON null, like the JSON type)
    and sends the driver plain values: PostgreSQL one INSERT ... SELECT FROM unnest(an array per column), or
    plain VALUES for a single row (psycopg dumps arrays in Python: ~0.4 ms for a row's 28); SQLite one
    executemany.
    """
    names = tuple(rows[0])
    json_columns = [isinstance(table.c[name].type, JSON) for name in names]
    columns = [[json.dumps(row[name]) if is_json else row[name] for row in rows]
               for name, is_json in zip(names, json_columns)]
    single = len(rows) == 1
    sql = _insert_sql(conn.dialect, table, names, tuple(index_elements), single)
    if conn.dialect.name == "postgresql":
        return conn.exec_driver_sql(sql, tuple(column[0] for column in columns) if single else tuple(columns)).rowcount
    return conn.exec_driver_sql(sql, list(zip(*columns))).rowcount


@lru_cache(maxsize=64)
def _insert_sql(dialect, table, names, index_elements, single):
    # Compiling the column types costs ~140 µs a call: the text is made once per set of columns.
    quoted = ", ".join(f'"{name}"' for name in names)
    conflict = ", ".join(f'"{name}"' for name in index_elements)
    postgres = dialect.name == "postgresql"
    if postgres and not single:
        # Arrays go in binary (%b): psycopg's text format escapes every element in Python.
        arrays = ", ".join(f"%b::{table.c[name].type.compile(dialect=dialect)}[]" for name in names)
        return f'INSERT INTO "{table.name}" ({quoted}) SELECT * FROM unnest({arrays}) ON CONFLICT ({conflict}) DO NOTHING'
    marks = ", ".join(["%s" if postgres else "?"] * len(names))
    return f'INSERT INTO "{table.name}" ({quoted}) VALUES ({marks}) ON CONFLICT ({conflict}) DO NOTHING'


@contextmanager
def one_statement(engine):
    """A connection for work done by one statement. PostgreSQL runs it in autocommit: a statement is atomic by
    itself, and BEGIN and COMMIT would cost a round trip each. SQLite keeps its transaction (an executemany
    there is a statement per row)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")
        return
    with engine.begin() as conn:
        yield conn


def upsert(conn, table, index_elements, update_columns):
    """INSERT ... ON CONFLICT (index_elements) DO UPDATE SET the given columns from the new row."""
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = module.insert(table)
    return stmt.on_conflict_do_update(
        index_elements=index_elements,
        set_={name: stmt.excluded[name] for name in update_columns},
    )


# --- Used by the segmenter's rollup. ---------------------------------------------------
_FAR = 2**62  # a sentinel beyond any epoch-ms time


def least(dialect, *exprs):
    """The smallest non-NULL of `exprs` (NULL when all are): LEAST on PostgreSQL, min() on SQLite."""
    if len(exprs) == 1:
        return exprs[0]
    if dialect == "postgresql":
        return func.least(*exprs)
    return func.nullif(func.min(*(func.coalesce(e, _FAR) for e in exprs)), _FAR)


def greatest(dialect, *exprs):
    """The largest non-NULL of `exprs` (NULL when all are)."""
    if len(exprs) == 1:
        return exprs[0]
    if dialect == "postgresql":
        return func.greatest(*exprs)
    return func.nullif(func.max(*(func.coalesce(e, -_FAR) for e in exprs)), -_FAR)


INT_MAX = 2**31 - 1  # the largest value of an INTEGER column (counts)
MONEY_MAX_CENTS = 10**15  # sums of money are kept within ±this: exact also as a SQLite float (below 2**53)


def clamp(expr, low, high):
    """`expr` moved into low..high (NULL stays NULL), alike on both databases (GREATEST skips NULLs)."""
    return case((expr < low, low), (expr > high, high), else_=expr)


def wide(dialect, expr):
    """`expr` in a type where products and sums of visitor numbers cannot overflow: PostgreSQL's numeric
    (bigint arithmetic raises on overflow); on SQLite an overflowing integer product turns into a float."""
    return cast(expr, Numeric) if dialect == "postgresql" else expr


def bounded_sum(dialect, expr, bound=MONEY_MAX_CENTS):
    """sum(expr) as an integer within ±bound: it never overflows. PostgreSQL sums bigint and numeric as
    numeric; SQLite's sum() raises on integer overflow, so total() (a float, exact while below 2**53)."""
    total = func.sum(expr) if dialect == "postgresql" else func.total(expr)
    return cast(clamp(total, -bound, bound), BigInteger)


def json_object(dialect, *pairs):
    """A JSON object from alternating key names and SQL values (nest with `json_value`)."""
    return (func.json_build_object if dialect == "postgresql" else func.json_object)(*pairs)


def json_value(dialect, expr):
    """Mark `expr` (JSON text on SQLite) as JSON, so that it nests in json_object unquoted."""
    return expr if dialect == "postgresql" else func.json(expr)


def json_array_agg(dialect, expr, *order_by):
    """Aggregate `expr` into a JSON array ([] for no rows); SQLite keeps the order of its input rows."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import aggregate_order_by

        agg = func.json_agg(aggregate_order_by(expr, *order_by) if order_by else expr)
        return func.coalesce(agg, cast(literal("[]"), JSON))
    return func.json_group_array(expr)


def safe_max_id(engine, table, lock_timeout=5.0):
    """The largest id of `table` below which no insert is still in flight.

    PostgreSQL commits out of id order; briefly taking SHARE on the table waits for the
    inserts in flight, and later inserts draw larger ids (the id sequence has no cache).
    SQLite has one writer at a time, so its max(id) is already safe. Raises if the table stays
    locked by another writer for `lock_timeout` seconds (the caller retries later).
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Waiting behind a long writer (a purge) would queue every insert behind us: give up instead.
            conn.execute(text(f"SET LOCAL lock_timeout = '{int(lock_timeout * 1000)}ms'"))
            conn.execute(text(f'LOCK TABLE "{table.name}" IN SHARE MODE'))
        return conn.scalar(select(func.coalesce(func.max(table.c.id), 0)))


def lock_for_ordered_ids(conn, table):
    """Make this transaction's inserts into `table` the only ones in flight until it ends,
    so that ids become visible in ascending order (readers may use them as a cursor)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f'LOCK TABLE "{table.name}" IN SHARE ROW EXCLUSIVE MODE'))


@contextmanager
def rollup_lock(engine, site_id):
    """Try to hold the rollup lock of a site across processes and hosts; yields True if held.

    PostgreSQL: a session advisory lock on a dedicated connection, keyed by the schema too
    (advisory locks are database-wide). SQLite: an flock on a file beside the database
    (released by the OS if the process dies).
    """
    if engine.dialect.name == "postgresql":
        conn = engine.connect()
        held = False
        key = func.hashtextextended(func.current_schema() + literal(f"/cohortly-rollup/{site_id}"), 0)
        try:
            held = bool(conn.scalar(select(func.pg_try_advisory_lock(key))))
            conn.commit()
            yield held
        finally:
            try:
                if held:
                    conn.scalar(select(func.pg_advisory_unlock(key)))
                    conn.commit()
            except Exception:
                conn.invalidate()  # a dropped session has released its locks anyway
                raise
            finally:
                conn.close()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield True
        return
    fd = os.open(f"{database}.rollup-{site_id}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def json_array(dialect, *values):
    """A JSON array of SQL values."""
    return (func.json_build_array if dialect == "postgresql" else func.json_array)(*values)


def dialect_insert(dialect, table):
    """The INSERT construct of a dialect (a name or a connection); it has `on_conflict_do_update`."""
    name = dialect if isinstance(dialect, str) else dialect.dialect.name
    return (postgresql if name == "postgresql" else sqlite).insert(table)


def json_is_object(dialect, column):
    """True when `column` holds a JSON object (not SQL NULL, not JSON null)."""
    if dialect == "postgresql":
        return func.json_typeof(column) == "object"
    return func.coalesce(func.json_type(column), "") == "object"


def analyze(engine, *tables):
    """Refresh the planner's statistics of `tables` (sampled: cheap also on big tables). On PostgreSQL
    each table in its own transaction, so no lock is held while waiting for the next one."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in tables:
                conn.execute(text(f'ANALYZE "{table.name}"'))
        return
    with engine.connect() as conn:
        conn.execute(text("PRAGMA analysis_limit=1000"))
        for table in tables:
            conn.execute(text(f'ANALYZE "{table.name}"'))
        conn.commit()


def without_jit(conn):
    """PostgreSQL: no JIT compilation in this transaction. Rollup statements are many and short;
    compiling them (triggered by stale cost estimates) can cost more than running them."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL jit = off"))


def analyze_scratch(conn, *tables):
    """Statistics for this connection's TEMPORARY tables (autovacuum never analyzes them). Without,
    SQLite takes a scratch table for a big one and drives a join from the stored table: a scan of a
    whole site's rows per chunk."""
    for table in tables:
        conn.execute(analyze_scratch_statement(conn.dialect.name, table))


def analyze_scratch_statement(dialect, table):
    """The statement that analyzes one TEMPORARY table (see analyze_scratch)."""
    return text(f'ANALYZE "{table.name}"' if dialect == "postgresql" else f'ANALYZE temp."{table.name}"')
