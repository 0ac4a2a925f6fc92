"""The ledger as a Dagster resource: the storage module, configured from the environment."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from ledger_pipeline.settings import Settings
from ledger_pipeline.storage.store import LedgerStore


class LedgerResource(dg.ConfigurableResource):
    """Opens the ledger database; empty fields take `LEDGER_DATABASE_URL` / `LEDGER_TIMEZONE`."""

    database_url: str = ""
    timezone: str = ""

    def settings(self) -> Settings:
        environment = Settings.from_environment()
        overrides = {"LEDGER_DATABASE_URL": self.database_url, "LEDGER_TIMEZONE": self.timezone}
        if not any(overrides.values()):
            return environment
        return Settings.from_environment(
            {
                "LEDGER_DATABASE_URL": self.database_url or environment.database_url,
                "LEDGER_TIMEZONE": self.timezone or environment.timezone.key,
            }
        )

    @contextmanager
    def open(self) -> Iterator[LedgerStore]:
        store = LedgerStore.from_settings(self.settings())
        try:
            yield store
        finally:
            store.close()
