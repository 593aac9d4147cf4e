"""SQL expressions and statements that differ between SQLite and PostgreSQL (locks: `core.locks`; planner
statistics and hints: `core.planner`)."""

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, BigInteger, ColumnElement, Connection, Engine, Numeric, Table, case, cast, func, literal
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignoring_duplicates(
    conn: Connection | str, table: Table, index_elements: Sequence[str]
) -> postgresql.Insert | sqlite.Insert:
    """INSERT ... ON CONFLICT (index_elements) DO NOTHING for the connection's dialect (or a dialect name)."""
    module = postgresql if (conn if isinstance(conn, str) else conn.dialect.name) == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing(index_elements=index_elements)


def insert_rows_ignoring_duplicates(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], index_elements: Sequence[str]
) -> int:
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
    columns = [
        [json.dumps(row[name]) if is_json else row[name] for row in rows]
        for name, is_json in zip(names, json_columns, strict=True)
    ]
    single = len(rows) == 1
    sql = _insert_sql(conn.dialect, table, names, tuple(index_elements), single)
    if conn.dialect.name == "postgresql":
        return conn.exec_driver_sql(sql, tuple(column[0] for column in columns) if single else tuple(columns)).rowcount
    return conn.exec_driver_sql(sql, list(zip(*columns, strict=True))).rowcount


@lru_cache(maxsize=64)
def _insert_sql(dialect, table, names, index_elements, single):
    # Compiling the column types costs ~140 µs a call: the text is made once per set of columns.
    quoted = ", ".join(f'"{name}"' for name in names)
    conflict = ", ".join(f'"{name}"' for name in index_elements)
    postgres = dialect.name == "postgresql"
    if postgres and not single:
        # Arrays go in binary (%b): psycopg's text format escapes every element in Python.
        arrays = ", ".join(f"%b::{table.c[name].type.compile(dialect=dialect)}[]" for name in names)
        return (
            f'INSERT INTO "{table.name}" ({quoted}) SELECT * FROM unnest({arrays}) ON CONFLICT ({conflict}) DO NOTHING'
        )
    marks = ", ".join(["%s" if postgres else "?"] * len(names))
    return f'INSERT INTO "{table.name}" ({quoted}) VALUES ({marks}) ON CONFLICT ({conflict}) DO NOTHING'


@contextmanager
def one_statement(engine: Engine) -> Iterator[Connection]:
    """A connection for work done by one statement. PostgreSQL runs it in autocommit: a statement is atomic by
    itself, and BEGIN and COMMIT would cost a round trip each. SQLite keeps its transaction (an executemany
    there is a statement per row)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")
        return
    with engine.begin() as conn:
        yield conn


# --- Used by the segmenter's rollup. ---------------------------------------------------
_FAR = 2**62  # a sentinel beyond any epoch-ms time


def least(dialect: str, *exprs: ColumnElement[Any]) -> ColumnElement[Any]:
    """The smallest non-NULL of `exprs` (NULL when all are): LEAST on PostgreSQL, min() on SQLite."""
    if len(exprs) == 1:
        return exprs[0]
    if dialect == "postgresql":
        return func.least(*exprs)
    return func.nullif(func.min(*(func.coalesce(e, _FAR) for e in exprs)), _FAR)


def greatest(dialect: str, *exprs: ColumnElement[Any]) -> ColumnElement[Any]:
    """The largest non-NULL of `exprs` (NULL when all are)."""
    if len(exprs) == 1:
        return exprs[0]
    if dialect == "postgresql":
        return func.greatest(*exprs)
    return func.nullif(func.max(*(func.coalesce(e, -_FAR) for e in exprs)), -_FAR)


INT_MAX = 2**31 - 1  # the largest value of an INTEGER column (counts)
MONEY_MAX_CENTS = 10**15  # sums of money are kept within ±this: exact also as a SQLite float (below 2**53)


def clamp(expr: ColumnElement[Any], low: int, high: int) -> ColumnElement[Any]:
    """`expr` moved into low..high (NULL stays NULL), alike on both databases (GREATEST skips NULLs)."""
    return case((expr < low, low), (expr > high, high), else_=expr)


def wide(dialect: str, expr: ColumnElement[Any]) -> ColumnElement[Any]:
    """`expr` in a type where products and sums of visitor numbers cannot overflow: PostgreSQL's numeric
    (bigint arithmetic raises on overflow); on SQLite an overflowing integer product turns into a float."""
    return cast(expr, Numeric) if dialect == "postgresql" else expr


def bounded_sum(dialect: str, expr: ColumnElement[Any], bound: int = MONEY_MAX_CENTS) -> ColumnElement[int]:
    """sum(expr) as an integer within ±bound: it never overflows. PostgreSQL sums bigint and numeric as
    numeric; SQLite's sum() raises on integer overflow, so total() (a float, exact while below 2**53)."""
    total = func.sum(expr) if dialect == "postgresql" else func.total(expr)
    return cast(clamp(total, -bound, bound), BigInteger)


def json_object(dialect: str, *pairs: str | ColumnElement[Any]) -> ColumnElement[Any]:
    """A JSON object from alternating key names and SQL values (nest with `json_value`)."""
    return (func.json_build_object if dialect == "postgresql" else func.json_object)(*pairs)


def json_value(dialect: str, expr: ColumnElement[Any]) -> ColumnElement[Any]:
    """Mark `expr` (JSON text on SQLite) as JSON, so that it nests in json_object unquoted."""
    return expr if dialect == "postgresql" else func.json(expr)


def json_array_agg(dialect: str, expr: ColumnElement[Any], *order_by: ColumnElement[Any]) -> ColumnElement[Any]:
    """Aggregate `expr` into a JSON array ([] for no rows); SQLite keeps the order of its input rows."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import aggregate_order_by

        agg = func.json_agg(aggregate_order_by(expr, *order_by) if order_by else expr)
        return func.coalesce(agg, cast(literal("[]"), JSON))
    return func.json_group_array(expr)


def json_array(dialect: str, *values: ColumnElement[Any]) -> ColumnElement[Any]:
    """A JSON array of SQL values."""
    return (func.json_build_array if dialect == "postgresql" else func.json_array)(*values)


def dialect_insert(dialect: str | Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """The INSERT construct of a dialect (a name or a connection); it has `on_conflict_do_update`."""
    name = dialect if isinstance(dialect, str) else dialect.dialect.name
    return (postgresql if name == "postgresql" else sqlite).insert(table)


def json_is_object(dialect: str, column: ColumnElement[Any]) -> ColumnElement[bool]:
    """True when `column` holds a JSON object (not SQL NULL, not JSON null)."""
    if dialect == "postgresql":
        return func.json_typeof(column) == "object"
    return func.coalesce(func.json_type(column), "") == "object"
