"""Alembic's environment for the ledger: migrations run on a connection handed over in code.

The store upgrades the schema itself when it opens a ledger, inside its own transaction, so
there is no `alembic.ini`. To write a new revision, autogenerate it against a migrated database:

    with engine.begin() as connection:
        command.revision(alembic_config(connection), message="...", autogenerate=True)

with `alembic_config` from `ledger_pipeline.storage.store`, then read and edit what it wrote.
"""

from __future__ import annotations

from alembic import context

from ledger_pipeline.storage.tables import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "the ledger's migrations run on a connection given in code: "
        "use ledger_pipeline.storage.store.alembic_config(connection)"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    # SQLite alters a table by copying it; batch mode lets later revisions do that.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
