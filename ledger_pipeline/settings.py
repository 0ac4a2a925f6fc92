"""Settings read from the environment, checked once, with errors that name the variable.

- `LEDGER_DATABASE_URL`: any SQLAlchemy URL of the ledger's database. Default
  `sqlite:///./.ledger/ledger.db`, relative to the working directory; the folder of a SQLite
  file is created when the ledger is opened.
- `LEDGER_TIMEZONE`: the IANA name of the supplier's time zone (default `UTC`). Accounting
  dates are local dates in this zone. It is written into the ledger when the ledger is created
  and cannot change afterwards: opening the ledger with another zone is a `ConfigurationError`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from ledger_pipeline.errors import ConfigurationError

DATABASE_URL_VARIABLE = "LEDGER_DATABASE_URL"
TIMEZONE_VARIABLE = "LEDGER_TIMEZONE"

DEFAULT_DATABASE_URL = "sqlite:///./.ledger/ledger.db"
DEFAULT_TIMEZONE = "UTC"


@dataclass(frozen=True)
class Settings:
    """Where the ledger lives and the time zone of its accounting dates."""

    database_url: str = DEFAULT_DATABASE_URL
    timezone: ZoneInfo = ZoneInfo(DEFAULT_TIMEZONE)

    @classmethod
    def from_environment(cls, environment: Mapping[str, str] | None = None) -> Settings:
        """Reads the settings from `environment` (the process environment by default).

        Raises:
            ConfigurationError: a variable is set to a value that cannot be used.
        """
        environment = os.environ if environment is None else environment

        database_url = environment.get(DATABASE_URL_VARIABLE, "").strip() or DEFAULT_DATABASE_URL
        timezone_name = environment.get(TIMEZONE_VARIABLE, "").strip() or DEFAULT_TIMEZONE
        return cls(database_url=_checked_url(database_url), timezone=timezone_named(timezone_name))


def timezone_named(name: str, given_as: str = TIMEZONE_VARIABLE) -> ZoneInfo:
    """The IANA time zone of that name.

    Args:
        name: the time zone's name.
        given_as: where the name came from (a variable or an option), for the message.

    Raises:
        ConfigurationError: no such time zone; the message names where it came from and the
            value.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigurationError(
            f"{given_as}={name!r} is not an IANA time zone name "
            "(for example Europe/Vienna, America/New_York or UTC)"
        ) from None


def _checked_url(url: str) -> str:
    try:
        sa.make_url(url)
    except sa.exc.ArgumentError:
        # The URL is not repeated: it may hold a password.
        raise ConfigurationError(
            f"{DATABASE_URL_VARIABLE} is not a SQLAlchemy database URL "
            "(for example sqlite:///ledger.db or postgresql+psycopg://user@host/ledger)"
        ) from None
    return url
