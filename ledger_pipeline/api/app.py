"""The reporting API as a FastAPI application: `create_app(settings)`.

The application opens the ledger once, when it is built (so that a bad database URL fails at
start, not at the first request), and closes it when the server stops. Routes are plain
functions that FastAPI runs in its thread pool, as the ledger's storage is synchronous.

Settings, from the environment (`ApiSettings.from_environment`): those of the ledger
(`LEDGER_DATABASE_URL`, `LEDGER_TIMEZONE`) and `LEDGER_API_MAX_DAYS`, the longest range of
accounting dates one summary or report request may ask for (default 366).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel

from ledger_pipeline.api import deliveries, errors, registries, reporting
from ledger_pipeline.errors import ConfigurationError
from ledger_pipeline.settings import Settings
from ledger_pipeline.storage.store import LedgerStore

MAX_DAYS_VARIABLE = "LEDGER_API_MAX_DAYS"
DEFAULT_MAX_DAYS = 366

DESCRIPTION = """\
A registry's ledger summaries and reports on request, the registries themselves, and the
webhook deliveries.

Every path but `/health` needs an API key, made with
`ledger-pipeline api-key create --name N --scope read|manage` and sent as
`Authorization: Bearer <key>`. A read key gets summaries and reports; a manage key also
manages registries and deliveries.

Every error is `{"error": {"code": ..., "message": ...}}`; the message says what to change.
Money is a decimal string with exactly the currency's decimals, never a number.
"""


@dataclass(frozen=True)
class ApiSettings:
    """The ledger the API serves and the longest range of dates one request may ask for."""

    ledger: Settings = field(default_factory=Settings)
    max_days: int = DEFAULT_MAX_DAYS

    def __post_init__(self) -> None:
        if isinstance(self.max_days, bool) or not isinstance(self.max_days, int):
            raise ConfigurationError(f"{MAX_DAYS_VARIABLE} must be a whole number of days")
        if self.max_days < 1:
            raise ConfigurationError(f"{MAX_DAYS_VARIABLE} must be at least 1 day")

    @classmethod
    def from_environment(cls, environment: Mapping[str, str] | None = None) -> ApiSettings:
        """Reads the settings from `environment` (the process environment by default).

        Raises:
            ConfigurationError: a variable is set to a value that cannot be used.
        """
        environment = os.environ if environment is None else environment
        text = environment.get(MAX_DAYS_VARIABLE, "").strip()
        try:
            max_days = int(text) if text else DEFAULT_MAX_DAYS
        except ValueError:
            raise ConfigurationError(
                f"{MAX_DAYS_VARIABLE}={text!r} is not a whole number of days (for example 366)"
            ) from None
        return cls(ledger=Settings.from_environment(environment), max_days=max_days)


class Health(BaseModel):
    status: str


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """The reporting API on the ledger the settings name (the environment's by default).

    Raises:
        ConfigurationError: the settings are unusable, or the ledger cannot be opened.
    """
    settings = settings or ApiSettings.from_environment()
    store = LedgerStore.from_settings(settings.ledger)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            store.close()

    # The documentation pages (/docs, /redoc) load their scripts from the package, not from a
    # CDN, so they work on a server without internet access.
    app = FastAPIOffline(
        title="ledger_pipeline reporting API",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        # Operation ids are the route functions' names (get_ledger_summary, create_registry).
        generate_unique_id_function=lambda route: route.name,
    )
    app.state.settings = settings
    app.state.store = store
    errors.install_error_handlers(app)

    app.include_router(reporting.router)
    app.include_router(registries.router)
    app.include_router(deliveries.router)

    @app.get("/health", response_model=Health, tags=["health"])
    def health() -> Health:
        """Whether the server runs; needs no key."""
        return Health(status="ok")

    return app
