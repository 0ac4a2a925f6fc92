"""Storage of the ledger behind one module: `ledger_pipeline.storage.store.LedgerStore`."""

from ledger_pipeline.storage.store import (
    CodeRule,
    LandingReport,
    LedgerStore,
    PostingReport,
    RejectedEvent,
    Rejection,
)

__all__ = [
    "CodeRule",
    "LandingReport",
    "LedgerStore",
    "PostingReport",
    "RejectedEvent",
    "Rejection",
]
