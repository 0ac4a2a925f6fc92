"""Every error the product raises on purpose, so that callers can catch them by class."""


class LedgerError(Exception):
    """Base class of the product's errors."""


class ConfigurationError(LedgerError):
    """A setting is missing, malformed or contradicts the ledger that exists."""


class UnknownCurrency(LedgerError):
    """A currency code that is not an ISO 4217 currency with a minor unit."""


class MalformedEvent(LedgerError):
    """An order event that breaks the input contract; `reason` says which rule."""

    def __init__(self, reason: str, event_id: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id


class AdapterError(LedgerError):
    """Outside data (a hotel booking row, an OCTO booking) that cannot become order events.

    `reason` says what is wrong with it; `source` names the record (a row number, a booking id).
    """

    def __init__(self, reason: str, source: str | None = None):
        super().__init__(f"{source}: {reason}" if source else reason)
        self.reason = reason
        self.source = source


class PostingError(LedgerError):
    """An order history that cannot be posted (a bug or a landing rule that was bypassed)."""


class UnknownRegistry(LedgerError):
    """No registry has the given name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown registry {name!r}: see `ledger-pipeline registry list`")
        self.name = name


class RegistryError(LedgerError):
    """A registry definition that cannot be used: the message names the field, the bad value
    (never a secret) and what is allowed."""


class InputFileError(LedgerError):
    """A file of order events that cannot be opened or read."""


class StorageError(LedgerError):
    """The ledger database failed. The message is the database's first line, never the
    statement or its parameters (which may hold a registry's secret)."""


class MalformedSecret(LedgerError):
    """A webhook signing secret that is not `whsec_` and the base64 of enough random bytes.
    The message never shows the secret."""


class UrlRefused(LedgerError):
    """A webhook URL that is not sent to: its host resolves to a loopback, private, link-local,
    metadata or otherwise non-public address (and `LEDGER_ALLOW_PRIVATE_URLS` is not set), or
    it cannot be sent to at all (no host, not http or https)."""


class ApiKeyError(LedgerError):
    """An API key that cannot be created, found or revoked: the message says which and why
    (never the key itself)."""


class DeliveryError(LedgerError):
    """A webhook delivery that cannot be found, replayed or skipped: the message names the
    delivery and the reason."""
