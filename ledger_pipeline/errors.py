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


class PostingError(LedgerError):
    """An order history that cannot be posted (a bug or a landing rule that was bypassed)."""


class UnknownRegistry(LedgerError):
    """No registry has the given name."""
