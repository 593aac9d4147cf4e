"""Alembic environment: runs on the connection handed over by `core.db.upgrade`."""

from alembic import context

from core.schema import Base

target_metadata = Base.metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("Run migrations with `cohortly db upgrade`.")
context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
