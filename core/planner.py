"""Planner statistics and hints: ANALYZE of stored and scratch tables, no JIT for short rollup statements."""

from sqlalchemy import Connection, Engine, Table, TextClause, text


def analyze(engine: Engine, *tables: Table) -> None:
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


def without_jit(conn: Connection) -> None:
    """PostgreSQL: no JIT compilation in this transaction. Rollup statements are many and short;
    compiling them (triggered by stale cost estimates) can cost more than running them."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL jit = off"))


def analyze_scratch(conn: Connection, *tables: Table) -> None:
    """Statistics for this connection's TEMPORARY tables (autovacuum never analyzes them). Without,
    SQLite takes a scratch table for a big one and drives a join from the stored table: a scan of a
    whole site's rows per chunk."""
    for table in tables:
        conn.execute(analyze_scratch_statement(conn.dialect.name, table))


def analyze_scratch_statement(dialect: str, table: Table) -> TextClause:
    """The statement that analyzes one TEMPORARY table (see analyze_scratch)."""
    return text(f'ANALYZE "{table.name}"' if dialect == "postgresql" else f'ANALYZE temp."{table.name}"')
