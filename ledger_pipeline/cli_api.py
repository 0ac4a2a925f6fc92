"""`ledger-pipeline serve`, `ledger-pipeline receive` and `ledger-pipeline api-key ...`: the
reporting API, a local webhook receiver, and the API's keys."""

import typer


def register(app: typer.Typer) -> None:
    """Adds the API and receiver commands to the `ledger-pipeline` command."""
