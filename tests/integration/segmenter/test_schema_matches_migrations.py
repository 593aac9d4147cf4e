"""The migrations build exactly the schema of `core.schema`: Alembic finds nothing to autogenerate."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core.schema import Base


def test_the_migrated_database_equals_the_table_definitions(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
