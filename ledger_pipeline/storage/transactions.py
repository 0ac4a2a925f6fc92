"""The transactions of the stores kept beside the ledger (registries, their totals, API keys):
a failure of the database reaches their callers as a `StorageError` with the database's own
first line, never SQLAlchemy's statement and its parameters (which may hold secrets)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from ledger_pipeline.errors import StorageError
from ledger_pipeline.storage.store import _WRITES, LedgerStore

logger = logging.getLogger(__name__)


class StoreTransactions:
    """Reading and writing transactions on a ledger's database, for a store of `records`."""

    records = "records"
    """What the store keeps, as its failures are logged ("the registries' database failed")."""

    def __init__(self, store: LedgerStore):
        self._engine = store.engine

    @contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        """A write transaction (on SQLite: `BEGIN IMMEDIATE`), committed when the block ends."""
        try:
            with self._engine.connect() as connection:
                connection.execution_options(**{_WRITES: True})
                with connection.begin():
                    yield connection
        except sa.exc.SQLAlchemyError as error:
            raise self._storage_error(error) from None

    @contextmanager
    def _reading(self) -> Iterator[sa.Connection]:
        try:
            with self._engine.connect() as connection:
                yield connection
        except sa.exc.SQLAlchemyError as error:
            raise self._storage_error(error) from None

    def _storage_error(self, error: sa.exc.SQLAlchemyError) -> StorageError:
        """The database's first line, without SQLAlchemy's statement and parameters."""
        logger.debug("the %s' database failed: %s", self.records, type(error).__name__)
        text = str(getattr(error, "orig", None) or type(error).__name__).strip()
        return StorageError(f"the ledger database failed: {text.splitlines()[0] if text else '?'}")
