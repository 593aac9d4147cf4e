"""The few statements that differ between SQLite and PostgreSQL."""
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignoring_duplicates(conn, table, index_elements):
    """INSERT ... ON CONFLICT (index_elements) DO NOTHING for the connection's dialect."""
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing(index_elements=index_elements)


def upsert(conn, table, index_elements, update_columns):
    """INSERT ... ON CONFLICT (index_elements) DO UPDATE SET the given columns from the new row."""
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = module.insert(table)
    return stmt.on_conflict_do_update(
        index_elements=index_elements,
        set_={name: stmt.excluded[name] for name in update_columns},
    )
